"""Money stays exact from the raw line to Gold: no float anywhere on the way."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select

from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.gold import rebuild
from grid_assets.etl.silver import apply_new_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.gold import RevenueByCategory
from grid_assets.models.silver import OrderItem, Product
from grid_assets_tests.conftest import write_events

# Values a float cannot hold: 0.1 + 0.2 style sums and 18 significant digits.
PRICES = ["0.1", "0.2", "123456789012.123457", "0.000001", "19.999999"]


def test_bound_decimal_parameters_round_trip_exactly(lakehouse: Lakehouse) -> None:
    table = Product.__table__
    from datetime import UTC, datetime

    with lakehouse.begin() as conn:
        conn.execute(
            insert(table),
            [
                {
                    "product_id": f"P{i}",
                    "category": "c",
                    "unit_price": Decimal(p),
                    "currency": "USD",
                    "active": True,
                    "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
                    "event_id": f"e{i}",
                }
                for i, p in enumerate(PRICES)
            ],
        )
    with lakehouse.connect() as conn:
        stored = (
            conn.execute(select(table.c.unit_price).order_by(table.c.product_id)).scalars().all()
        )
    assert stored == [Decimal(p) for p in PRICES]
    assert all(isinstance(v, Decimal) for v in stored)


def test_json_numbers_and_strings_reach_gold_exactly(tmp_path: Path, lakehouse: Lakehouse) -> None:
    # Written as JSON text: a Python float could not even hold the third price.
    items = (
        '[{"product_id": "A", "quantity": 3, "unit_price": 0.1},'
        ' {"product_id": "A", "quantity": 3, "unit_price": "0.2"},'
        ' {"product_id": "A", "quantity": 1, "unit_price": 123456789012.123457,'
        ' "discount": 0.000001}]'
    )
    write_events(
        tmp_path / "l" / "a.ndjson",
        [
            {
                "event_id": "p",
                "event_type": "product.created",
                "occurred_at": "2026-01-01T00:00:00Z",
                "payload": {"product_id": "A", "category": "c", "unit_price": "1"},
            },
            '{"event_id":"o","event_type":"order.placed","occurred_at":"2026-01-01T00:00:00Z",'
            '"payload":{"order_id":"O","items":' + items + "}}",
        ],
    )
    ingest_landing(lakehouse, tmp_path / "l")
    apply_new_events(lakehouse)
    rebuild(lakehouse, "revenue_by_category")
    items_table = OrderItem.__table__
    with lakehouse.connect() as conn:
        prices = (
            conn.execute(select(items_table.c.unit_price).order_by(items_table.c.line_number))
            .scalars()
            .all()
        )
        revenue = conn.execute(select(RevenueByCategory.__table__.c.revenue)).scalar_one()
    assert prices == [Decimal("0.1"), Decimal("0.2"), Decimal("123456789012.123457")]
    exact = Decimal("0.3") + Decimal("0.6") + Decimal("123456789012.123457") * Decimal("0.999999")
    assert revenue == exact.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
