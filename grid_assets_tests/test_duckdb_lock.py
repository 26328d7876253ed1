"""The embedded file admits one process at a time: others wait (bounded) instead of failing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from grid_assets.resources.lakehouse import Lakehouse, LakehouseResource

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_lock(db: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_waits_for_the_lock(lakehouse: Lakehouse) -> None:
    db = Path(str(lakehouse.engine.url.database))
    holder = hold_lock(db, 2.0)
    started = time.monotonic()
    with lakehouse.connect() as conn:  # blocks until the holder closes, then proceeds
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    waited = time.monotonic() - started
    holder.wait(timeout=30)
    assert 0.5 < waited < 30


def test_the_wait_is_bounded(tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    LakehouseResource(duckdb_path=str(db)).get_lakehouse().create_tables()
    impatient = LakehouseResource(duckdb_path=str(db), lock_timeout_seconds=1).get_lakehouse()
    holder = hold_lock(db, 6.0)
    started = time.monotonic()
    with pytest.raises(DBAPIError, match=r"(?i)lock"), impatient.connect():
        pass
    assert time.monotonic() - started < 5
    holder.kill()
    holder.wait()
