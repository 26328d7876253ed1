"""The nightly run: the whole graph, checks included, after the day's files have landed."""

import dagster as dg

from grid_assets.defs.jobs import medallion_job

nightly_medallion_schedule = dg.ScheduleDefinition(
    name="nightly_medallion_schedule",
    job=medallion_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night at 02:00 UTC: ingest, apply, aggregate and check everything.",
)
