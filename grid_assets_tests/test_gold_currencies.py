"""Tier 2: money never sums across currencies. Gold on a two-currency case computed by hand, and
the reconciliation checks holding currency by currency."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Connection, and_, func, insert, select, update

from grid_assets.defs.gold.checks import gold_reconciles
from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.gold import GOLD_TABLES, rebuild
from grid_assets.etl.silver import apply_new_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.gold import DailyRevenue, ProductRevenue, RevenueByCategory
from grid_assets.models.silver import Order, OrderItem
from grid_assets.queries.gold import total_revenue
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.conftest import write_events
from grid_assets_tests.test_gold_hand_computed import e, line, table


def _reconciliation(name: str) -> Callable[..., dg.AssetCheckResult]:
    """One of the two Gold reconciliations, which one check (`gold_reconciles`) evaluates."""

    def check(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
        results = {r.check_name: r for r in gold_reconciles(lakehouse=lakehouse)}  # type: ignore[union-attr]
        return results[name]

    return check


category_revenue_reconciles = _reconciliation("category_revenue_reconciles")
daily_revenue_reconciles = _reconciliation("daily_revenue_reconciles")


def placed(eid: str, at: str, order_id: str, items: list[dict], currency: str | None) -> dict:
    payload: dict = {"order_id": order_id, "items": items}
    if currency is not None:
        payload["currency"] = currency
    return e(eid, "order.placed", at, **payload)


def product(eid: str, pid: str, name: str, category: str) -> dict:
    return e(
        eid,
        "product.created",
        "2026-03-01T00:00:00Z",
        product_id=pid,
        name=name,
        category=category,
        unit_price="1.00",
    )


TWO_CURRENCIES = [
    product("pa", "A", "Anvil", "tools"),
    product("pb", "B", "Bolt", "hardware"),
    # March 1 (UTC), USD: U1 names it, U2 takes the default.
    #   U1: A 1 x 10.005 = 10.005 ; B 2 x 0.50 = 1.00                       -> 11.005
    #   U2: A 2 x 4.00 x (1 - 0.25) = 6.00                                    -> 6.00
    placed(
        "u1", "2026-03-01T09:00:00Z", "U1", [line("A", 1, "10.005"), line("B", 2, "0.50")], "USD"
    ),
    placed("u2", "2026-03-01T23:59:59Z", "U2", [line("A", 2, "4.00", "0.25")], None),
    # March 1 (UTC), EUR, same category and day as the USD orders:
    #   E1: A 1 x 5.005 = 5.005                                               -> 5.005
    #   E2 (00:30 +02:00 is March 1 UTC): A 3 x 2.50 = 7.50 ; X 1 x 1.25     -> 8.75
    placed("e1", "2026-03-01T10:00:00Z", "E1", [line("A", 1, "5.005")], "EUR"),
    placed(
        "e2", "2026-03-02T00:30:00+02:00", "E2", [line("A", 3, "2.50"), line("X", 1, "1.25")], "EUR"
    ),
    # March 2, EUR, cancelled: excluded everywhere.
    placed("e3", "2026-03-02T08:00:00Z", "E3", [line("A", 100, "1.00")], "EUR"),
    e("e3c", "order.cancelled", "2026-03-02T08:30:00Z", order_id="E3"),
    # March 2: placed in USD, then placed again in EUR: the latest placement's currency and
    # lines count. A 1 x 2.00 = 2.00 EUR (not 1.00 USD).
    placed("e4a", "2026-03-02T09:00:00Z", "E4", [line("A", 1, "1.00")], "USD"),
    placed("e4b", "2026-03-02T09:10:00Z", "E4", [line("A", 1, "2.00")], "EUR"),
]


@pytest.fixture
def gold(tmp_path: Path, lakehouse: Lakehouse) -> Lakehouse:
    write_events(tmp_path / "landing" / "a.ndjson", TWO_CURRENCIES)
    ingest_landing(lakehouse, tmp_path / "landing")
    apply_new_events(lakehouse)
    for name in GOLD_TABLES:
        rebuild(lakehouse, name, run_id="currencies")
    return lakehouse


def test_revenue_by_category_has_one_row_per_currency(gold: Lakehouse) -> None:
    # tools USD: 10.005 + 6.00 = 16.005 -> 16.01 ; tools EUR: 5.005 + 7.50 + 2.00 = 14.505 -> 14.51
    # (one row of 30.51 would be a sum across currencies).
    assert table(
        gold, RevenueByCategory, "category", "currency", "revenue", "order_count", "units"
    ) == [
        ("hardware", "USD", Decimal("1.00"), 1, 2),
        ("tools", "EUR", Decimal("14.51"), 3, 5),
        ("tools", "USD", Decimal("16.01"), 2, 3),
        ("unknown", "EUR", Decimal("1.25"), 1, 1),
    ]


def test_daily_revenue_has_one_row_per_day_and_currency(gold: Lakehouse) -> None:
    # March 1 EUR: 5.005 + 8.75 = 13.755 -> 13.76 over 2 orders -> 6.88
    # March 1 USD: 11.005 + 6.00 = 17.005 -> 17.01 over 2 orders = 8.505 -> 8.51 (half-up)
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
        (date(2026, 3, 1), "EUR", Decimal("13.76"), 2, Decimal("6.88"), 5),
        (date(2026, 3, 1), "USD", Decimal("17.01"), 2, Decimal("8.51"), 5),
        (date(2026, 3, 2), "EUR", Decimal("2.00"), 1, Decimal("2.00"), 1),
    ]


def test_product_revenue_ranks_within_each_currency(gold: Lakehouse) -> None:
    assert table(
        gold,
        ProductRevenue,
        "currency",
        "revenue_rank",
        "product_id",
        "category",
        "revenue",
        "units",
        "order_count",
    ) == [
        ("EUR", 1, "A", "tools", Decimal("14.51"), 5, 3),
        ("EUR", 2, "X", "unknown", Decimal("1.25"), 1, 1),
        ("USD", 1, "A", "tools", Decimal("16.01"), 3, 2),
        ("USD", 2, "B", "hardware", Decimal("1.00"), 2, 1),
    ]


def test_silver_totals_are_per_currency(gold: Lakehouse) -> None:
    # EUR: 14.505 + 1.25 = 15.755 -> 15.76 ; USD: 17.005 -> 17.01
    with gold.connect() as conn:
        rows = sorted(tuple(r) for r in conn.execute(total_revenue()))
    assert rows == [("EUR", Decimal("15.76"), 3, 6), ("USD", Decimal("17.01"), 2, 5)]


# --- the reconciliation checks, currency by currency -------------------------------------------


def resource_for(lakehouse: Lakehouse) -> LakehouseResource:
    return LakehouseResource(duckdb_path=str(lakehouse.engine.url.database))


def test_checks_pass_with_figures_per_currency(gold: Lakehouse) -> None:
    resource = resource_for(gold)
    by_category = category_revenue_reconciles(lakehouse=resource)
    daily = daily_revenue_reconciles(lakehouse=resource)
    assert by_category.passed and daily.passed
    assert by_category.metadata["drifting_currencies"].value == []
    assert by_category.metadata["currencies"].value == {
        "EUR": {
            "gold_revenue_sum": "15.76",
            "silver_revenue_total": "15.76",
            "drift": "0.00",
            "gold_units_sum": 6,
            "silver_units_total": 6,
        },
        "USD": {
            "gold_revenue_sum": "17.01",
            "silver_revenue_total": "17.01",
            "drift": "0.00",
            "gold_units_sum": 5,
            "silver_units_total": 5,
        },
    }
    assert daily.metadata["currencies"].value == {
        "EUR": {
            "gold_revenue_sum": "15.76",
            "silver_revenue_total": "15.76",
            "drift": "0.00",
            "daily_order_count": 3,
            "silver_orders": 3,
        },
        "USD": {
            "gold_revenue_sum": "17.01",
            "silver_revenue_total": "17.01",
            "drift": "0.00",
            "daily_order_count": 2,
            "silver_orders": 2,
        },
    }


def _move_tools_revenue(conn: Connection) -> None:
    """1.00 of USD tools revenue booked as EUR: every total across currencies still matches."""
    t = RevenueByCategory.__table__
    for currency, delta in (("USD", -1), ("EUR", 1)):
        conn.execute(
            update(t)
            .where(and_(t.c.category == "tools", t.c.currency == currency))
            .values(revenue=t.c.revenue + delta)
        )


def _move_march_first_revenue(conn: Connection) -> None:
    """The same on the daily table: 1.00 of March 1's USD revenue booked as EUR."""
    t = DailyRevenue.__table__
    for currency, delta in (("USD", -1), ("EUR", 1)):
        conn.execute(
            update(t)
            .where(and_(t.c.order_date == date(2026, 3, 1), t.c.currency == currency))
            .values(revenue=t.c.revenue + delta)
        )


