"""Silver on DuckDB for a large backlog: a window of up to a million events in one pass, inside
the lakehouse.

The batch loop (`etl.silver`) brings 150,000 events at a time into the process, certifies them
there and folds each batch in as its own unit of work; every write and commit also costs in
proportion to the tables it folds into, so a first load or a full refresh pays that again and
again. For such a backlog DuckDB runs `silver_fast`'s certification itself over the whole window
(no payload leaves the engine, which spills under its memory cap where Python could not), only
the events it cannot prove are read into the process, a chunk at a time, and decided by the
Python grammar (`build_silver_batch`, as in a batch), and the window is folded in as one unit
of work by the batch's own statements (`silver.apply_staged`). The rows are the batch loop's
(`test_silver_backlog.py`); a failure anywhere rolls the whole window back.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime

import pyarrow as pa
from sqlalchemy import Column, Connection, MetaData, Table

from grid_assets.etl import silver
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.duckdb import duckdb_arrow
from grid_assets.transform import silver_fast
from grid_assets.transform.silver_rows import (
    BRONZE_EVENTS,
    NOT_DOMAIN_EVENTS,
    ORDER_EVENTS,
    PRODUCT_EVENTS,
    build_silver_batch,
)

_DOMAIN = ", ".join(silver_fast.sql_text(t) for t in (*PRODUCT_EVENTS, *ORDER_EVENTS))
_NOT_DOMAIN = ", ".join(silver_fast.sql_text(t) for t in NOT_DOMAIN_EVENTS)

# `events` is what `silver_fast`'s statement reads (`doubt` by DuckDB's RE2 here, Arrow's RE2
# in a batch: the same expression); `window_events` the ids and instants the rows take.
_WINDOW = f"""
CREATE OR REPLACE TEMP TABLE window_events AS
SELECT ingest_seq AS pos, event_id, event_type, occurred_at
FROM bronze.events
WHERE ingest_seq > {{after}} AND ingest_seq <= {{upto}}
  AND NOT starts_with(event_type, 'pipeline.');

CREATE OR REPLACE TEMP VIEW events AS
SELECT ingest_seq AS pos, event_type, payload,
       regexp_matches(payload, {silver_fast.sql_text(silver_fast.DOUBT)}) AS doubt
FROM bronze.events
WHERE ingest_seq > {{after}} AND ingest_seq <= {{upto}}
  AND NOT starts_with(event_type, 'pipeline.');
"""

# The domain events the statement did not prove, numbered for reading them a chunk at a time.
_UNPROVEN = f"""
CREATE OR REPLACE TEMP TABLE unproven AS
SELECT row_number() OVER (ORDER BY pos) AS n, pos
FROM window_events
WHERE event_type IN ({_DOMAIN})
  AND pos NOT IN (SELECT pos FROM product_rows UNION ALL SELECT pos FROM order_rows)
"""

_UNPROVEN_CHUNK = """
SELECT b.event_id, b.ingest_seq, b.event_type, b.occurred_at, b.payload
FROM unproven u JOIN bronze.events b ON b.ingest_seq = u.pos
WHERE u.n > {low} AND u.n <= {high}
ORDER BY b.ingest_seq
"""

# What the batch path lays out in Arrow (`silver_rows._build_with_fast_path`), in SQL: the
# proven rows with their event's id and instant, then the rows the Python grammar kept.
_STAGES = [
    """
CREATE OR REPLACE TEMP TABLE stage_products AS
SELECT p.product_id, p.name, p.category, p.unit_price, p.currency, p.active,
       w.occurred_at AS updated_at, w.event_id
FROM product_rows p JOIN window_events w ON w.pos = p.pos
UNION ALL BY NAME SELECT * FROM python_products
""",
    """
CREATE OR REPLACE TEMP TABLE stage_orders AS
SELECT o.order_id, o.customer_id, o.status, o.currency, placement.occurred_at AS placed_at,
       w.occurred_at AS updated_at, w.event_id AS status_event_id,
       placement.event_id AS placed_event_id
FROM order_rows o
JOIN window_events w ON w.pos = o.pos
LEFT JOIN window_events placement ON placement.pos = o.placed_pos
UNION ALL BY NAME SELECT * FROM python_orders
""",
    """
CREATE OR REPLACE TEMP TABLE stage_order_items AS
SELECT o.order_id, i.line_number, i.product_id, i.quantity, i.unit_price, i.discount, w.event_id
FROM item_rows i JOIN order_rows o ON o.pos = i.pos JOIN window_events w ON w.pos = i.pos
UNION ALL BY NAME SELECT * FROM python_order_items
""",
    f"""
CREATE OR REPLACE TEMP TABLE stage_event_ledger AS
SELECT w.event_id, w.pos AS ingest_seq, w.event_type,
       CASE WHEN w.event_type IN ({_DOMAIN}) THEN coalesce(o.outcome, 'applied')
            WHEN w.event_type IN ({_NOT_DOMAIN}) THEN 'not_domain'
            ELSE 'unknown_type' END AS outcome,
       CAST($now AS TIMESTAMPTZ) AS processed_at, CAST($run_id AS VARCHAR) AS run_id
