"""Turn a batch of Bronze events into validated Silver candidate rows plus a verdict per event.

An event either yields rows for Silver (`applied`), breaks a rule (`quarantined`, with every rule
it broke), is a GRID event Silver does not model (`unknown_type`) or is a heartbeat
(`not_domain`). Validation is pandera's, lazy, so all reasons are collected at once. A payload
Silver cannot read or hold (`transform.payload`) is quarantined on that defect: no input stops a
batch.

The batch arrives as Arrow columns and leaves as Arrow tables: each payload is decoded once, the
candidate rows are built column by column, and instants never become Python objects.
"""

from __future__ import annotations

import itertools
import operator
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors
import pyarrow as pa

from grid_assets.ingest.arrow import pc
from grid_assets.schemas import values
from grid_assets.schemas.silver import OrderItemSchema, OrderSchema, ProductSchema
from grid_assets.transform import silver_fast
from grid_assets.transform.payload import decode_payload

PRODUCT_EVENTS = ("product.created", "product.updated")
ORDER_EVENTS = {
    "order.placed": "placed",
    "order.paid": "paid",
    "order.shipped": "shipped",
    "order.cancelled": "cancelled",
}
NOT_DOMAIN_EVENTS = ("system.heartbeat",)
DEFAULT_CURRENCY = "USD"

_MONEY = pa.decimal128(18, 6)
_MONEY_STEP = Decimal(1).scaleb(-values.MONEY_MAX_DECIMALS)
INSTANT = pa.timestamp("us", tz="UTC")
# The Bronze columns Silver reads (queries.silver.unprocessed_events), in that order.
BRONZE_EVENTS = pa.schema(
    [
        ("event_id", pa.string()),
        ("ingest_seq", pa.int64()),
        ("event_type", pa.string()),
        ("occurred_at", INSTANT),
        ("payload", pa.string()),
    ]
)


@dataclass
class SilverBatch:
    products: pa.Table
    orders: pa.Table
    order_items: pa.Table
    # event_id -> every rule it broke, sorted and without repeats: the stored list then depends
    # on the event alone, not on which batch (or which run after a crash) it was validated in.
    quarantine: dict[str, list[str]]
    outcomes: pa.Array  # strings, per Bronze event, in batch order: applied | quarantined | ...


class _Rows:
    """Candidate rows of one Silver table, one tuple of `fields` per row, with the position of
    the producing event in the Bronze batch (instants are taken from there, in Arrow)."""

    def __init__(self, *fields: str) -> None:
        self.fields = fields
        self.rows: list[tuple[Any, ...]] = []
        self.source: list[int] = []

    def columns(self) -> dict[str, list[Any]]:
        if not self.rows:
            return {name: [] for name in self.fields}
        return {
            name: list(map(operator.itemgetter(i), self.rows)) for i, name in enumerate(self.fields)
        }


@dataclass
class _Candidates:
    products: _Rows = field(
        default_factory=lambda: _Rows(
            "product_id", "name", "category", "unit_price", "currency", "active", "event_id"
        )
    )
    orders: _Rows = field(
        default_factory=lambda: _Rows(
            "order_id", "customer_id", "status", "currency", "status_event_id", "placed_event_id"
        )
    )
    items: _Rows = field(
        default_factory=lambda: _Rows(
            "order_id",
            "line_number",
            "product_id",
            "quantity",
            "unit_price",
            "discount",
            "event_id",
        )
    )
    placed: list[bool] = field(default_factory=list)  # per order row: is it a placement
    reasons: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def _add_order(out: _Candidates, position: int, event_id: str, status: str, payload) -> None:
    placed = status == "placed"
    order_id = payload.get("order_id")
    out.placed.append(placed)
    out.orders.source.append(position)
    if not placed:
        out.orders.rows.append((order_id, None, status, None, event_id, None))
        return
    currency = payload.get("currency", DEFAULT_CURRENCY)
    out.orders.rows.append(
        (order_id, payload.get("customer_id"), status, currency, event_id, event_id)
    )
    items = payload.get("items")
    if not isinstance(items, list) or not items:
        out.reasons[event_id].append("items: non_empty_list")
        return
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            out.reasons[event_id].append(f"items[{number}]: object")
            continue
        discount = item.get("discount")
        out.items.source.append(position)
        out.items.rows.append(
            (
                order_id,
                number,
                item.get("product_id"),
                item.get("quantity"),
                item.get("unit_price"),
                Decimal(0) if discount is None else discount,
                event_id,
            )
        )


