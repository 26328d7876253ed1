"""Tier 2: each Gold table on a small case computed by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.gold import GOLD_TABLES, rebuild
from grid_assets.etl.silver import apply_new_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.bronze import Event
from grid_assets.models.gold import (
    DailyRevenue,
    OrderStatusCounts,
    ProductRevenue,
    RevenueByCategory,
)
from grid_assets_tests.conftest import write_events


def e(eid: str, etype: str, at: str, **payload: object) -> dict:
    return {"event_id": eid, "event_type": etype, "occurred_at": at, "payload": payload}


def line(pid: str, qty: int, price: str, discount: str | None = None) -> dict:
    item = {"product_id": pid, "quantity": qty, "unit_price": price}
    return item if discount is None else {**item, "discount": discount}


HAND_CASE = [
    e(
        "p1",
        "product.created",
        "2026-01-01T00:00:00Z",
        product_id="A",
        name="Anvil",
        category="tools",
        unit_price="99.00",
    ),
    e(
        "p2",
        "product.created",
        "2026-01-01T00:00:00Z",
        product_id="B",
        name="Bolt",
        category="parts",
        unit_price="0.10",
    ),
    # B moves to "hardware" later: lines count under the product's *current* category.
    e(
        "p3",
        "product.updated",
        "2026-01-05T00:00:00Z",
        product_id="B",
        name="Bolt",
        category="hardware",
        unit_price="0.20",
    ),
    # O1 on Jan 2 (UTC; placed at 23:30 -02:00 the day before locally is still Jan 2 UTC)
    #   A: 1 x 10.005 = 10.005 ; B: 3 x 0.10 x (1 - 0.5) = 0.15           -> 10.155
    e(
        "o1",
        "order.placed",
        "2026-01-01T23:30:00-02:00",
        order_id="O1",
        customer_id="C1",
        items=[line("A", 1, "10.005"), line("B", 3, "0.10", "0.5")],
    ),
    # O2 on Jan 2: unknown product X: 2 x 1.0025 = 2.005                       -> 2.005
    e("o2", "order.placed", "2026-01-02T12:00:00Z", order_id="O2", items=[line("X", 2, "1.0025")]),
    # O3 on Jan 3, cancelled later: excluded everywhere but status counts
    e("o3", "order.placed", "2026-01-03T08:00:00Z", order_id="O3", items=[line("A", 5, "99")]),
    e("o3c", "order.cancelled", "2026-01-03T09:00:00Z", order_id="O3", reason="changed mind"),
    # O4 on Jan 3, paid then shipped: A: 2 x 5.00 x 0.9 = 9.00
    e(
        "o4",
        "order.placed",
        "2026-01-03T10:00:00Z",
        order_id="O4",
        items=[line("A", 2, "5.00", "0.1")],
    ),
    e("o4p", "order.paid", "2026-01-03T10:05:00Z", order_id="O4"),
    e("o4s", "order.shipped", "2026-01-04T10:00:00Z", order_id="O4"),
]


@pytest.fixture
def gold(tmp_path: Path, lakehouse: Lakehouse) -> Lakehouse:
    write_events(tmp_path / "landing" / "a.ndjson", HAND_CASE)
    ingest_landing(lakehouse, tmp_path / "landing")
    apply_new_events(lakehouse)
    for name in GOLD_TABLES:
        rebuild(lakehouse, name, run_id="hand")
    return lakehouse


def table(lh: Lakehouse, model: type, *columns: str) -> list[tuple]:
    t = model.__table__
    selected = [t.c[c] for c in columns]
    with lh.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*selected).order_by(*selected))]


def test_revenue_by_category(gold: Lakehouse) -> None:
    # tools: 10.005 + 9.00 = 19.005 -> 19.01 (half-up at the end, not per line). No order names
    # a currency, so every row is in the default, USD.
    assert table(
        gold, RevenueByCategory, "category", "currency", "revenue", "order_count", "units"
    ) == [
        ("hardware", "USD", Decimal("0.15"), 1, 3),
        ("tools", "USD", Decimal("19.01"), 2, 3),
        ("unknown", "USD", Decimal("2.01"), 1, 2),
    ]


def test_daily_revenue(gold: Lakehouse) -> None:
    # Jan 2: 10.155 + 2.005 = 12.16 over 2 orders -> 6.08 ; Jan 3: 9.00 over 1 order
    assert table(
        gold,
        DailyRevenue,
        "order_date",
        "currency",
        "revenue",
        "order_count",
        "average_order_value",
        "units",
    ) == [
        (date(2026, 1, 2), "USD", Decimal("12.16"), 2, Decimal("6.08"), 6),
        (date(2026, 1, 3), "USD", Decimal("9.00"), 1, Decimal("9.00"), 2),
    ]


def test_order_status_counts(gold: Lakehouse) -> None:
    assert table(gold, OrderStatusCounts, "status", "order_count") == [
        ("cancelled", 1),
        ("placed", 2),
        ("shipped", 1),
    ]


def test_product_revenue_ranking(gold: Lakehouse) -> None:
    assert table(
        gold,
        ProductRevenue,
        "revenue_rank",
        "product_id",
        "currency",
        "category",
        "revenue",
        "units",
        "order_count",
    ) == [
        (1, "A", "USD", "tools", Decimal("19.01"), 3, 2),
        (2, "X", "USD", "unknown", Decimal("2.01"), 2, 1),
        (3, "B", "USD", "hardware", Decimal("0.15"), 3, 1),
    ]


def test_average_order_value_rounds_half_up_on_exact_cents(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    # 0.01 + 0.02 = 0.03 over 2 orders = 0.015 exactly -> 0.02 (a float division gives 0.01)
    write_events(
        tmp_path / "l" / "a.ndjson",
        [
            e(
                "x1",
                "order.placed",
                "2026-02-01T00:00:00Z",
                order_id="X1",
                items=[line("A", 1, "0.01")],
            ),
            e(
                "x2",
                "order.placed",
                "2026-02-01T01:00:00Z",
                order_id="X2",
                items=[line("A", 1, "0.02")],
            ),
        ],
    )
    ingest_landing(lakehouse, tmp_path / "l")
    apply_new_events(lakehouse)
    rebuild(lakehouse, "daily_revenue")
    assert table(lakehouse, DailyRevenue, "revenue", "average_order_value") == [
        (Decimal("0.03"), Decimal("0.02"))
    ]


def test_every_gold_write_is_announced_in_bronze(gold: Lakehouse) -> None:
    events = Event.__table__
    with gold.connect() as conn:
        announced = conn.execute(
            select(events.c.payload, events.c.source).where(
                events.c.event_type == "pipeline.table_written"
            )
        ).all()
    tables = {__import__("json").loads(p)["table"] for p, _ in announced}
    assert {f"gold.{name}" for name in GOLD_TABLES} <= tables
    assert {
        "silver.products",
        "silver.orders",
        "silver.order_items",
        "silver.event_ledger",
    } <= tables
    assert {s for _, s in announced} == {"grid-pipeline"}
