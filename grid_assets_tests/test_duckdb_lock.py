"""The embedded file admits one process at a time: others wait (bounded) instead of failing,
say once that they wait and for whom, and give up with one error that says what to do."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from grid_assets.config import (
    DEFAULT_DUCKDB_LOCK_TIMEOUT_S,
    DUCKDB_LOCK_TIMEOUT_VAR,
    ConfigurationError,
)
from grid_assets.defs.resources import lakehouse_resource
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.duckdb import DuckDBBackend, LakehouseLockTimeout, held_open
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.settings import load_settings

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_lock(db: Path, seconds: float) -> subprocess.Popen:
    """Another process that opens the DuckDB file (taking its lock) and keeps it open."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def lock_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "is locked by" in r.getMessage()
    ]


def test_a_second_process_waits_for_the_lock_and_says_so_once(
    lakehouse: Lakehouse, caplog: pytest.LogCaptureFixture
) -> None:
    db = Path(str(lakehouse.engine.url.database))
    holder = hold_lock(db, 2.0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING), lakehouse.connect() as conn:
        # Blocks until the holder closes, then proceeds.
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    waited = time.monotonic() - started
    holder.wait(timeout=30)
    assert 0.5 < waited < 30
    [warning] = lock_warnings(caplog)  # one line, however many attempts the wait took
    assert str(db) in warning
    assert f"PID {holder.pid}" in warning
    assert f"waiting up to {DEFAULT_DUCKDB_LOCK_TIMEOUT_S} s" in warning
    assert DUCKDB_LOCK_TIMEOUT_VAR in warning


def test_the_wait_is_bounded_and_ends_in_one_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "held.duckdb"
    LakehouseResource(duckdb_path=str(db)).get_lakehouse().create_tables()
    impatient = LakehouseResource(duckdb_path=str(db), lock_timeout_seconds=1).get_lakehouse()
    holder = hold_lock(db, 30.0)
    try:
        started = time.monotonic()
        with (
            caplog.at_level(logging.WARNING),
            pytest.raises(LakehouseLockTimeout) as caught,
            impatient.connect(),
        ):
            pass
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert 1 <= waited < 5
    message = str(caught.value)
    assert message.startswith(f"Gave up after waiting 1 s for the DuckDB file {db}:")
    assert f"PID {holder.pid}" in message
    assert "Stop that process" in message
    assert f"raising {DUCKDB_LOCK_TIMEOUT_VAR}" in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    [warning] = lock_warnings(caplog)
    assert "waiting up to 1 s" in warning and f"PID {holder.pid}" in warning


def test_the_lock_timeout_comes_from_the_environment() -> None:
    # Unset or empty, the documented 600 s reaches the backend that waits.
    for unset in ({}, {DUCKDB_LOCK_TIMEOUT_VAR: ""}):
        backend = lakehouse_resource(load_settings(unset)).get_lakehouse().backend
        assert isinstance(backend, DuckDBBackend) and backend.lock_timeout_s == 600, unset
    settings = load_settings({DUCKDB_LOCK_TIMEOUT_VAR: " 45 "})
    assert settings.duckdb_lock_timeout_s == 45
    resource = lakehouse_resource(settings)
    assert resource.lock_timeout_seconds == 45
    backend = resource.get_lakehouse().backend
    assert isinstance(backend, DuckDBBackend) and backend.lock_timeout_s == 45


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "10s", "ten", "86401", "9" * 5000, "\u0663"])
def test_an_unusable_lock_timeout_fails_at_load(value: str) -> None:
    with pytest.raises(ConfigurationError, match=DUCKDB_LOCK_TIMEOUT_VAR):
        load_settings({DUCKDB_LOCK_TIMEOUT_VAR: value})


@pytest.mark.parametrize("seconds", [0, -1, 86_401])
def test_the_resource_refuses_an_unusable_lock_timeout(seconds: int) -> None:
    with pytest.raises(ConfigurationError, match=DUCKDB_LOCK_TIMEOUT_VAR):
        LakehouseResource(duckdb_path="unused.duckdb", lock_timeout_seconds=seconds).get_lakehouse()


PROBE = """
import sys, duckdb
try:
    duckdb.connect(sys.argv[1]).close()
except duckdb.IOException as exc:
    print("locked" if "lock" in str(exc).lower() else f"error: {exc}")
else:
    print("open")
"""


def probe(db: Path) -> str:
    """What another process finds when it opens the file: `open` or `locked`."""
    found = subprocess.run(
        [sys.executable, "-c", PROBE, str(db)], capture_output=True, text=True, timeout=60
    )
    return found.stdout.strip()


def test_a_hold_keeps_the_file_open_between_connections_and_then_lets_it_go(
    lakehouse: Lakehouse,
) -> None:
    db = Path(str(lakehouse.engine.url.database))
    with held_open(lakehouse.engine):
        assert probe(db) == "open"  # a hold alone opens nothing
        with lakehouse.connect() as conn:
            conn.execute(text("SELECT 1"))
        # The connection is closed, but the database stays open in this process.
        assert probe(db) == "locked"
        with lakehouse.connect() as conn:  # attaches to the open database
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    assert probe(db) == "open"