FROM window_events w LEFT JOIN python_outcomes o USING (event_id)
""",
]

_SCRATCH = [
    "window_events",
    "unproven",
    *("readable", "product_rows", "placed", "order_lines", "item_rows", "order_rows"),
    *("python_products", "python_orders", "python_order_items", "python_outcomes"),
    *("python_quarantine", "stage_products", "stage_orders", "stage_order_items"),
    "stage_event_ledger",
]

_STAGED = {
    silver.QUARANTINE: "python_quarantine",
    silver.PRODUCTS: "stage_products",
    silver.ORDERS: "stage_orders",
    silver.ORDER_ITEMS: "stage_order_items",
    silver.LEDGER: "stage_event_ledger",
}


def _relation(name: str, like: Table) -> Table:
    return Table(name, MetaData(), *(Column(c.name, c.type) for c in like.c))


def apply_window(
    lakehouse: Lakehouse,
    conn: Connection,
    after: int,
    upto: int,
    run_id: str | None,
    result: silver.SilverResult,
    chunk_events: int = silver.BATCH_EVENTS,
) -> int:
    """Apply the GRID events with `after < ingest_seq <= upto` as one unit of work; adds what
    was read and decided to `result` and returns the number of events applied."""
    now = datetime.now(UTC)
    # Statements go through the connection (not the driver's), so that the engine's errors
    # reach the caller as the lakehouse words them (`LakehouseMemoryError` names the limit).
    sql = conn.exec_driver_sql
    # Every scratch table is created in the window's transaction: a failure rolls them back
    # with the rest (dropping them after a failed statement would fail in its turn and hide it).
    with conn.begin():
        # Not str.format: the doubt expression has braces of its own.
        sql(_WINDOW.replace("{after}", str(after)).replace("{upto}", str(upto)))
        first, cursor, events = sql("SELECT min(pos), max(pos), count(*) FROM window_events").one()
        if not events:
            _drop_scratch(conn)
            return 0
        sql(silver_fast.SCRIPT)
        sql(_UNPROVEN)
        quarantined = _decide_unproven(conn, run_id, now, chunk_events)
        for statement in _STAGES[:-1]:
            sql(statement)
        sql(_STAGES[-1], {"now": now, "run_id": run_id})
        counts = {
            table: sql(f"SELECT count(*) FROM {name}").scalar_one()
            for table, name in _STAGED.items()
        }
        written = silver.apply_staged(
            conn,
            lambda table: nullcontext(_relation(_STAGED[table], table)),
            counts,
            first,
            cursor,
        )
        silver.finish_unit(conn, written, cursor, now, run_id)
        outcomes = sql("SELECT outcome, count(*) FROM stage_event_ledger GROUP BY outcome").all()
        _drop_scratch(conn)
    result.events_read += events
    result.cursor = cursor
    for outcome, count in outcomes:
        result.outcomes[outcome] = result.outcomes.get(outcome, 0) + count
    for table in (silver.PRODUCTS, silver.ORDERS, silver.ORDER_ITEMS):
        name = table.fullname
        result.rows_staged[name] = result.rows_staged.get(name, 0) + counts[table]
    result.rows_staged["silver.quarantine"] = (
        result.rows_staged.get("silver.quarantine", 0) + quarantined
    )
    return events


def _drop_scratch(conn: Connection) -> None:
    for name in _SCRATCH:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    conn.exec_driver_sql("DROP VIEW IF EXISTS events")


def _decide_unproven(conn: Connection, run_id: str | None, now: datetime, chunk_events: int) -> int:
    """The events the statement left, a chunk at a time through the Python grammar, their rows
    and outcomes kept in the python_* tables; returns how many were quarantined."""
    raw = conn.connection.driver_connection  # for registering Arrow tables only
    assert raw is not None
    total = conn.exec_driver_sql("SELECT count(*) FROM unproven").scalar_one()
    low, quarantined = 0, 0
    created = False
    while True:
        chunk = conn.exec_driver_sql(_UNPROVEN_CHUNK.format(low=low, high=low + chunk_events))
        events = duckdb_arrow(chunk).cast(BRONZE_EVENTS)
        batch = build_silver_batch(events)
        tables = {
            "python_products": batch.products,
            "python_orders": batch.orders,
            "python_order_items": batch.order_items,
            "python_quarantine": silver._quarantine_rows(events, batch, run_id, now),
            "python_outcomes": pa.table(
                {"event_id": events.column("event_id"), "outcome": batch.outcomes}
            ),
        }
        for name, rows in tables.items():
            raw.register("python_rows", rows)
            verb = "INSERT INTO {} SELECT *" if created else "CREATE TEMP TABLE {} AS SELECT *"
            conn.exec_driver_sql(verb.format(name) + " FROM python_rows")
            raw.unregister("python_rows")
        created = True
        quarantined += len(batch.quarantine)
        low += chunk_events
        if low >= total:
            return quarantined
