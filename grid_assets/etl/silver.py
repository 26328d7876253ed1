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
from sqlalchemy import Connection, delete

from grid_assets.etl import pipeline_events
from grid_assets.etl import progress as step_progress
from grid_assets.etl.batching import cyclic_gc_paused, write_behind
from grid_assets.ingest.arrow import pc
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models import metadata
from grid_assets.models.silver import Cursor, EventLedger, Order, OrderItem, Product, Quarantine
from grid_assets.queries import silver as q
from grid_assets.queries.bronze import last_ingest_seq
from grid_assets.queries.common import insert_missing
from grid_assets.scratch import helper_thread
from grid_assets.transform.silver_rows import (
    BRONZE_EVENTS,
    INSTANT,
    SilverBatch,
    build_silver_batch,
)

CONSUMER = "silver"
BATCH_EVENTS = 150_000
CURSORS = Cursor.__table__
LEDGER = EventLedger.__table__
QUARANTINE = Quarantine.__table__
# Every table Silver derives from Bronze, dependants first.
SILVER_STATE = [
    t for t in reversed(metadata.sorted_tables) if t.schema == "silver" and t is not CURSORS
]


@dataclass
class SilverResult:
    events_read: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    rows_staged: dict[str, int] = field(default_factory=dict)
    cursor: int = 0

    def add(self, batch: SilverBatch) -> None:
        for found in pc.value_counts(batch.outcomes).to_pylist():
            outcome, count = found["values"], found["counts"]
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count
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
    return int(conn.execute(q.cursor_position(CONSUMER)).scalar() or 0)


def _save_cursor(conn: Connection, seq: int, now: datetime) -> None:
    conn.execute(q.save_cursor(CONSUMER, seq, now))


def reset(lakehouse: Lakehouse, run_id: str | None = None) -> None:
    """Forget what Silver holds, so that the next `apply_new_events` rebuilds it from all of
    Bronze: the full refresh. One unit of work resets the cursor and empties every Silver table
    (each emptying announced in Bronze like any other write).

    Databricks runs it statement by statement (no transactions), so the cursor goes first:
    should a later statement fail, the next run re-applies all of Bronze onto what is left,
    which the forward-only MERGEs and anti-join appends make the same as a clean rebuild."""
    now = datetime.now(UTC)
    with lakehouse.begin() as conn:
        conn.execute(delete(CURSORS).where(CURSORS.c.consumer == CONSUMER))
        for table in SILVER_STATE:
            conn.execute(delete(table))
        emptied = [
            pipeline_events.written(table.fullname, 0, run_id, consumer=CONSUMER, emptied=True)
            for table in SILVER_STATE
        ]
        pipeline_events.emit_many(conn, emptied, run_id, now)


def _ledger_rows(events: pa.Table, batch: SilverBatch, run_id, now) -> pa.Table:
    n = events.num_rows
    return pa.table(
        {
            "event_id": events.column("event_id"),
            "ingest_seq": events.column("ingest_seq"),
            "event_type": events.column("event_type"),
            "outcome": batch.outcomes,
            "processed_at": pa.repeat(pa.scalar(now, INSTANT), n),
            "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
        }
    )


def _quarantine_rows(events: pa.Table, batch: SilverBatch, run_id, now) -> pa.Table:
    quarantined = pa.array(list(batch.quarantine), pa.string())
    bad = events.filter(pc.is_in(events.column("event_id"), value_set=quarantined))
    return pa.table(
        {
            "event_id": bad.column("event_id"),
            "event_type": bad.column("event_type"),
            "reasons": [
                json.dumps(batch.quarantine[e]) for e in bad.column("event_id").to_pylist()
            ],
            "occurred_at": bad.column("occurred_at"),
            "quarantined_at": pa.repeat(pa.scalar(now, INSTANT), bad.num_rows),
            "run_id": pa.repeat(pa.scalar(run_id, pa.string()), bad.num_rows),
        }
    )


@dataclass
class _Prepared:
    """One batch of Bronze events, validated and laid out as the rows to write."""

    batch: SilverBatch
    quarantine: pa.Table
    ledger: pa.Table
    first: int  # ingest_seq of the batch's first event
    cursor: int  # ingest_seq of the batch's last event
    now: datetime