def _collect(events: pa.Table, outcomes: list[str]) -> _Candidates:
    out = _Candidates()
    columns = (events.column(name).to_pylist() for name in ("event_id", "event_type", "payload"))
    for position, (event_id, event_type, text) in enumerate(zip(*columns, strict=True)):
        if event_type in NOT_DOMAIN_EVENTS:
            outcomes.append("not_domain")
            continue
        status = ORDER_EVENTS.get(event_type)
        if status is None and event_type not in PRODUCT_EVENTS:
            outcomes.append("unknown_type")
            continue
        outcomes.append("applied")
        payload, defect = decode_payload(text)
        if defect is not None:
            out.reasons[event_id].append(defect)
        if payload is None:  # unreadable: quarantined on its defect alone
            continue
        if status is not None:
            _add_order(out, position, event_id, status, payload)
            continue
        out.products.source.append(position)
        out.products.rows.append(
            (
                payload.get("product_id"),
                payload.get("name"),
                payload.get("category"),
                payload.get("unit_price"),
                payload.get("currency", DEFAULT_CURRENCY),
                payload.get("active", True),
                event_id,
            )
        )
    return out


def _frame(
    columns: dict[str, list[Any]], schema: type, instants: dict[str, pa.ChunkedArray]
) -> pd.DataFrame:
    """The candidate rows as pandera sees them: raw JSON values in object columns, instants
    as UTC timestamps, ids as strings."""
    data: dict[str, Any] = {}
    for name, column in schema.to_schema().columns.items():
        if name in instants:
            data[name] = instants[name].to_pandas()
        elif str(column.dtype) == "int64":
            data[name] = pd.Series(columns[name], dtype="int64")
        else:
            data[name] = pd.Series(columns[name], dtype=object)
    return pd.DataFrame(data)


def _failures(frame: pd.DataFrame, schema: type, id_column: str, prefix: str = "") -> dict:
    """event_id -> reasons for every rule any row of that event broke."""
    if frame.empty:
        return {}
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as err:
        found: dict[str, list[str]] = defaultdict(list)
        cases = err.failure_cases
        if cases["index"].isna().any():
            raise  # a frame-level (programming) error, not bad data
        for index, column, check in cases[["index", "column", "check"]].itertuples(index=False):
            label = f"{column}: {check}"
            if prefix:
                label = f"{prefix}[{frame.at[index, 'line_number']}].{label}"
            found[frame.at[index, id_column]].append(label)
        return found
    return {}


class SilverEventError(RuntimeError):
    """Silver failed on an event in a way no rule describes: a defect of Silver, not of the
    event. The message names the event (or the events that only fail together)."""

    def __init__(self, message: str, event_ids: list[str]) -> None:
        super().__init__(message)
        self.event_ids = event_ids


def build_silver_batch(events: pa.Table) -> SilverBatch:
    """Validate one batch of Bronze events (columns of `BRONZE_EVENTS`, in arrival order).

    Input never raises here: whatever an event holds, it is applied or quarantined. Should the
    code fail anyway, the batch is halved until one event is found that fails on its own, and
    a `SilverEventError` names it."""
    events = events.select(BRONZE_EVENTS.names).cast(BRONZE_EVENTS)
    try:
        return _build_with_fast_path(events)
    except MemoryError:
        raise
    except Exception as exc:
        if events.num_rows == 0:
            raise
        culprit, cause = _culprit(events, exc)
        raise _event_error(culprit, cause) from cause


def _culprit(events: pa.Table, error: Exception) -> tuple[pa.Table, Exception]:
    """The smallest part of a failing batch found to fail on its own, and its error."""
    while events.num_rows > 1:
        half = events.num_rows // 2
        for part in (events.slice(0, half), events.slice(half)):
            try:
                _build_with_fast_path(part)
            except Exception as exc:
                events, error = part, exc
                break
        else:
            break  # each half passes alone: the events fail only together
    return events, error


def _event_error(events: pa.Table, cause: Exception) -> SilverEventError:
    ids = events.column("event_id").to_pylist()
    seqs = events.column("ingest_seq").to_pylist()
    if len(ids) == 1:
        event_type = events.column("event_type")[0].as_py()
        what = f"event {ids[0]!r} ({event_type}, ingest_seq {seqs[0]})"
    else:
        what = f"the events {ids[0]!r} to {ids[-1]!r} together (ingest_seq {seqs[0]}..{seqs[-1]})"
    return SilverEventError(
        f"Silver cannot process {what}: {type(cause).__name__}: {cause}. This is a defect in "
        "Silver, not a rule the event broke; nothing of the batch was written and the cursor "
        "has not moved.",
        ids,
    )