@pytest.mark.parametrize(
    ("model", "tamper", "check"),
    [
        (RevenueByCategory, _move_tools_revenue, category_revenue_reconciles),
        (DailyRevenue, _move_march_first_revenue, daily_revenue_reconciles),
    ],
    ids=["revenue_by_category", "daily_revenue"],
)
def test_check_fails_when_one_currency_drifts_though_the_total_matches(
    gold: Lakehouse, model: type, tamper: Callable[[Connection], None], check
) -> None:
    revenue = model.__table__.c.revenue
    with gold.connect() as conn:
        before = conn.execute(select(func.sum(revenue))).scalar_one()
    with gold.begin() as conn:
        tamper(conn)
    with gold.connect() as conn:
        # What a check across currencies would see: nothing wrong.
        assert conn.execute(select(func.sum(revenue))).scalar_one() == before

    result = check(lakehouse=resource_for(gold))
    assert not result.passed
    assert result.metadata["drifting_currencies"].value == ["EUR", "USD"]
    figures = result.metadata["currencies"].value
    assert figures["EUR"]["gold_revenue_sum"] == "16.76"
    assert figures["EUR"]["silver_revenue_total"] == "15.76"
    assert figures["USD"]["gold_revenue_sum"] == "16.01"
    assert {figures[c]["drift"] for c in ("EUR", "USD")} == {"1.00"}


