"""Tier 3: a full refresh rebuilds Silver and Gold from Bronze and gives what the incremental
runs gave, table for table, on the samples and on traffic split over several runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
from sqlalchemy import func, select

from grid_assets.definitions import build_definitions
from grid_assets.models import metadata
from grid_assets.models.bronze import Event
from grid_assets.models.silver import EventLedger
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.conftest import SAMPLES_DIR, local_settings
from grid_sim import generate_traffic

# The pipeline's own timestamps and run ids; everything else must be equal.
RUN_COLUMNS = {"computed_at", "quarantined_at", "processed_at", "run_id"}
COMPARED = [t for t in metadata.sorted_tables if t.schema in ("silver", "gold")]


def run(landing: Path, db: Path, full_refresh: bool = False) -> dg.ExecuteInProcessResult:
    job = build_definitions(local_settings(landing, db)).resolve_job_def("medallion_job")
    config = {"ops": {"silver_apply_events": {"config": {"full_refresh": full_refresh}}}}
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=config)
    failed = [
        e.check_name for e in result.get_asset_check_evaluations() if not e.passed and e.blocking
    ]
    assert result.success and not failed, failed
    return result


def silver_and_gold(db: Path) -> dict[str, list[tuple[str, ...]]]:
    """Every Silver and Gold table's rows, without run timestamps and ids."""
    lakehouse = LakehouseResource(duckdb_path=str(db)).get_lakehouse()
    out = {}
    with lakehouse.connect() as conn:
        for table in COMPARED:
            columns = [
                c
                for c in table.c
                if c.name not in RUN_COLUMNS
                and not (table.name == "cursors" and c.name.endswith("_at"))
            ]
            rows = conn.execute(select(*columns))
            out[table.fullname] = sorted(tuple(map(str, row)) for row in rows)
    return out


def assert_rebuilt_by(db: Path, run_id: str) -> None:
    """Every Silver row the refresh could have kept was written again by it: it did rebuild."""
    ledger = EventLedger.__table__
    lakehouse = LakehouseResource(duckdb_path=str(db)).get_lakehouse()
    with lakehouse.connect() as conn:
        writers = {r for (r,) in conn.execute(select(ledger.c.run_id).distinct())}
        emptied = conn.execute(
            select(func.count()).where(
                Event.__table__.c.run_id == run_id,
                Event.__table__.c.payload.contains('"emptied":true'),
            )
        ).scalar_one()
    assert writers == {run_id}
    assert emptied == len([t for t in COMPARED if t.schema == "silver"]) - 1  # not the cursor


def test_full_refresh_of_the_samples_equals_the_incremental_run(tmp_path: Path) -> None:
    landing, db = tmp_path / "landing", tmp_path / "grid.duckdb"
    shutil.copytree(SAMPLES_DIR, landing)
    run(landing, db)
    incremental = silver_and_gold(db)
    assert all(incremental[t.fullname] for t in COMPARED), "every table holds rows"

    refreshed = run(landing, db, full_refresh=True)
    assert silver_and_gold(db) == incremental
    assert_rebuilt_by(db, refreshed.run_id)


def test_full_refresh_equals_files_added_over_several_runs(tmp_path: Path) -> None:
    generated, landing = tmp_path / "generated", tmp_path / "landing"
    generate_traffic(generated, n_events=2400, seed=5, n_files=4)
    landing.mkdir()
    db = tmp_path / "grid.duckdb"
    files = sorted(generated.iterdir())
    assert len(files) == 4
    for file in files:  # one more file per run, as GRID would drop them
        shutil.copy(file, landing / file.name)
        run(landing, db)
    incremental = silver_and_gold(db)

    refreshed = run(landing, db, full_refresh=True)
    assert silver_and_gold(db) == incremental
    assert_rebuilt_by(db, refreshed.run_id)
