"""The sensor on Bronze's event log: GRID events past Silver's cursor start Silver and Gold."""

import dagster as dg
from sqlalchemy.exc import DBAPIError

from grid_assets.defs.jobs import silver_gold_job
from grid_assets.etl.silver import read_cursor
from grid_assets.queries.bronze import last_grid_ingest_seq
from grid_assets.resources.lakehouse import LakehouseResource


@dg.sensor(
    job=silver_gold_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED
)
def new_events_sensor(context: dg.SensorEvaluationContext, lakehouse: LakehouseResource):
    """Runs Silver and Gold when `bronze.events` holds GRID events past Silver's cursor.

    The pipeline's own `pipeline.*` events are ignored, or every run would trigger the next.
    """
    try:
        with lakehouse.get_lakehouse().connect() as conn:
            latest = conn.execute(last_grid_ingest_seq()).scalar_one()
            applied = read_cursor(conn)
    except DBAPIError as exc:
        return dg.SkipReason(f"Lakehouse not readable yet: {type(exc.orig).__name__}")
    requested = int(context.cursor or 0)
    if latest <= max(applied, requested):
        return dg.SkipReason(f"No GRID events after ingest_seq {max(applied, requested)}")
    context.update_cursor(str(latest))
    return dg.RunRequest(run_key=f"events-through-{latest}", tags={"grid/through_seq": str(latest)})


silver_sensors = [new_events_sensor]