def test_a_currency_missing_from_gold_fails_the_checks(gold: Lakehouse) -> None:
    """Silver holds EUR revenue that Gold lost entirely: the other currency still reconciles."""
    with gold.begin() as conn:
        for model in (RevenueByCategory, DailyRevenue):
            t = model.__table__
            conn.execute(t.delete().where(t.c.currency == "EUR"))
    resource = resource_for(gold)
    for check in (category_revenue_reconciles, daily_revenue_reconciles):
        result = check(lakehouse=resource)
        assert not result.passed
        assert result.metadata["drifting_currencies"].value == ["EUR"]
        assert result.metadata["currencies"].value["EUR"]["gold_revenue_sum"] == "0"
        assert result.metadata["currencies"].value["EUR"]["drift"] == "15.76"


def test_an_order_without_currency_in_silver_counts_as_usd(lakehouse: Lakehouse) -> None:
    """Silver keeps a null currency when a placement says `"currency": null`; Gold reads it as
    the default rather than making null a key."""
    placed_at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with lakehouse.begin() as conn:
        conn.execute(
            insert(Order.__table__).values(
                order_id="N1",
                status="placed",
                currency=None,
                placed_at=placed_at,
                updated_at=placed_at,
                status_event_id="n1",
                placed_event_id="n1",
            )
        )
        conn.execute(
            insert(OrderItem.__table__).values(
                order_id="N1",
                line_number=1,
                product_id="A",
                quantity=1,
                unit_price=Decimal("2.50"),
                discount=Decimal(0),
                event_id="n1",
            )
        )
    rebuild(lakehouse, "revenue_by_category")
    assert table(lakehouse, RevenueByCategory, "category", "currency", "revenue") == [
        ("unknown", "USD", Decimal("2.50"))
    ]
    assert category_revenue_reconciles(lakehouse=resource_for(lakehouse)).passed
