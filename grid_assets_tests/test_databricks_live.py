"""The whole pipeline against a live Databricks SQL warehouse.

Runs only when DATABRICKS_SERVER_HOSTNAME, DATABRICKS_HTTP_PATH, DATABRICKS_TOKEN and
DATABRICKS_CATALOG are set (skipped with the missing names shown otherwise):

    DATABRICKS_SERVER_HOSTNAME=... DATABRICKS_HTTP_PATH=... DATABRICKS_TOKEN=... \\
    DATABRICKS_CATALOG=... .venv/bin/pytest -m databricks -ra

Each session writes into its own schemas (`gridtest_<random>_bronze`, ...) in the catalog and
drops them afterwards (CASCADE). The variables are captured when this module is imported,
before the suite's autouse fixture hides DATABRICKS_* from every test.

The first run goes through the production write path step by step (`write_meter.metered_run`:
DDL, Bronze, Silver, Gold, the calls the assets make) and prints, per step, the statements sent,
the pool's pings, the files and bytes staged and the seconds taken, beside the same run on the
recording warehouse (the offline budget of `scripts/bench.py --databricks-statements`). The
second run is `grid run` itself, each Dagster step timed from its DEBUG log. Both reports reach
the terminal whether or not `-s` is given.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, text

from grid_assets.config import REQUIRED_DATABRICKS_VARS
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.staging import VolumeStaging
from grid_assets.models.gold import DailyRevenue, RevenueByCategory
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.write_meter import (
    WriteMeter,
    metered_run,
    recording_lakehouse,
    render_step_seconds,
    step_seconds,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES_DIR = REPO_ROOT / "data" / "samples"
BIN = Path(sys.executable).parent
LIVE = {name: os.environ.get(name, "").strip() for name in REQUIRED_DATABRICKS_VARS}
MISSING = [name for name, value in LIVE.items() if not value]

pytestmark = [
    pytest.mark.databricks,
    pytest.mark.skipif(
        bool(MISSING), reason="live Databricks tests need " + ", ".join(MISSING) + " set"
    ),
]


def live_env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "GRID_"))}
    return {**base, **LIVE, "GRID_ENV": "production", **extra}


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    """Private layer schemas for this session, dropped at the end."""
    value = f"gridtest_{uuid.uuid4().hex[:8]}_"
    yield value
    lakehouse = live_lakehouse(value)
    with lakehouse.connect() as conn:
        for layer in ("bronze", "silver", "gold"):
            catalog = LIVE["DATABRICKS_CATALOG"]
            conn.execute(text(f"DROP SCHEMA IF EXISTS `{catalog}`.`{value}{layer}` CASCADE"))
    lakehouse.engine.dispose()


def live_lakehouse(prefix: str) -> Lakehouse:
    return LakehouseResource(
        environment="production",
        server_hostname=LIVE["DATABRICKS_SERVER_HOSTNAME"],
        http_path=LIVE["DATABRICKS_HTTP_PATH"],
        access_token=LIVE["DATABRICKS_TOKEN"],
        catalog=LIVE["DATABRICKS_CATALOG"],
        schema_prefix=prefix,
        # A stopped classic warehouse can take minutes to start.
        connect_timeout_seconds=600,
    ).get_lakehouse()


def grid_run(prefix: str, landing: Path, *args: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [str(BIN / "grid"), "run", *args],
        env=live_env(
            DATABRICKS_SCHEMA_PREFIX=prefix,
            GRID_LANDING_DIR=str(landing),
            GRID_DATABRICKS_CONNECT_TIMEOUT_S="600",
        ),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert LIVE["DATABRICKS_TOKEN"] not in completed.stdout + completed.stderr
    return completed


def gold_tables(lakehouse: Lakehouse) -> dict[str, list[tuple]]:
    with lakehouse.connect() as conn:
        by_category = RevenueByCategory.__table__
        daily = DailyRevenue.__table__
        return {
            "revenue_by_category": [
                tuple(row)
                for row in conn.execute(
                    select(
                        by_category.c.category,
                        by_category.c.revenue,
                        by_category.c.order_count,
                        by_category.c.units,
                        by_category.c.currency,
                    ).order_by(by_category.c.category, by_category.c.currency)
                )
            ],
            "daily_revenue": [
                tuple(row)
                for row in conn.execute(
                    select(
                        daily.c.order_date, daily.c.revenue, daily.c.order_count, daily.c.currency
                    ).order_by(daily.c.order_date, daily.c.currency)
                )
            ],
        }


def test_the_check_script_passes() -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "check_databricks_config.py")],
        env=live_env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert LIVE["DATABRICKS_TOKEN"] not in completed.stdout + completed.stderr


def report(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Print `text` to the terminal, past pytest's capture."""
    with capsys.disabled():
        print("\n" + text, flush=True)


