"""`grid run`: exit 0 on success with a summary, non-zero when a blocking check fails."""

from __future__ import annotations

import shutil
from pathlib import Path

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


def test_grid_run_rejects_an_unknown_environment() -> None:
    result = CliRunner().invoke(app, ["run"], env={"GRID_ENV": "staging"})
    assert result.exit_code == 2
    assert "GRID_ENV must be 'local' or 'production'" in result.output