# An event's outcome by its type alone (a domain event is applied unless a rule says otherwise),
# as codes into OUTCOMES.
OUTCOMES = pa.array(["applied", "quarantined", "not_domain", "unknown_type"], pa.string())
_APPLIED, _QUARANTINED, _NOT_DOMAIN, _UNKNOWN_TYPE = range(len(OUTCOMES))
_DOMAIN_TYPES = pa.array([*PRODUCT_EVENTS, *ORDER_EVENTS], pa.string())
_NOT_DOMAIN_TYPES = pa.array(NOT_DOMAIN_EVENTS, pa.string())


def _build_with_fast_path(events: pa.Table) -> SilverBatch:
    """`_build`'s result, with the events `silver_fast` certifies laid out by DuckDB and only
    the other domain events read by `_build`; rows keep `_build`'s order (event, then line)."""
    certified = silver_fast.certify(events)
    types = events.column("event_type")
    domain = pc.is_in(types, value_set=_DOMAIN_TYPES).to_numpy(zero_copy_only=False)
    not_domain = pc.is_in(types, value_set=_NOT_DOMAIN_TYPES).to_numpy(zero_copy_only=False)
    codes = np.where(domain, _APPLIED, np.where(not_domain, _NOT_DOMAIN, _UNKNOWN_TYPE))
    undecided = domain.copy()
    undecided[certified.positions()] = False
    rest = np.flatnonzero(undecided)
    rest_events = events.take(pa.array(rest))
    python = _build(rest_events)
    quarantined = pc.equal(python.outcomes, "quarantined").to_numpy(zero_copy_only=False)
    codes[rest[quarantined]] = _QUARANTINED
    outcomes = OUTCOMES.take(pa.array(codes))
    rest_ids = rest_events.column("event_id").to_pylist()
    position_of = dict(zip(rest_ids, rest.tolist(), strict=True))
    ids = events.column("event_id")
    occurred = events.column("occurred_at")

    def positioned(table: pa.Table, id_column: str) -> pa.Table:
        found = [position_of[i] for i in table.column(id_column).to_pylist()]
        return table.append_column("pos", pa.array(found, pa.int64()))

    def merged(fast: pa.Table, slow: pa.Table, keys: list[tuple[str, str]]) -> pa.Table:
        both = pa.concat_tables([fast.select(slow.schema.names).cast(slow.schema), slow])
        return both.sort_by(keys).drop_columns(["pos"])

    p = certified.products
    fast_products = p.select(
        ["product_id", "name", "category", "unit_price", "currency", "active"]
    ).append_column("updated_at", occurred.take(p.column("pos")))
    fast_products = fast_products.append_column("event_id", ids.take(p.column("pos")))
    fast_products = fast_products.append_column("pos", p.column("pos"))
    o = certified.orders
    placed = o.column("placed_pos")  # null for a status event: its placed_* stay null
    fast_orders = pa.table(
        {
            **{name: o.column(name) for name in ("order_id", "customer_id", "status", "currency")},
            "placed_at": occurred.take(placed),
            "updated_at": occurred.take(o.column("pos")),
            "status_event_id": ids.take(o.column("pos")),
            "placed_event_id": ids.take(placed),
            "pos": o.column("pos"),
        }
    )
    i = certified.items
    fast_items = i.select(
        ["order_id", "line_number", "product_id", "quantity", "unit_price", "discount"]
    ).append_column("event_id", ids.take(i.column("pos")))
    fast_items = fast_items.append_column("pos", i.column("pos"))
    by_event = [("pos", "ascending")]
    return SilverBatch(
        products=merged(fast_products, positioned(python.products, "event_id"), by_event),
        orders=merged(fast_orders, positioned(python.orders, "status_event_id"), by_event),
        order_items=merged(
            fast_items,
            positioned(python.order_items, "event_id"),
            [*by_event, ("line_number", "ascending")],
        ),
        quarantine=python.quarantine,
        outcomes=outcomes,
    )


