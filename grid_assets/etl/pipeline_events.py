"""The pipeline's own events: every write to Silver or Gold is announced in `bronze.events`."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from grid_assets.ingest.envelope import envelope_hash
from grid_assets.models.bronze import Event
from grid_assets.queries.silver import last_ingest_seq

PIPELINE_SOURCE = "grid-pipeline"
TABLE_WRITTEN = "pipeline.table_written"
EVENTS = Event.__table__


def emit(
    conn: Connection,
    event_type: str,
    payload: dict[str, Any],
    run_id: str | None,
    now: datetime,
) -> str:
    """Append one pipeline event in the caller's unit of work; returns its event_id."""
    event_id = str(uuid.uuid4())
    payload_text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    next_seq = conn.execute(last_ingest_seq()).scalar_one() + 1
    conn.execute(
        insert(EVENTS).values(
            event_id=event_id,
            ingest_seq=next_seq,
            event_type=event_type,
            occurred_at=now,
            ingested_at=now,
            source=PIPELINE_SOURCE,
            payload=payload_text,
            envelope_hash=envelope_hash(
                {"event_id": event_id, "event_type": event_type, "source": PIPELINE_SOURCE}
            ),
            run_id=run_id,
        )
    )
    return event_id


def table_written(
    conn: Connection, table: str, rows: int, run_id: str | None, now: datetime, **extra: Any
) -> str:
    return emit(
        conn, TABLE_WRITTEN, {"table": table, "rows": rows, "run_id": run_id, **extra}, run_id, now
    )
