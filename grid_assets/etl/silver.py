"""Silver: fold new Bronze events into current state, in bounded batches by arrival order.

Each batch is one unit of work: quarantine and ledger rows appended, products and orders merged
latest-wins, the lines of re-placed orders swapped, the cursor advanced and the writes announced
in Bronze. Every statement is monotonic (MERGE only moves state forward, appends skip what
exists), so a batch redone after a failure changes nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa
from sqlalchemy import Connection, select

from grid_assets.etl import pipeline_events
from grid_assets.models.silver import Cursor, EventLedger, Order, OrderItem, Product, Quarantine
from grid_assets.queries import silver as q
from grid_assets.queries.dialect import Merge
from grid_assets.resources.lakehouse import Lakehouse
from grid_assets.transform.silver_rows import BronzeRow, SilverBatch, build_silver_batch

CONSUMER = "silver"
BATCH_EVENTS = 100_000
_INSTANT = pa.timestamp("us", tz="UTC")
CURSORS = Cursor.__table__
LEDGER = EventLedger.__table__
QUARANTINE = Quarantine.__table__


@dataclass
class SilverResult:
    events_read: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    rows_staged: dict[str, int] = field(default_factory=dict)
    cursor: int = 0

    def add(self, batch: SilverBatch) -> None:
        for outcome in batch.outcomes.values():
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        for name, table in (
            ("silver.products", batch.products),
            ("silver.orders", batch.orders),
            ("silver.order_items", batch.order_items),
        ):
            self.rows_staged[name] = self.rows_staged.get(name, 0) + table.num_rows
        self.rows_staged["silver.quarantine"] = self.rows_staged.get("silver.quarantine", 0) + len(
            batch.quarantine
        )


def read_cursor(conn: Connection) -> int:
    value = conn.execute(
        select(CURSORS.c.last_ingest_seq).where(CURSORS.c.consumer == CONSUMER)
    ).scalar()
    return int(value or 0)


def _save_cursor(conn: Connection, seq: int, now: datetime) -> None:
    s = q.literal_row(consumer=CONSUMER, last_ingest_seq=seq, updated_at=now)
    t = CURSORS.alias("t")
    conn.execute(
        Merge(
            target=t,
            source=s,
            on=t.c.consumer == s.c.consumer,
            update_when=s.c.last_ingest_seq > t.c.last_ingest_seq,
            update_values={"last_ingest_seq": s.c.last_ingest_seq, "updated_at": s.c.updated_at},
            insert_values={c.name: s.c[c.name] for c in CURSORS.c},
        )
    )


def _ledger_rows(rows: list[BronzeRow], batch: SilverBatch, run_id, now) -> pa.Table:
    return pa.table(
        {
            "event_id": [r.event_id for r in rows],
            "ingest_seq": pa.array([r.ingest_seq for r in rows], pa.int64()),
            "event_type": [r.event_type for r in rows],
            "outcome": [batch.outcomes[r.event_id] for r in rows],
            "processed_at": pa.array([now] * len(rows), _INSTANT),
            "run_id": pa.array([run_id] * len(rows), pa.string()),
        }
    )


def _quarantine_rows(rows: list[BronzeRow], batch: SilverBatch, run_id, now) -> pa.Table:
    bad = [r for r in rows if r.event_id in batch.quarantine]
    return pa.table(
        {
            "event_id": [r.event_id for r in bad],
            "event_type": [r.event_type for r in bad],
            "reasons": [json.dumps(batch.quarantine[r.event_id]) for r in bad],
            "occurred_at": pa.array([r.occurred_at for r in bad], _INSTANT),
            "quarantined_at": pa.array([now] * len(bad), _INSTANT),
            "run_id": pa.array([run_id] * len(bad), pa.string()),
        }
    )


def _apply(
    lakehouse: Lakehouse,
    conn: Connection,
    rows: list[BronzeRow],
    batch: SilverBatch,
    run_id: str | None,
    now: datetime,
) -> dict[str, int]:
    written: dict[str, int] = {}
    if batch.quarantine:
        quarantined = _quarantine_rows(rows, batch, run_id, now)
        with lakehouse.staged(conn, quarantined, QUARANTINE) as stage:
            conn.execute(q.insert_missing(QUARANTINE, stage, ["event_id"]))
        written["silver.quarantine"] = quarantined.num_rows
    if batch.products.num_rows:
        with lakehouse.staged(conn, batch.products, Product.__table__) as stage:
            conn.execute(q.merge_products(stage))
        written["silver.products"] = batch.products.num_rows
    if batch.orders.num_rows:
        with lakehouse.staged(conn, batch.orders, Order.__table__) as stage:
            conn.execute(q.merge_order_status(stage))
            conn.execute(q.merge_order_placement(stage))
            conn.execute(q.delete_superseded_items(stage))
            with lakehouse.staged(conn, batch.order_items, OrderItem.__table__) as items:
                conn.execute(q.insert_current_items(items))
        written["silver.orders"] = batch.orders.num_rows
        written["silver.order_items"] = batch.order_items.num_rows
    with lakehouse.staged(conn, _ledger_rows(rows, batch, run_id, now), LEDGER) as stage:
        conn.execute(q.insert_missing(LEDGER, stage, ["event_id"]))
    written["silver.event_ledger"] = len(rows)
    return written


def _read_batches(conn: Connection, cursor: int, batch_events: int) -> Iterator[list[BronzeRow]]:
    """Bronze GRID events after `cursor`, in arrival order, `batch_events` at a time."""
    while True:
        with conn.begin():
            rows = [BronzeRow(*r) for r in conn.execute(q.unprocessed_events(cursor, batch_events))]
        if not rows:
            return
        yield rows
        cursor = rows[-1].ingest_seq
        if len(rows) < batch_events:
            return


def apply_new_events(
    lakehouse: Lakehouse,
    run_id: str | None = None,
    batch_events: int = BATCH_EVENTS,
) -> SilverResult:
    """Process every Bronze event after the cursor; returns what was read and decided."""
    result = SilverResult()
    # One connection for the step, a transaction per batch (see etl.bronze.ingest_landing).
    with lakehouse.connect() as conn:
        with conn.begin():
            cursor = read_cursor(conn)
        for rows in _read_batches(conn, cursor, batch_events):
            now = datetime.now(UTC)
            batch = build_silver_batch(rows)
            result.add(batch)
            result.events_read += len(rows)
            cursor = rows[-1].ingest_seq
            with conn.begin():
                written = _apply(lakehouse, conn, rows, batch, run_id, now)
                _save_cursor(conn, cursor, now)
                for table, count in written.items():
                    pipeline_events.table_written(
                        conn, table, count, run_id, now, consumer=CONSUMER, cursor=cursor
                    )
    result.cursor = cursor
    return result
