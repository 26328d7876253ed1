"""Statements over Silver: reading Bronze past the cursor, folding a staged batch of validated
rows in (latest wins), and the cursor itself."""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    Delete,
    Insert,
    Select,
    and_,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.sql import FromClause

from grid_assets.models.bronze import Event
from grid_assets.models.silver import Cursor, Order, OrderItem, Product
from grid_assets.queries.common import literal_row
from grid_assets.queries.dialect import Merge

PRODUCTS = Product.__table__
ORDERS = Order.__table__
ORDER_ITEMS = OrderItem.__table__
EVENTS = Event.__table__
CURSORS = Cursor.__table__


def newer(instant_new, id_new, instant_old, id_old) -> ColumnElement[bool]:
    """Latest-wins order: by occurred_at, ties by event_id."""
    return or_(
        instant_old.is_(None),
        instant_new > instant_old,
        and_(instant_new == instant_old, id_new > id_old),
    )


def latest_per_key(
    stage: FromClause, keys: list[str], instant: str, event_id: str, name: str = "s"
) -> FromClause:
    """One row per key from a staged batch: the latest by (instant, event_id), as alias `name`."""
    rank = (
        func.row_number()
        .over(
            partition_by=[stage.c[k] for k in keys],
            order_by=[stage.c[instant].desc(), stage.c[event_id].desc()],
        )
        .label("rn")
    )
    ranked = select(*stage.c, rank).subquery("ranked")
    return select(*(ranked.c[c.name] for c in stage.c)).where(ranked.c.rn == 1).subquery(name)


def merge_products(stage: FromClause) -> Merge:
    s = latest_per_key(stage, ["product_id"], "updated_at", "event_id")
    t = PRODUCTS.alias("t")
    columns = [c.name for c in PRODUCTS.c]
    return Merge(
        target=t,
        source=s,
        on=t.c.product_id == s.c.product_id,
        update_when=newer(s.c.updated_at, s.c.event_id, t.c.updated_at, t.c.event_id),
        update_values={c: s.c[c] for c in columns if c != "product_id"},
        insert_values={c: s.c[c] for c in columns},
    )


_STATUS = ("status", "updated_at", "status_event_id")
_PLACEMENT = ("customer_id", "currency", "placed_at", "placed_event_id")


def merge_orders(stage: FromClause) -> Merge:
    """A batch's orders in one MERGE. The latest event of any kind sets an order's status; the
    latest valid `order.placed` sets its customer, currency, placed_at and the lines' source.
    Each group of columns moves only with a strictly newer event of its own kind, so the two
    never undo each other whatever order the events come in."""
    latest = latest_per_key(stage, ["order_id"], "updated_at", "status_event_id", "latest")
    placements = select(*stage.c).where(stage.c.placed_event_id.is_not(None)).subquery("placed")
    placed = latest_per_key(placements, ["order_id"], "placed_at", "placed_event_id", "placement")
    s = (
        select(
            latest.c.order_id, *(latest.c[c] for c in _STATUS), *(placed.c[c] for c in _PLACEMENT)
        )
        .select_from(latest.outerjoin(placed, placed.c.order_id == latest.c.order_id))
        .subquery("s")
    )
    t = ORDERS.alias("t")
    status_newer = newer(s.c.updated_at, s.c.status_event_id, t.c.updated_at, t.c.status_event_id)
    placement_newer = and_(
        s.c.placed_event_id.is_not(None),
        newer(s.c.placed_at, s.c.placed_event_id, t.c.placed_at, t.c.placed_event_id),
    )
    status = {c: s.c[c] for c in _STATUS}
    placement = {c: s.c[c] for c in _PLACEMENT}
    return Merge(
        target=t,
        source=s,
        on=t.c.order_id == s.c.order_id,
        update_when=and_(status_newer, placement_newer),
        update_values=status | placement,
        more_updates=[(status_newer, status), (placement_newer, placement)],
        # A new order: the batch's latest placement, if any (when the latest event is a
        # placement, it is that one).
        insert_values={c.name: s.c[c.name] for c in ORDERS.c},
    )


def delete_superseded_items(stage_orders: FromClause) -> Delete:
    """Drop lines of touched orders that no longer come from the order's latest placement.

    Only an order the batch holds a placement for can have its placement moved (`merge_orders`
    moves it with a newer `order.placed` alone), so only those orders' lines are looked at: a
    batch's placements are mostly new orders, whose ids the engine finds in the last row groups
    of `order_items` by their min/max statistics, where a status event may touch any order."""
    placed = select(stage_orders.c.order_id).where(stage_orders.c.placed_event_id.is_not(None))
    return delete(ORDER_ITEMS).where(
        ORDER_ITEMS.c.order_id.in_(placed),
        ~exists().where(
            ORDERS.c.order_id == ORDER_ITEMS.c.order_id,
            ORDERS.c.placed_event_id == ORDER_ITEMS.c.event_id,
        ),
    )


def insert_current_items(stage_items: FromClause) -> Insert:
    """Insert staged lines that belong to their order's latest placement and are not there yet."""
    columns = [c.name for c in ORDER_ITEMS.c]
    query = (
        select(*(stage_items.c[c] for c in columns))
        .join(
            ORDERS,
            and_(
                ORDERS.c.order_id == stage_items.c.order_id,
                ORDERS.c.placed_event_id == stage_items.c.event_id,
            ),
        )
        .where(
            ~exists().where(
                ORDER_ITEMS.c.order_id == stage_items.c.order_id,
                ORDER_ITEMS.c.line_number == stage_items.c.line_number,
            )
        )
    )
    return insert(ORDER_ITEMS).from_select(columns, query)


def unprocessed_events(after_seq: int, up_to_seq: int) -> Select:
    """GRID events (not the pipeline's own) with `after_seq < ingest_seq <= up_to_seq`, in
    arrival order. A bounded range, not ORDER BY ... LIMIT: the engine skips every stored block
    outside it by its min/max statistics, so a read costs the window, not the size of Bronze."""
    return (
        select(
            EVENTS.c.event_id,
            EVENTS.c.ingest_seq,
            EVENTS.c.event_type,
            EVENTS.c.occurred_at,
            EVENTS.c.payload,
        )
        .where(
            EVENTS.c.ingest_seq > after_seq,
            EVENTS.c.ingest_seq <= up_to_seq,
            ~EVENTS.c.event_type.startswith("pipeline."),
        )
        .order_by(EVENTS.c.ingest_seq)
    )


def cursor_position(consumer: str) -> Select:
    """The last Bronze arrival position `consumer` has applied (no row before its first)."""
    return select(CURSORS.c.last_ingest_seq).where(CURSORS.c.consumer == consumer)


def save_cursor(consumer: str, seq: int, now) -> Merge:
    """Move `consumer`'s cursor to `seq`, forward only: a replayed batch never moves it back."""
    s = literal_row(consumer=consumer, last_ingest_seq=seq, updated_at=now)
    t = CURSORS.alias("t")
    return Merge(
        target=t,
        source=s,
        on=t.c.consumer == s.c.consumer,
        update_when=s.c.last_ingest_seq > t.c.last_ingest_seq,
        update_values={"last_ingest_seq": s.c.last_ingest_seq, "updated_at": s.c.updated_at},
        insert_values={c.name: s.c[c.name] for c in CURSORS.c},
    )
