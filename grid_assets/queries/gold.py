"""Gold aggregates as SQLAlchemy Core SELECTs, executed inside the engine (never in Python).

Exactness: line revenue multiplies stored DECIMAL(18, 6) values, cast so the products stay within
38 digits without the scale reduction Spark/Databricks applies past that; rounding is half-up
at the very end, and averages use integer arithmetic on cents because DuckDB divides decimals
in floating point.

Money never sums across currencies: every revenue aggregate groups by the order's currency too.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ColumnElement, Numeric, Select, and_, cast, func, select
from sqlalchemy.sql import FromClause

from grid_assets.models.silver import Order, OrderItem, Product
from grid_assets.queries.dialect import int_div, utc_date
from grid_assets.transform.silver_rows import DEFAULT_CURRENCY

ORDERS = Order.__table__
ORDER_ITEMS = OrderItem.__table__
PRODUCTS = Product.__table__
UNKNOWN_CATEGORY = "unknown"


def line_revenue(items: FromClause = ORDER_ITEMS) -> ColumnElement:
    """quantity * unit_price * (1 - discount), exact: at most 12 decimal places.

    DECIMAL(19, 6) rather than the stored (18, 6): DuckDB multiplies two 18-digit decimals in
    64-bit integers and overflows, while 19 digits move it to 128-bit; Spark's result stays
    within 38 digits (19+7+1, then +10+1), so it keeps all 12 decimal places too.
    """
    net_factor = cast(1 - items.c.discount, Numeric(7, 6))
    return (
        cast(items.c.unit_price, Numeric(19, 6))
        * net_factor
        * cast(items.c.quantity, Numeric(10, 0))
    )


def round_money(value: ColumnElement) -> ColumnElement:
    """Half-up to cents (revenue is never negative, so half-away-from-zero is half-up)."""
    return cast(func.round(value, 2), Numeric(18, 2))


def average(revenue_2dp: ColumnElement, count: ColumnElement) -> ColumnElement:
    """round_half_up(revenue / count, 2) on integer cents: floor((2 * cents + n) / (2 * n))."""
    cents = cast(revenue_2dp * 100, BigInteger)
    quotient = int_div(cents * 2 + count, count * 2)
    return cast(cast(quotient, Numeric(18, 0)) * cast(0.01, Numeric(3, 2)), Numeric(18, 2))


def revenue_lines() -> FromClause:
    """Every line of every order whose current status is not cancelled, with its category and
    its order's currency."""
    return (
        select(
            ORDER_ITEMS.c.order_id,
            ORDER_ITEMS.c.product_id,
            ORDER_ITEMS.c.quantity,
            line_revenue().label("line_revenue"),
            func.coalesce(PRODUCTS.c.category, UNKNOWN_CATEGORY).label("category"),
            # Silver defaults an absent currency; an explicit null means the same, and a null
            # would otherwise become a Gold key.
            func.coalesce(ORDERS.c.currency, DEFAULT_CURRENCY).label("currency"),
            PRODUCTS.c.name.label("product_name"),
            utc_date(ORDERS.c.placed_at).label("order_date"),
        )
        .select_from(ORDER_ITEMS)
        .join(
            ORDERS,
            and_(
                ORDERS.c.order_id == ORDER_ITEMS.c.order_id,
                ORDERS.c.placed_event_id == ORDER_ITEMS.c.event_id,
            ),
        )
        .outerjoin(PRODUCTS, PRODUCTS.c.product_id == ORDER_ITEMS.c.product_id)
        .where(ORDERS.c.status != "cancelled")
        .subquery("lines")
    )


def revenue_by_category(computed_at) -> Select:
    lines = revenue_lines()
    return select(
        lines.c.category,
        lines.c.currency,
        round_money(func.sum(lines.c.line_revenue)).label("revenue"),
        func.count(func.distinct(lines.c.order_id)).label("order_count"),
        func.sum(lines.c.quantity).label("units"),
        computed_at.label("computed_at"),
    ).group_by(lines.c.category, lines.c.currency)


def daily_revenue(computed_at) -> Select:
    lines = revenue_lines()
    per_day = (
        select(
            lines.c.order_date,
            lines.c.currency,
            round_money(func.sum(lines.c.line_revenue)).label("revenue"),
            func.count(func.distinct(lines.c.order_id)).label("order_count"),
            func.sum(lines.c.quantity).label("units"),
        )
        .group_by(lines.c.order_date, lines.c.currency)
        .subquery("per_day")
    )
    return select(
        per_day.c.order_date,
        per_day.c.currency,
        per_day.c.revenue,
        per_day.c.order_count,
        average(per_day.c.revenue, per_day.c.order_count).label("average_order_value"),
        per_day.c.units,
        computed_at.label("computed_at"),
    )


def order_status_counts(computed_at) -> Select:
    return select(
        ORDERS.c.status,
        func.count().label("order_count"),
        computed_at.label("computed_at"),
    ).group_by(ORDERS.c.status)


def product_revenue(computed_at) -> Select:
    lines = revenue_lines()
    per_product = (
        select(
            lines.c.product_id,
            lines.c.currency,
            func.max(lines.c.product_name).label("product_name"),
            func.max(lines.c.category).label("category"),
            round_money(func.sum(lines.c.line_revenue)).label("revenue"),
            func.sum(lines.c.quantity).label("units"),
            func.count(func.distinct(lines.c.order_id)).label("order_count"),
        )
        .group_by(lines.c.product_id, lines.c.currency)
        .subquery("per_product")
    )
    # Revenues in different currencies do not compare: each currency has its own top seller.
    rank = func.row_number().over(
        partition_by=per_product.c.currency,
        order_by=[per_product.c.revenue.desc(), per_product.c.product_id],
    )
    return select(*per_product.c, rank.label("revenue_rank"), computed_at.label("computed_at"))


def total_revenue() -> Select:
    """Total net revenue of non-cancelled orders per currency, rounded once: what Gold must
    reconcile to. One row per currency with revenue (none when there is no revenue at all)."""
    lines = revenue_lines()
    return select(
        lines.c.currency,
        round_money(func.sum(lines.c.line_revenue)).label("revenue"),
        func.count(func.distinct(lines.c.order_id)).label("order_count"),
        func.sum(lines.c.quantity).label("units"),
    ).group_by(lines.c.currency)
