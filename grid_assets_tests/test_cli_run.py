"""`grid run`: exit 0 on success with a summary, non-zero when a blocking check fails."""

from __future__ import annotations

import gc
import logging
import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from grid_assets.cli import app
from grid_assets.models.silver import EventLedger
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.conftest import SAMPLES_DIR


def test_grid_run_succeeds_then_fails_on_a_broken_reconciliation(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLES_DIR, landing)
    db = tmp_path / "grid.duckdb"
    env = {"GRID_ENV": "local", "GRID_LANDING_DIR": str(landing), "GRID_DUCKDB_PATH": str(db)}
    runner = CliRunner()

    ok = runner.invoke(app, ["run"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "Run succeeded." in ok.output
    assert "gold.revenue_by_category" in ok.output and "bronze/events" in ok.output

    # Lose Silver's record of what it applied: the blocking reconciliation must stop the run.
    with LakehouseResource(duckdb_path=str(db)).get_lakehouse().begin() as conn:
        conn.execute(delete(EventLedger.__table__))
    broken = runner.invoke(app, ["run", "--no-show-gold"], env=env)
    assert broken.exit_code == 1, broken.output
    assert "events_reconcile" in broken.output and "Run failed" in broken.output


def test_grid_run_in_process_leaves_nothing_for_the_garbage_collector_to_close(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`grid run` called inside a longer-lived process (a test, a notebook) closes every Dagster
    instance it makes before it returns, whether the run succeeds or fails. One left to the cycle
    collector is disposed of whenever a collection happens to run, in the middle of anything:
    its in-memory database may be closed before its connections, and SQLAlchemy then logs a
    failed rollback with its traceback from inside the collector (on Python 3.11, formatting that
    traceback while the interrupted code was parsing source raised SystemError in a test that
    had nothing to do with it)."""
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLES_DIR, landing)
    db = tmp_path / "grid.duckdb"
    env = {"GRID_ENV": "local", "GRID_LANDING_DIR": str(landing), "GRID_DUCKDB_PATH": str(db)}
    runner = CliRunner()
    gc.collect()
    with caplog.at_level(logging.WARNING, logger="sqlalchemy"):
        assert runner.invoke(app, ["run", "--no-show-gold"], env=env).exit_code == 0
        with LakehouseResource(duckdb_path=str(db)).get_lakehouse().begin() as conn:
            conn.execute(delete(EventLedger.__table__))
        assert runner.invoke(app, ["run", "--no-show-gold"], env=env).exit_code == 1
        caplog.clear()
        gc.collect()
    assert [r.getMessage() for r in caplog.records] == []


def test_grid_run_rejects_an_unknown_environment() -> None:
    result = CliRunner().invoke(app, ["run"], env={"GRID_ENV": "staging"})
    assert result.exit_code == 2
    assert "GRID_ENV must be 'local' or 'production'" in result.output
