"""Northwind sample data as GRID raw events, plus figures computed straight from its CSVs.

The converter and `reference_figures` deliberately share no parsing code: the reference is what
the Gold tables are judged against, so a converter bug must not be able to hide in it.
Standard library only, so the helpers work without the pipeline's dependencies.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

NORTHWIND_DIR_ENV = "GRID_NORTHWIND_DIR"
REQUIRED_FILES = ("categories.csv", "products.csv", "orders.csv", "order-details.csv")

# Figures published for this data set (datasets/SOURCES.md), rounded half-up to cents.
PUBLISHED: dict[str, Any] = {
    "total_revenue": Decimal("1265793.04"),
    "order_count": 830,
    "average_order_value": Decimal("1525.05"),
    "revenue_by_category": {
        "Beverages": Decimal("267868.18"),
        "Condiments": Decimal("106047.09"),
        "Confections": Decimal("167357.23"),
        "Dairy Products": Decimal("234507.29"),
        "Grains/Cereals": Decimal("95744.59"),
        "Meat/Poultry": Decimal("163022.36"),
        "Produce": Decimal("99984.58"),
        "Seafood": Decimal("131261.74"),
    },
}

EVENT_SOURCE = "northwind"
# Products must exist before the first order (1996-07-04) for the lines to find their category.
PRODUCTS_OCCURRED_AT = "1996-07-01T00:00:00Z"
_NORTHWIND_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_CENT = Decimal("0.01")


def find_northwind_dir() -> Path | None:
    """The Northwind CSV folder: `GRID_NORTHWIND_DIR`, else `../shared/datasets/northwind`."""
    configured = os.environ.get(NORTHWIND_DIR_ENV, "").strip()
    if configured:
        candidate = Path(configured)
    else:
        repo_root = Path(__file__).resolve().parent.parent
        candidate = repo_root.parent / "shared" / "datasets" / "northwind"
    if not all((candidate / name).is_file() for name in REQUIRED_FILES):
        return None
    return candidate


def running_in_ci() -> bool:
    """True when `CI` is set the way CI services set it, so missing data fails instead of skips."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_northwind_message() -> str:
    return (
        "Northwind CSVs not found: set GRID_NORTHWIND_DIR to a folder holding "
        f"{', '.join(REQUIRED_FILES)} (default: ../shared/datasets/northwind next to the repo)"
    )


# --- converter -------------------------------------------------------------------------------


def _csv_rows(path: Path, expected_header: tuple[str, ...]) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = tuple(rows[0][: len(expected_header)])
    if header != expected_header:
        raise ValueError(f"{path.name}: unexpected header {rows[0]!r}")
    return rows[1:]


def _checked_decimal(text: str, what: str) -> str:
    # The text goes out unchanged so no float can creep in; this only proves it is a decimal.
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or text.strip() != text:
        raise ValueError(f"{what}: not a non-negative decimal: {text!r}")
    return text


def _to_utc_iso(northwind_time: str) -> str:
    """'1996-07-04 00:00:00.000' (no zone, UTC by convention) -> '1996-07-04T00:00:00Z'."""
    parsed = datetime.strptime(northwind_time, _NORTHWIND_TIME_FORMAT).replace(tzinfo=UTC)
    return parsed.isoformat().replace("+00:00", "Z")


def _product_events(src: Path) -> list[dict[str, Any]]:
    categories = {
        row[0]: row[1] for row in _csv_rows(src / "categories.csv", ("categoryID", "categoryName"))
    }
    header = (
        "productID",
        "productName",
        "supplierID",
        "categoryID",
        "quantityPerUnit",
        "unitPrice",
        "unitsInStock",
        "unitsOnOrder",
        "reorderLevel",
        "discontinued",
    )
    events = []
    for row in _csv_rows(src / "products.csv", header):
        product_id, name, _, category_id, _, unit_price, *_, discontinued = row
        if discontinued not in ("0", "1"):
            raise ValueError(f"product {product_id}: discontinued={discontinued!r}")
        events.append(
            {
                "event_id": f"nw-product-{product_id}",
                "event_type": "product.created",
                "occurred_at": PRODUCTS_OCCURRED_AT,
                "source": EVENT_SOURCE,
                "payload": {
                    "product_id": product_id,
                    "name": name,
                    "category": categories[category_id],
                    "unit_price": _checked_decimal(unit_price, f"product {product_id} unitPrice"),
                    "currency": "USD",
                    "active": discontinued == "0",
                },
            }
        )
    return events


