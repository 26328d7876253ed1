"""Names the layers' definitions share: the lakehouse writer pool and asset keys."""

import dagster as dg
from sqlalchemy import Table

from grid_assets.models.bronze import Event, RejectedEvent, RejectedFile

# Every step that writes the lakehouse takes this pool's single slot (.dagster_home/dagster.yaml):
# Bronze and pipeline events number rows from max(ingest_seq), and DuckDB has one writer at a time.
LAKEHOUSE_WRITER_POOL = "grid_lakehouse_writer"


def table_key(table: Table) -> dg.AssetKey:
    """A table's asset key: its physical address, ["<layer>", "<table>"]."""
    return dg.AssetKey([str(table.schema), table.name])


def silver_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["silver", name])


EVENTS_KEY = table_key(Event.__table__)
REJECTED_KEY = table_key(RejectedEvent.__table__)
REJECTED_FILES_KEY = table_key(RejectedFile.__table__)