def _prepare(events: pa.Table, run_id: str | None) -> _Prepared:
    """The Python half of a batch: decode, validate, lay out."""
    now = datetime.now(UTC)
    with cyclic_gc_paused():
        batch = build_silver_batch(events)
        quarantine = _quarantine_rows(events, batch, run_id, now)
        ledger = _ledger_rows(events, batch, run_id, now)
    seqs = events.column("ingest_seq")
    return _Prepared(batch, quarantine, ledger, seqs[0].as_py(), seqs[-1].as_py(), now)


def _apply(lakehouse: Lakehouse, conn: Connection, prepared: _Prepared) -> dict[str, int]:
    batch = prepared.batch
    written: dict[str, int] = {}
    if prepared.quarantine.num_rows:
        with lakehouse.staged(conn, prepared.quarantine, QUARANTINE) as stage:
            conn.execute(insert_missing(QUARANTINE, stage, ["event_id"]))
        written["silver.quarantine"] = prepared.quarantine.num_rows
    if batch.products.num_rows:
        with lakehouse.staged(conn, batch.products, Product.__table__) as stage:
            conn.execute(q.merge_products(stage))
        written["silver.products"] = batch.products.num_rows
    if batch.orders.num_rows:
        with lakehouse.staged(conn, batch.orders, Order.__table__) as stage:
            conn.execute(q.merge_orders(stage))
            conn.execute(q.delete_superseded_items(stage))
            with lakehouse.staged(conn, batch.order_items, OrderItem.__table__) as items:
                conn.execute(q.insert_current_items(items))
        written["silver.orders"] = batch.orders.num_rows
        written["silver.order_items"] = batch.order_items.num_rows
    # An event's ledger row carries its ingest_seq: only rows of the batch's window can be
    # there already (a batch redone), so the lookup reads that window, not the whole ledger
    # (the engine skips the rest by min/max statistics).
    window = LEDGER.c.ingest_seq.between(prepared.first, prepared.cursor)
    with lakehouse.staged(conn, prepared.ledger, LEDGER) as stage:
        conn.execute(insert_missing(LEDGER, stage, ["event_id"], window))
    written["silver.event_ledger"] = prepared.ledger.num_rows
    return written


def _read_batches(
    lakehouse: Lakehouse, conn: Connection, cursor: int, batch_events: int
) -> Iterator[pa.Table]:
    """Bronze GRID events after `cursor`, in arrival order, in windows of `batch_events`
    arrival positions (so at most that many events each), up to the last event stored when the
    step began. Events arriving during the step wait for the next run."""
    with conn.begin():
        last = int(conn.execute(last_ingest_seq()).scalar_one())
    while cursor < last:
        upper = min(cursor + batch_events, last)
        with conn.begin():
            query = q.unprocessed_events(cursor, upper)
            events = lakehouse.fetch_arrow(conn, query).cast(BRONZE_EVENTS)
        if events.num_rows:
            yield events
        cursor = upper


def apply_new_events(
    lakehouse: Lakehouse,
    run_id: str | None = None,
    batch_events: int = BATCH_EVENTS,
) -> SilverResult:
    """Process every Bronze event after the cursor; returns what was read and decided.

    Batches are read and validated on this thread while the previous batch is written on a
    writer thread (see `etl.batching.write_behind`), each on its own connection.
    """
    result = SilverResult()
    events_written = 0
    # One writing connection for the step, a transaction per batch (see etl.bronze).
    with lakehouse.connect() as reader, lakehouse.connect() as conn:
        with reader.begin():
            result.cursor = read_cursor(reader)
        step_progress.report(step_progress.StepProgress("silver", "events", 0))

        def prepared_batches() -> Iterator[_Prepared]:
            for events in _read_batches(lakehouse, reader, result.cursor, batch_events):
                prepared = _prepare(events, run_id)
                result.add(prepared.batch)
                result.events_read += events.num_rows
                result.cursor = prepared.cursor
                yield prepared

        def write(prepared: _Prepared) -> None:  # on the writer thread, the only user of `conn`
            with conn.begin():
                written = _apply(lakehouse, conn, prepared)
                _save_cursor(conn, prepared.cursor, prepared.now)
                # One statement for the batch's announcements, not one per table written.
                announced = [
                    pipeline_events.written(
                        table, count, run_id, consumer=CONSUMER, cursor=prepared.cursor
                    )
                    for table, count in written.items()
                ]
                pipeline_events.emit_many(conn, announced, run_id, prepared.now)
            nonlocal events_written
            events_written += prepared.ledger.num_rows
            step_progress.report(step_progress.StepProgress("silver", "events", events_written))

        with helper_thread():  # the fast path's second thread, for this step only
            write_behind(prepared_batches(), write)
    return result