def _order_events(src: Path) -> list[dict[str, Any]]:
    items_by_order: dict[str, list[dict[str, Any]]] = defaultdict(list)
    detail_header = ("orderID", "productID", "unitPrice", "quantity", "discount")
    for order_id, product_id, unit_price, quantity, discount in _csv_rows(
        src / "order-details.csv", detail_header
    ):
        where = f"order {order_id} product {product_id}"
        items_by_order[order_id].append(
            {
                "product_id": product_id,
                "quantity": int(quantity),
                "unit_price": _checked_decimal(unit_price, f"{where} unitPrice"),
                "discount": _checked_decimal(discount, f"{where} discount"),
            }
        )

    # Unquoted commas in shipAddress shift the later columns, so only the first 8 are trusted.
    order_header = (
        "orderID",
        "customerID",
        "employeeID",
        "orderDate",
        "requiredDate",
        "shippedDate",
        "shipVia",
        "freight",
    )
    events = []
    for row in _csv_rows(src / "orders.csv", order_header):
        order_id, customer_id, order_date, shipped_date = row[0], row[1], row[3], row[5]
        events.append(
            {
                "event_id": f"nw-order-{order_id}-placed",
                "event_type": "order.placed",
                "occurred_at": _to_utc_iso(order_date),
                "source": EVENT_SOURCE,
                "payload": {
                    "order_id": order_id,
                    "customer_id": customer_id,
                    "items": items_by_order.pop(order_id),
                    "currency": "USD",
                },
            }
        )
        if shipped_date != "NULL":
            events.append(
                {
                    "event_id": f"nw-order-{order_id}-shipped",
                    "event_type": "order.shipped",
                    "occurred_at": _to_utc_iso(shipped_date),
                    "source": EVENT_SOURCE,
                    "payload": {"order_id": order_id},
                }
            )
    if items_by_order:
        raise ValueError(f"order lines without an order: {sorted(items_by_order)}")
    return events


def landing_file_name(index: int) -> str:
    """Name of the index-th file; the suffix rotates so every accepted file kind is exercised."""
    suffix = (".ndjson", ".ndjson.gz", ".jsonl")[index % 3]
    return f"northwind-{index + 1:02d}{suffix}"


def write_northwind_events(src: Path, landing: Path, n_files: int = 3) -> int:
    """Write Northwind as GRID raw events into `landing`; return how many events were written.

    Events go out in time order, split into `n_files` consecutive chunks whose names sort in that
    order. The output is byte-for-byte deterministic, gzip headers included.
    """
    if n_files < 1:
        raise ValueError("n_files must be at least 1")
    events = _product_events(src) + _order_events(src)
    # All offsets are Z, so the ISO text sorts chronologically.
    events.sort(key=lambda event: (event["occurred_at"], event["event_id"]))

    landing.mkdir(parents=True, exist_ok=True)
    chunk_size = -(-len(events) // n_files)
    for index in range(n_files):
        chunk = events[index * chunk_size : (index + 1) * chunk_size]
        text = "".join(
            json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n" for event in chunk
        )
        name = landing_file_name(index)
        data = text.encode("utf-8")
        if name.endswith(".gz"):
            # mtime=0 keeps the gzip header, and so the file, identical between runs.
            data = gzip.compress(data, mtime=0)
        (landing / name).write_bytes(data)
    return len(events)


# --- independent reference -------------------------------------------------------------------


def _round_cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def reference_figures(src: Path) -> dict[str, Any]:
    """Gold figures computed straight from the CSVs with exact decimals, per the contract.

    Every order counts (Northwind has no cancellations). Revenue is rounded half-up to cents once,
    at the end; `*_exact` keys keep the unrounded sums. Average order value is the rounded revenue
    divided by the order count, rounded again.
    """
    with (src / "categories.csv").open(newline="", encoding="utf-8") as handle:
        category_names = {row["categoryID"]: row["categoryName"] for row in csv.DictReader(handle)}
    with (src / "products.csv").open(newline="", encoding="utf-8") as handle:
        category_of = {
            row["productID"]: category_names[row["categoryID"]] for row in csv.DictReader(handle)
        }
    order_dates: dict[str, date] = {}
    with (src / "orders.csv").open(newline="", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    for line in lines[1:]:
        fields = line.split(",")
        order_dates[fields[0]] = date.fromisoformat(fields[3][:10])

    total = Decimal(0)
    line_count = 0
    orders: set[str] = set()
    cat_revenue: dict[str, Decimal] = defaultdict(Decimal)
    cat_orders: dict[str, set[str]] = defaultdict(set)
    cat_units: dict[str, int] = defaultdict(int)
    day_revenue: dict[date, Decimal] = defaultdict(Decimal)
    day_orders: dict[date, set[str]] = defaultdict(set)
    with (src / "order-details.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            order_id = row["orderID"]
            quantity = int(row["quantity"])
            line = quantity * Decimal(row["unitPrice"]) * (1 - Decimal(row["discount"]))
            category = category_of.get(row["productID"], "unknown")
            day = order_dates[order_id]
            total += line
            line_count += 1
            orders.add(order_id)
            cat_revenue[category] += line
            cat_orders[category].add(order_id)
            cat_units[category] += quantity
            day_revenue[day] += line
            day_orders[day].add(order_id)

    def average(revenue: Decimal, count: int) -> Decimal:
        return _round_cents(_round_cents(revenue) / count)

    return {
        "total_revenue": _round_cents(total),
        "total_revenue_exact": total,
        "order_count": len(orders),
        "line_count": line_count,
        "units": sum(cat_units.values()),
        "average_order_value": average(total, len(orders)),
        "by_category": {
            category: {
                "revenue": _round_cents(revenue),
                "revenue_exact": revenue,
                "order_count": len(cat_orders[category]),
                "units": cat_units[category],
            }
            for category, revenue in sorted(cat_revenue.items())
        },
        "by_date": {
            day: {
                "revenue": _round_cents(revenue),
                "revenue_exact": revenue,
                "order_count": len(day_orders[day]),
                "average_order_value": average(revenue, len(day_orders[day])),
            }
            for day, revenue in sorted(day_revenue.items())
        },
    }
