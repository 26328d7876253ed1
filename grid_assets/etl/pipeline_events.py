"""The pipeline's own events: every write to Silver or Gold is announced in `bronze.events`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from grid_assets.ingest.envelope import envelope_hash
from grid_assets.models.bronze import Event
from grid_assets.queries.bronze import last_ingest_seq

PIPELINE_SOURCE = "grid-pipeline"
TABLE_WRITTEN = "pipeline.table_written"
EVENTS = Event.__table__


def emit_many(
    conn: Connection,
    events: Sequence[tuple[str, Mapping[str, Any]]],
    run_id: str | None,
    now: datetime,
) -> list[str]:
    """Append pipeline events, given as (event_type, payload), in the caller's unit of work:
    one read of the last arrival position and one multi-row INSERT whatever their number (on
    Databricks each statement is a round trip). Returns their event_ids, in order."""
    if not events:
        return []
    first_seq = conn.execute(last_ingest_seq()).scalar_one() + 1
    rows = []
    for offset, (event_type, payload) in enumerate(events):
        event_id = str(uuid.uuid4())
        rows.append(
            {
                "event_id": event_id,
                "ingest_seq": first_seq + offset,
                "event_type": event_type,
                "occurred_at": now,
                "ingested_at": now,
                "source": PIPELINE_SOURCE,
                "payload": json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str),
                "envelope_hash": envelope_hash(
                    {"event_id": event_id, "event_type": event_type, "source": PIPELINE_SOURCE}
                ),
                "run_id": run_id,
            }
        )
    conn.execute(insert(EVENTS).values(rows if len(rows) > 1 else rows[0]))
    return [row["event_id"] for row in rows]


def emit(
    conn: Connection,
    event_type: str,
    payload: Mapping[str, Any],
    run_id: str | None,
    now: datetime,
) -> str:
    """Append one pipeline event in the caller's unit of work; returns its event_id."""
    return emit_many(conn, [(event_type, payload)], run_id, now)[0]


def written(table: str, rows: int, run_id: str | None, **extra: Any) -> tuple[str, dict]:
    """A `pipeline.table_written` event for `emit_many`."""
    return TABLE_WRITTEN, {"table": table, "rows": rows, "run_id": run_id, **extra}


def table_written(
    conn: Connection, table: str, rows: int, run_id: str | None, now: datetime, **extra: Any
) -> str:
    return emit(conn, *written(table, rows, run_id, **extra), run_id, now)
