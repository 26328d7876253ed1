"""Sensors on the landing folder (new raw files) and on Bronze's event log (new GRID events)."""

import json
from pathlib import Path

import dagster as dg
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from grid_assets.defs.jobs import medallion_job, silver_gold_job
from grid_assets.defs.resources import LandingFolder
from grid_assets.etl.silver import read_cursor
from grid_assets.ingest.landing import list_landing_files
from grid_assets.models.bronze import Event
from grid_assets.queries.checks import grid_events_filter
from grid_assets.resources.lakehouse import LakehouseResource

EVENTS = Event.__table__


@dg.sensor(
    job=medallion_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED
)
def landing_files_sensor(context: dg.SensorEvaluationContext, landing: LandingFolder):
    """Runs the whole graph when a landing file appears or grows (cursor: name -> size)."""
    seen = json.loads(context.cursor) if context.cursor else {}
    current = {f.name: f.size_bytes for f in list_landing_files(Path(landing.path))}
    changed = sorted(name for name, size in current.items() if seen.get(name) != size)
    if not changed:
        return dg.SkipReason(f"No new or grown files among {len(current)} in {landing.path}")
    context.update_cursor(json.dumps(current, sort_keys=True))
    return dg.RunRequest(
        run_key=f"landing-{hash(tuple(sorted(current.items()))) & 0xFFFFFFFF:08x}",
        tags={"grid/changed_files": ",".join(changed)[:200]},
    )


@dg.sensor(
    job=silver_gold_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED
)
def new_events_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    """Runs Silver and Gold when `bronze.events` holds GRID events past Silver's cursor.

    The pipeline's own `pipeline.*` events are ignored, or every run would trigger the next.
    """
    try:
        with lakehouse.get_lakehouse().connect() as conn:
            latest = conn.execute(
                select(func.coalesce(func.max(EVENTS.c.ingest_seq), 0)).where(grid_events_filter())
            ).scalar_one()
            applied = read_cursor(conn)
    except DBAPIError as exc:
        return dg.SkipReason(f"Lakehouse not readable yet: {type(exc.orig).__name__}")
    requested = int(context.cursor or 0)
    if latest <= max(applied, requested):
        return dg.SkipReason(f"No GRID events after ingest_seq {max(applied, requested)}")
    context.update_cursor(str(latest))
    return dg.RunRequest(run_key=f"events-through-{latest}", tags={"grid/through_seq": str(latest)})


bronze_sensors = [landing_files_sensor, new_events_sensor]
