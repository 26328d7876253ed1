"""Gold checks: the aggregates reconcile, currency by currency, with independent totals computed
from Silver. Money never sums across currencies, so neither does a reconciliation: a total that
matches across currencies can hide one currency's revenue booked under another."""

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import dagster as dg

from grid_assets.queries import checks as q
from grid_assets.queries.gold import total_revenue
from grid_assets.resources.lakehouse import LakehouseResource

HALF_CENT = Decimal("0.005")


@dataclass(frozen=True)
class CurrencyTotals:
    """One currency's Gold sums and Silver totals, every figure summed in the engine."""

    category_revenue: Decimal = Decimal(0)
    categories: int = 0
    category_units: int = 0
    daily_revenue: Decimal = Decimal(0)
    days: int = 0
    daily_order_count: int = 0
    silver_revenue: Decimal = Decimal(0)
    silver_orders: int = 0
    silver_units: int = 0


def _totals(lakehouse: LakehouseResource) -> dict[str, CurrencyTotals]:
    """Every currency that Gold or Silver holds; a currency missing on one side counts as zero."""
    gold: dict[str, dict] = {}
    silver: dict[str, dict] = {}
    with lakehouse.get_lakehouse().connect() as conn:
        for row in conn.execute(q.gold_totals()).mappings():
            gold[row["currency"]] = {
                "category_revenue": Decimal(row["category_revenue"]),
                "categories": int(row["categories"]),
                "category_units": int(row["category_units"]),
                "daily_revenue": Decimal(row["daily_revenue"]),
                "days": int(row["days"]),
                "daily_order_count": int(row["daily_order_count"]),
            }
        for row in conn.execute(total_revenue()).mappings():
            silver[row["currency"]] = {
                "silver_revenue": Decimal(row["revenue"]),
                "silver_orders": int(row["order_count"]),
                "silver_units": int(row["units"]),
            }
    return {
        currency: CurrencyTotals(**gold.get(currency, {}), **silver.get(currency, {}))
        for currency in sorted(gold.keys() | silver.keys())
    }


def _result(
    spec: dg.AssetCheckSpec, figures: dict[str, dict], drifting: list[str]
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=not drifting,
        metadata={
            "currencies": dg.MetadataValue.json(figures),
            "drifting_currencies": dg.MetadataValue.json(drifting),
        },
    )


CATEGORY_RECONCILES = dg.AssetCheckSpec(
    "category_revenue_reconciles",
    asset=["gold", "revenue_by_category"],
    blocking=True,
    description="In every currency, category revenues add up to that currency's total revenue "
    "computed from Silver, within half a cent of rounding per category, and category units to "
    "its total units.",
)
DAILY_RECONCILES = dg.AssetCheckSpec(
    "daily_revenue_reconciles",
    asset=["gold", "daily_revenue"],
    blocking=True,
    description="In every currency, daily order counts add up to that currency's "
    "revenue-bearing orders in Silver, and daily revenues to its total within half a cent per "
    "day.",
)


def _category_result(totals: dict[str, CurrencyTotals]) -> dg.AssetCheckResult:
    figures: dict[str, dict] = {}
    drifting: list[str] = []
    for currency, t in totals.items():
        drift = abs(t.category_revenue - t.silver_revenue)
        if drift > HALF_CENT * max(1, t.categories) or t.category_units != t.silver_units:
            drifting.append(currency)
        figures[currency] = {
            "gold_revenue_sum": str(t.category_revenue),
            "silver_revenue_total": str(t.silver_revenue),
            "drift": str(drift),
            "gold_units_sum": t.category_units,
            "silver_units_total": t.silver_units,
        }
    return _result(CATEGORY_RECONCILES, figures, drifting)


def _daily_result(totals: dict[str, CurrencyTotals]) -> dg.AssetCheckResult:
    figures: dict[str, dict] = {}
    drifting: list[str] = []
    for currency, t in totals.items():
        drift = abs(t.daily_revenue - t.silver_revenue)
        if t.daily_order_count != t.silver_orders or drift > HALF_CENT * max(1, t.days):
            drifting.append(currency)
        figures[currency] = {
            "gold_revenue_sum": str(t.daily_revenue),
            "silver_revenue_total": str(t.silver_revenue),
            "drift": str(drift),
            "daily_order_count": t.daily_order_count,
            "silver_orders": t.silver_orders,
        }
    return _result(DAILY_RECONCILES, figures, drifting)


@dg.multi_asset_check(specs=[CATEGORY_RECONCILES, DAILY_RECONCILES])
def gold_reconciles(lakehouse: LakehouseResource) -> Iterator[dg.AssetCheckResult]:
    """Both Gold reconciliations from one reading of Gold's sums and Silver's totals (each
    check alone would read Silver's order lines again)."""
    totals = _totals(lakehouse)
    yield _category_result(totals)
    yield _daily_result(totals)


gold_checks = [gold_reconciles]
