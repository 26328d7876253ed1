"""Gold checks: the aggregates reconcile with an independent total computed from Silver."""

from decimal import Decimal

import dagster as dg

from grid_assets.queries import checks as q
from grid_assets.queries.gold import total_revenue
from grid_assets.resources.lakehouse import LakehouseResource

HALF_CENT = Decimal("0.005")


def _totals(lakehouse: LakehouseResource) -> dict:
    with lakehouse.get_lakehouse().connect() as conn:
        cat_rev, cats, cat_units, day_rev, days, day_orders, _ = conn.execute(q.gold_totals()).one()
        total, orders, units = conn.execute(total_revenue()).one()
    return {
        "category_revenue": Decimal(cat_rev),
        "categories": int(cats),
        "category_units": int(cat_units),
        "silver_units": int(units),
        "daily_revenue": Decimal(day_rev),
        "days": int(days),
        "daily_order_count": int(day_orders),
        "silver_revenue": Decimal(total or 0),
        "silver_orders": int(orders),
    }


@dg.asset_check(
    asset=["gold", "revenue_by_category"],
    blocking=True,
    description="Category revenues add up to the total revenue computed from Silver, within "
    "half a cent of rounding per category, and category units to total units.",
)
def category_revenue_reconciles(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    t = _totals(lakehouse)
    drift = abs(t["category_revenue"] - t["silver_revenue"])
    passed = (
        drift <= HALF_CENT * max(1, t["categories"]) and t["category_units"] == t["silver_units"]
    )
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "gold_revenue_sum": str(t["category_revenue"]),
            "silver_revenue_total": str(t["silver_revenue"]),
            "drift": str(drift),
            "gold_units_sum": t["category_units"],
            "silver_units_total": t["silver_units"],
        },
    )


@dg.asset_check(
    asset=["gold", "daily_revenue"],
    blocking=True,
    description="Daily order counts add up to the revenue-bearing orders in Silver, and daily "
    "revenues to the total within half a cent per day.",
)
def daily_revenue_reconciles(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    t = _totals(lakehouse)
    drift = abs(t["daily_revenue"] - t["silver_revenue"])
    passed = t["daily_order_count"] == t["silver_orders"] and drift <= HALF_CENT * max(1, t["days"])
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "daily_order_count": t["daily_order_count"],
            "silver_orders": t["silver_orders"],
            "drift": str(drift),
        },
    )


gold_checks = [category_revenue_reconciles, daily_revenue_reconciles]
