"""Schedules that start at Bronze: the nightly run of the whole graph, and the silence watch
(GRID's heartbeat and freshness checks on their own clock, so a silent GRID is noticed within one
period even when no pipeline run happens)."""

import dagster as dg

from grid_assets.defs.jobs import freshness_checks_job, medallion_job

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

# The nightly run: the whole graph, checks included, after the day's files have landed.
nightly_medallion_schedule = dg.ScheduleDefinition(
    name="nightly_medallion_schedule",
    job=medallion_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night at 02:00 UTC: ingest, apply, aggregate and check everything.",
)
