"""The sensor on the landing folder: new raw files start the whole graph at Bronze."""

import hashlib
import json
from pathlib import Path

import dagster as dg
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError

from grid_assets.defs.jobs import medallion_job
from grid_assets.defs.resources import LandingFolder
from grid_assets.etl.bronze import read_progress
from grid_assets.ingest.landing import Progress, needs_reading, scan_landing
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.bronze import Event, IngestedFile
from grid_assets.resources.lakehouse import LakehouseResource

EVENTS = Event.__table__
FILES = IngestedFile.__table__
# A run of the job that has not finished: it may be reading the very files a tick would find.
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def ingested_files(lakehouse: Lakehouse) -> dict[str, Progress]:
    """Bronze's record of the landing files it has read (empty before its first run)."""
    with lakehouse.connect() as conn, conn.begin():
        if not inspect(conn).has_table(FILES.name, schema=lakehouse.schema_map["bronze"]):
            return {}
        return read_progress(conn)


def landing_run_key(triggers: dict[str, tuple[int, str]]) -> str:
    """The same files at the same sizes and states give the same key in every process (a
    content hash, not Python's per-process `hash`), so Dagster requests their run once."""
    text = json.dumps(sorted([name, size, state] for name, (size, state) in triggers.items()))
    return f"landing-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _unfinished_run(context: dg.SensorEvaluationContext, job_name: str) -> str | None:
    try:
        instance = context.instance
    except dg.DagsterInvariantViolationError:  # a context built without an instance
        return None
    records = instance.get_run_records(
        dg.RunsFilter(job_name=job_name, statuses=UNFINISHED), limit=1
    )
    return records[0].dagster_run.run_id if records else None


@dg.sensor(
    job=medallion_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED
)
def landing_files_sensor(
    context: dg.SensorEvaluationContext, landing: LandingFolder, lakehouse: LakehouseResource
):
    """Runs the whole graph when the landing folder holds what Bronze has not ingested.

    What is new is decided from Bronze's own record, `bronze.ingested_files`, with the rule
    Bronze itself reads by (`ingest.landing.needs_reading`): a file without a row, whose size
    differs from the recorded one, or whose reading was left open (`reading`, `partial_line`);
    an unreadable or rewritten file only when its size changes. No sensor cursor: the first
    tick on a folder already ingested requests nothing, and what one run left open (a crash,
    a final line waiting) is requested again once. While a run of the job is unfinished the
    sensor waits: that run is reading those files.
    """
    running = _unfinished_run(context, medallion_job.name)
    if running is not None:
        return dg.SkipReason(f"Run {running} of {medallion_job.name} has not finished yet")
    files, unreadable = scan_landing(Path(landing.path))
    try:
        recorded = ingested_files(lakehouse.get_lakehouse())
    except DBAPIError as exc:
        return dg.SkipReason(f"bronze.ingested_files not readable: {type(exc.orig).__name__}")
    triggers = {
        entry.name: (entry.size_bytes, done.state if done is not None else "new")
        for entry in [*files, *unreadable]
        if needs_reading(entry.size_bytes, done := recorded.get(entry.name))
    }
    if not triggers:
        return dg.SkipReason(
            f"Every one of {len(files) + len(unreadable)} landing entries in {landing.path} is "
            "ingested at its current size"
        )
    changed = sorted(triggers)
    return dg.RunRequest(
        run_key=landing_run_key(triggers),
        tags={"grid/changed_files": ",".join(changed)[:200]},
    )


bronze_sensors = [landing_files_sensor]
