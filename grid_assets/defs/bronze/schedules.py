"""The silence watch: GRID's heartbeat and freshness checks on their own clock, so a silent GRID
is noticed within one period even when no pipeline run happens."""

import dagster as dg

from grid_assets.defs.jobs import freshness_checks_job

FRESHNESS_CHECKS_CRON = "*/15 * * * *"

freshness_checks_schedule = dg.ScheduleDefinition(
    name="freshness_checks_schedule",
    job=freshness_checks_job,
    cron_schedule=FRESHNESS_CHECKS_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: evaluate heartbeat_gaps and events_freshness on Bronze "
    "(nothing is ingested or materialized).",
)