def test_the_write_path_matches_the_local_engine(
    prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first run on the committed samples, step by step and metered: Gold on Databricks
    equals Gold on DuckDB; statements, files and seconds per step are reported."""
    from grid_assets_tests.conftest import run_medallion

    lakehouse = live_lakehouse(prefix)
    stager = getattr(lakehouse.backend, "stager", None)
    assert isinstance(stager, VolumeStaging)
    live = metered_run(lakehouse, SAMPLES_DIR, stager.run_id)
    offline = recording_lakehouse(prefix)
    budget: WriteMeter = metered_run(offline.lakehouse, SAMPLES_DIR, offline.run_id)
    offline.lakehouse.engine.dispose()
    report(
        live.render(f"Databricks write path, first run on {SAMPLES_DIR.name}/ (live warehouse)")
        + "\n\n"
        + budget.render("The same run on the recording warehouse (offline budget)"),
        capsys,
    )
    assert live.total().statements > 0
    assert live.total().files > 0, "bulk writes did not travel as staged files"

    local = run_medallion(SAMPLES_DIR, tmp_path / "local.duckdb")
    assert local.success
    expected = gold_tables(
        LakehouseResource(duckdb_path=str(tmp_path / "local.duckdb")).get_lakehouse()
    )
    actual = gold_tables(live_lakehouse(prefix))
    assert actual["revenue_by_category"], "no Gold rows on Databricks"
    assert actual == expected
    assert all(isinstance(row[1], Decimal) for row in actual["revenue_by_category"])


def test_grid_run_again_changes_no_gold_content(
    prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`grid run` (the whole job, checks included) over what the first run loaded: nothing new
    arrives, so Gold is unchanged. The wall time of each step and of the command is reported."""
    before = gold_tables(live_lakehouse(prefix))
    started = time.perf_counter()
    completed = grid_run(prefix, SAMPLES_DIR, "--log-level", "DEBUG", "--no-show-gold")
    seconds = time.perf_counter() - started
    steps = step_seconds(completed.stdout + completed.stderr)
    title = f"grid run, second run on {SAMPLES_DIR.name}/ (live warehouse): {seconds:.1f} s"
    report(render_step_seconds(steps, title), capsys)
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-5000:]
    assert gold_tables(live_lakehouse(prefix)) == before
    assert "bronze_ingest" in steps, "no step timings in the DEBUG log"


def test_bulk_insert_round_trip(prefix: str) -> None:
    """10,000 Bronze-shaped rows through the multi-row VALUES path, read back intact."""
    from grid_assets.models.bronze import Event
    from grid_assets_tests.test_databricks_bulk_writes import events_rows

    lakehouse = live_lakehouse(prefix)
    lakehouse.create_tables()
    rows = events_rows(10_000)
    with lakehouse.connect() as conn:
        conn.execute(Event.__table__.delete().where(Event.__table__.c.event_id.like("evt-%")))
        assert lakehouse.bulk_insert(conn, Event.__table__, rows) == rows.num_rows
        stored = conn.execute(
            select(Event.__table__.c.event_id).where(Event.__table__.c.event_id.like("evt-%"))
        ).scalars()
        assert sorted(stored) == rows.column("event_id").to_pylist()
        conn.execute(Event.__table__.delete().where(Event.__table__.c.event_id.like("evt-%")))
