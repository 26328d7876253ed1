"""Turn a batch of Bronze events into validated Silver candidate rows plus a verdict per event.

An event either yields rows for Silver (`applied`), breaks a rule (`quarantined`, with every rule
it broke), is a GRID event Silver does not model (`unknown_type`) or is a heartbeat
(`not_domain`). Validation is pandera's, lazy, so all reasons are collected at once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pandera.errors
import pyarrow as pa

from grid_assets.schemas import values
from grid_assets.schemas.silver import OrderItemSchema, OrderSchema, ProductSchema

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
_INSTANT = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True, slots=True)
class BronzeRow:
    event_id: str
    ingest_seq: int
    event_type: str
    occurred_at: datetime
    payload: str


@dataclass
class SilverBatch:
    products: pa.Table
    orders: pa.Table
    order_items: pa.Table
    quarantine: dict[str, list[str]]  # event_id -> every rule it broke
    outcomes: dict[str, str]  # event_id -> applied | quarantined | unknown_type | not_domain


@dataclass
class _Candidates:
    products: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    reasons: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def _product_row(row: BronzeRow, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "product_id": payload.get("product_id"),
        "name": payload.get("name"),
        "category": payload.get("category"),
        "unit_price": payload.get("unit_price"),
        "currency": payload.get("currency", DEFAULT_CURRENCY),
        "active": payload.get("active", True),
        "updated_at": row.occurred_at,
        "event_id": row.event_id,
    }


def _order_rows(row: BronzeRow, payload: dict[str, Any], out: _Candidates) -> None:
    status = ORDER_EVENTS[row.event_type]
    placed = status == "placed"
    out.orders.append(
        {
            "order_id": payload.get("order_id"),
            "customer_id": payload.get("customer_id") if placed else None,
            "status": status,
            "currency": payload.get("currency", DEFAULT_CURRENCY) if placed else None,
            "placed_at": row.occurred_at if placed else None,
            "updated_at": row.occurred_at,
            "status_event_id": row.event_id,
            "placed_event_id": row.event_id if placed else None,
        }
    )
    if not placed:
        return
    items = payload.get("items")
    if not isinstance(items, list) or not items:
        out.reasons[row.event_id].append("items: non_empty_list")
        return
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            out.reasons[row.event_id].append(f"items[{number}]: object")
            continue
        out.items.append(
            {
                "order_id": payload.get("order_id"),
                "line_number": number,
                "product_id": item.get("product_id"),
                "quantity": item.get("quantity"),
                "unit_price": item.get("unit_price"),
                "discount": Decimal(0) if item.get("discount") is None else item["discount"],
                "event_id": row.event_id,
            }
        )


def _collect(rows: Iterable[BronzeRow], outcomes: dict[str, str]) -> _Candidates:
    out = _Candidates()
    for row in rows:
        if row.event_type in NOT_DOMAIN_EVENTS:
            outcomes[row.event_id] = "not_domain"
            continue
        if row.event_type not in PRODUCT_EVENTS and row.event_type not in ORDER_EVENTS:
            outcomes[row.event_id] = "unknown_type"
            continue
        outcomes[row.event_id] = "applied"
        # Integers stay int so that 1.5 or 2.0 can never pass as a quantity; the rest exact.
        payload = json.loads(row.payload, parse_float=Decimal)
        if row.event_type in PRODUCT_EVENTS:
            out.products.append(_product_row(row, payload))
        else:
            _order_rows(row, payload, out)
    return out


def _frame(records: list[dict[str, Any]], schema: type) -> pd.DataFrame:
    columns = list(schema.to_schema().columns)
    frame = pd.DataFrame.from_records(records, columns=columns).astype(object)
    for name, column in schema.to_schema().columns.items():
        if str(column.dtype).startswith("datetime64"):
            frame[name] = pd.to_datetime(frame[name], utc=True)
        elif str(column.dtype) in ("str", "int64"):
            frame[name] = frame[name].astype(str(column.dtype) if column.dtype else object)
    return frame


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


def build_silver_batch(rows: Sequence[BronzeRow]) -> SilverBatch:
    outcomes: dict[str, str] = {}
    cand = _collect(rows, outcomes)
    products = _frame(cand.products, ProductSchema)
    orders = _frame(cand.orders, OrderSchema)
    items = _frame(cand.items, OrderItemSchema)

    reasons: dict[str, list[str]] = defaultdict(list)
    for found in (
        cand.reasons,
        _failures(products, ProductSchema, "event_id"),
        _failures(orders, OrderSchema, "status_event_id"),
        _failures(items, OrderItemSchema, "event_id", prefix="items"),
    ):
        for event_id, labels in found.items():
            reasons[event_id].extend(labels)
    for event_id in reasons:
        outcomes[event_id] = "quarantined"
    bad = list(reasons)
    return SilverBatch(
        products=_products_arrow(_without(products, "event_id", bad)),
        orders=_orders_arrow(_without(orders, "status_event_id", bad)),
        order_items=_items_arrow(_without(items, "event_id", bad)),
        quarantine={k: sorted(set(v), key=v.index) for k, v in reasons.items()},
        outcomes=outcomes,
    )


def _without(frame: pd.DataFrame, column: str, event_ids: list[str]) -> pd.DataFrame:
    """The rows of `frame` whose event is not among `event_ids`."""
    return frame.loc[~frame[column].isin(event_ids)]  # pyright: ignore[reportReturnType]


def _money(column: Iterable[Any]) -> pa.Array:
    # Rows here passed validation: a JSON number is already the exact Decimal to store; only
    # decimal strings and integers still need converting.
    return pa.array(
        [v if type(v) is Decimal else values.to_decimal(v) for v in column], type=_MONEY
    )


def _instants(column: Any) -> pa.Array:
    return pa.array(column, type=_INSTANT, from_pandas=True)


def _strings(column: Iterable[Any]) -> pa.Array:
    return pa.array([None if v is None or v is pd.NaT else str(v) for v in column], pa.string())


def _products_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.table(
        {
            "product_id": _strings(frame["product_id"]),
            "name": _strings(frame["name"]),
            "category": _strings(frame["category"]),
            "unit_price": _money(frame["unit_price"]),
            "currency": _strings(frame["currency"]),
            "active": pa.array(list(frame["active"]), pa.bool_()),
            "updated_at": _instants(frame["updated_at"]),
            "event_id": _strings(frame["event_id"]),
        }
    )


def _orders_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.table(
        {
            "order_id": _strings(frame["order_id"]),
            "customer_id": _strings(frame["customer_id"]),
            "status": _strings(frame["status"]),
            "currency": _strings(frame["currency"]),
            "placed_at": _instants(frame["placed_at"]),
            "updated_at": _instants(frame["updated_at"]),
            "status_event_id": _strings(frame["status_event_id"]),
            "placed_event_id": _strings(frame["placed_event_id"]),
        }
    )


def _items_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.table(
        {
            "order_id": _strings(frame["order_id"]),
            "line_number": pa.array(list(frame["line_number"]), pa.int32()),
            "product_id": _strings(frame["product_id"]),
            "quantity": pa.array(list(frame["quantity"]), pa.int32()),
            "unit_price": _money(frame["unit_price"]),
            "discount": _money(frame["discount"]),
            "event_id": _strings(frame["event_id"]),
        }
    )