def _build(events: pa.Table) -> SilverBatch:
    outcomes: list[str] = []
    cand = _collect(events, outcomes)
    occurred = events.column("occurred_at")
    product_at = occurred.take(pa.array(cand.products.source, pa.int64()))
    order_at = occurred.take(pa.array(cand.orders.source, pa.int64()))
    # placed_at: the placement's instant, null on status events.
    placed = zip(cand.orders.source, cand.placed, strict=True)
    placed_sources = [source if is_placement else None for source, is_placement in placed]
    order_placed_at = occurred.take(pa.array(placed_sources, pa.int64()))
    product_rows = cand.products.columns()
    order_rows = cand.orders.columns()
    item_rows = cand.items.columns()
    products = _frame(product_rows, ProductSchema, {"updated_at": product_at})
    orders = _frame(order_rows, OrderSchema, {"placed_at": order_placed_at, "updated_at": order_at})
    items = _frame(item_rows, OrderItemSchema, {})

    reasons: dict[str, list[str]] = defaultdict(list)
    for found in (
        cand.reasons,
        _failures(products, ProductSchema, "event_id"),
        _failures(orders, OrderSchema, "status_event_id"),
        _failures(items, OrderItemSchema, "event_id", prefix="items"),
    ):
        for event_id, labels in found.items():
            reasons[event_id].extend(labels)
    if reasons:
        for position, event_id in enumerate(events.column("event_id").to_pylist()):
            if event_id in reasons:
                outcomes[position] = "quarantined"
    return SilverBatch(
        products=_products_arrow(product_rows, product_at, reasons),
        orders=_orders_arrow(order_rows, order_placed_at, order_at, reasons),
        order_items=_items_arrow(item_rows, reasons),
        quarantine={k: sorted(set(v)) for k, v in reasons.items()},
        outcomes=pa.array(outcomes, pa.string()),
    )


# -- rows that passed, as typed Arrow columns ---------------------------------------------------


def _keep(event_ids: list[str], bad: dict[str, list[str]]) -> list[bool] | None:
    """Which rows to keep: those whose event broke no rule (None: all of them)."""
    if not bad:
        return None
    return [event_id not in bad for event_id in event_ids]


def _kept(column: list[Any], keep: list[bool] | None) -> list[Any]:
    return column if keep is None else list(itertools.compress(column, keep))


def _kept_array(array: pa.Array | pa.ChunkedArray, keep: list[bool] | None):
    return array if keep is None else array.filter(pa.array(keep, pa.bool_()))


def _money(column: list[Any]) -> pa.Array:
    # Rows here passed validation: a JSON number is already the exact Decimal to store; only
    # decimal strings and integers still need converting.
    exact = [v if type(v) is Decimal else values.to_decimal(v) for v in column]
    try:
        return pa.array(exact, type=_MONEY)
    except pa.ArrowInvalid:
        # Arrow sizes a Decimal by its own digits and exponent, so a valid amount spelled with
        # a positive exponent (a JSON 0e20) does not fit; at the column's scale it does, exactly.
        return pa.array([v if v is None else v.quantize(_MONEY_STEP) for v in exact], _MONEY)


def _products_arrow(rows: dict[str, list], updated_at, bad: dict[str, list[str]]) -> pa.Table:
    keep = _keep(rows["event_id"], bad)
    c = {name: _kept(column, keep) for name, column in rows.items()}
    return pa.table(
        {
            "product_id": pa.array(c["product_id"], pa.string()),
            "name": pa.array(c["name"], pa.string()),
            "category": pa.array(c["category"], pa.string()),
            "unit_price": _money(c["unit_price"]),
            "currency": pa.array(c["currency"], pa.string()),
            "active": pa.array(c["active"], pa.bool_()),
            "updated_at": _kept_array(updated_at, keep),
            "event_id": pa.array(c["event_id"], pa.string()),
        }
    )


def _orders_arrow(
    rows: dict[str, list], placed_at, updated_at, bad: dict[str, list[str]]
) -> pa.Table:
    keep = _keep(rows["status_event_id"], bad)
    c = {name: _kept(column, keep) for name, column in rows.items()}
    return pa.table(
        {
            "order_id": pa.array(c["order_id"], pa.string()),
            "customer_id": pa.array(c["customer_id"], pa.string()),
            "status": pa.array(c["status"], pa.string()),
            "currency": pa.array(c["currency"], pa.string()),
            "placed_at": _kept_array(placed_at, keep),
            "updated_at": _kept_array(updated_at, keep),
            "status_event_id": pa.array(c["status_event_id"], pa.string()),
            "placed_event_id": pa.array(c["placed_event_id"], pa.string()),
        }
    )


def _items_arrow(rows: dict[str, list], bad: dict[str, list[str]]) -> pa.Table:
    keep = _keep(rows["event_id"], bad)
    c = {name: _kept(column, keep) for name, column in rows.items()}
    return pa.table(
        {
            "order_id": pa.array(c["order_id"], pa.string()),
            "line_number": pa.array(c["line_number"], pa.int32()),
            "product_id": pa.array(c["product_id"], pa.string()),
            "quantity": pa.array(c["quantity"], pa.int32()),
            "unit_price": _money(c["unit_price"]),
            "discount": _money(c["discount"]),
            "event_id": pa.array(c["event_id"], pa.string()),
        }
    )
