"""Tier 2: sensors, checks and the schedule invoked directly against a throwaway lakehouse.

The heartbeat and freshness checks, judged against the wall clock, are in
`test_freshness_checks.py`."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from grid_assets.defs.bronze.checks import rejected_share
from grid_assets.defs.bronze.schedules import nightly_medallion_schedule
from grid_assets.defs.silver.checks import events_reconcile
from grid_assets.defs.silver.sensors import new_events_sensor
from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.silver import apply_new_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.conftest import write_events


def beat(eid: str, at: str) -> dict:
    return {"event_id": eid, "event_type": "system.heartbeat", "occurred_at": at, "payload": {}}


def resource_for(lakehouse: Lakehouse) -> LakehouseResource:
    return LakehouseResource(duckdb_path=str(lakehouse.engine.url.database))


def test_new_events_sensor_ignores_the_pipelines_own_events(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    resource = resource_for(lakehouse)
    write_events(tmp_path / "l" / "a.ndjson", [beat("b1", "2026-01-01T00:00:00Z")])
    ingest_landing(lakehouse, tmp_path / "l")
    first = new_events_sensor(dg.build_sensor_context(resources={"lakehouse": resource}))
    assert isinstance(first, dg.RunRequest) and first.run_key == "events-through-1"

    apply_new_events(lakehouse)  # writes pipeline.* events after the heartbeat
    after = new_events_sensor(dg.build_sensor_context(resources={"lakehouse": resource}))
    assert isinstance(after, dg.SkipReason)


def test_rejected_share_and_reconciliation(tmp_path: Path, lakehouse: Lakehouse) -> None:
    resource = resource_for(lakehouse)
    write_events(tmp_path / "l" / "a.ndjson", [beat("b1", "2026-01-01T00:00:00Z"), "junk"])
    ingest_landing(lakehouse, tmp_path / "l")
    share = rejected_share(lakehouse=resource)
    assert not share.passed and share.metadata["rejected"].value == 1

    apply_new_events(lakehouse)
    assert events_reconcile(lakehouse=resource).passed
    with lakehouse.begin() as conn:  # an event silently lost by Silver must be caught
        from grid_assets.models.silver import EventLedger

        conn.execute(EventLedger.__table__.delete())
    broken = events_reconcile(lakehouse=resource)
    assert not broken.passed and broken.metadata["unaccounted"].value == 1


def test_nightly_schedule_targets_the_whole_graph() -> None:
    assert nightly_medallion_schedule.cron_schedule == "0 2 * * *"
    assert nightly_medallion_schedule.execution_timezone == "UTC"
    assert nightly_medallion_schedule.job_name == "medallion_job"


def test_duplicate_keys_counts_rows_beyond_the_grain(lakehouse: Lakehouse) -> None:
    """Databricks does not enforce primary keys: the quality check counts broken grains."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, text

    from grid_assets.queries.checks import duplicate_keys

    lines = Table(
        "lines",
        MetaData(),
        Column("order_id", String, primary_key=True),
        Column("line_number", Integer, primary_key=True),
    )
    with lakehouse.begin() as conn:  # created without the constraint, as on Databricks
        conn.execute(text("CREATE TABLE lines (order_id VARCHAR, line_number INTEGER)"))
        conn.execute(
            text("INSERT INTO lines VALUES ('a', 1), ('a', 2), ('a', 1), ('a', 1), ('b', 1)")
        )
        assert conn.execute(duplicate_keys(lines)).scalar_one() == 2
