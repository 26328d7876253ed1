"""Bronze assets: the append-only event log and its dead letters."""

from pathlib import Path

import dagster as dg

from grid_assets.defs.constants import (
    EVENTS_KEY,
    LAKEHOUSE_WRITER_POOL,
    REJECTED_FILES_KEY,
    REJECTED_KEY,
)
from grid_assets.defs.metadata import materialized_metadata, row_counts, table_spec
from grid_assets.defs.resources import LandingFolder
from grid_assets.etl.bronze import ingest_landing
from grid_assets.models.bronze import Event, RejectedEvent, RejectedFile
from grid_assets.resources.lakehouse import LakehouseResource


@dg.multi_asset(
    name="bronze_ingest",
    pool=LAKEHOUSE_WRITER_POOL,
    specs=[table_spec(Event), table_spec(RejectedEvent), table_spec(RejectedFile)],
)
def bronze_ingest(
    context: dg.AssetExecutionContext, lakehouse: LakehouseResource, landing: LandingFolder
):
    """Read every new line of every landing file into Bronze; bad lines go to rejected_events."""
    lh = lakehouse.get_lakehouse()
    lh.create_tables()
    result = ingest_landing(lh, Path(landing.path), run_id=context.run.run_id)
    context.log.info(
        f"Bronze: {result.events_inserted} new events, {result.duplicates} duplicates, "
        f"{result.rejected} rejected lines from {result.files_read} of {result.files_seen} files"
    )
    for name, reason in result.files_rejected.items():
        context.log.warning(f"Landing file {name} could not be read to its end: {reason}")
    rows = row_counts(lh, [Event.__table__, RejectedEvent.__table__, RejectedFile.__table__])
    yield dg.MaterializeResult(
        asset_key=EVENTS_KEY,
        metadata=materialized_metadata(
            Event.__table__,
            rows[Event.__table__],
            files_seen=result.files_seen,
            files_read=result.files_read,
            lines_read=result.lines_read,
            blank_lines=result.blank_lines,
            events_inserted=result.events_inserted,
            duplicates=result.duplicates,
        ),
    )
    yield dg.MaterializeResult(
        asset_key=REJECTED_KEY,
        metadata=materialized_metadata(
            RejectedEvent.__table__,
            rows[RejectedEvent.__table__],
            rejected_this_run=result.rejected,
            rejected_by_reason=dg.MetadataValue.json(result.rejected_by_reason),
        ),
    )
    yield dg.MaterializeResult(
        asset_key=REJECTED_FILES_KEY,
        metadata=materialized_metadata(
            RejectedFile.__table__,
            rows[RejectedFile.__table__],
            files_rejected_this_run=dg.MetadataValue.json(result.files_rejected),
        ),
    )
