"""One way to break each Silver rule, written straight into a lakehouse's tables.

The keys are those of `checks.silver_violations()`: applying a break makes that rule's count
non-zero. The checks' own tests apply them one at a time; the Spark parity tests apply them all to
one copy of the samples, so that each violation query has something to count on both engines.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.sql.expression import ScalarSelect

from grid_assets.models.silver import Order, OrderItem, Product

PRODUCTS, ORDERS, ITEMS = Product.__table__, Order.__table__, OrderItem.__table__


def first(table: Table, column: str) -> ScalarSelect:
    return select(func.min(table.c[column])).scalar_subquery()


def _duplicate(table: Table) -> Callable[[Connection], object]:
    """One row stored twice (DuckDB, like Databricks, does not enforce the primary key)."""
    one = select(table).order_by(*table.primary_key.columns).limit(1)
    return lambda c: c.execute(insert(table).from_select([col.name for col in table.c], one))


SILVER_BREAKS: dict[str, Callable[[Connection], object]] = {
    "products_duplicate_keys": _duplicate(PRODUCTS),
    "orders_duplicate_keys": _duplicate(ORDERS),
    "order_items_duplicate_keys": _duplicate(ITEMS),
    "products_bad_price_or_key": lambda c: c.execute(
        update(PRODUCTS)
        .where(PRODUCTS.c.product_id == first(PRODUCTS, "product_id"))
        .values(unit_price=Decimal("-1"))
    ),
    "orders_bad_status": lambda c: c.execute(
        update(ORDERS).where(ORDERS.c.order_id == first(ORDERS, "order_id")).values(status="lost")
    ),
    "order_items_bad_values": lambda c: c.execute(
        update(ITEMS)
        .where(ITEMS.c.order_id == first(ITEMS, "order_id"), ITEMS.c.line_number == 1)
        .values(discount=Decimal("1.5"))
    ),
    "order_items_without_order": lambda c: c.execute(
        update(ITEMS)
        .where(ITEMS.c.order_id == first(ITEMS, "order_id"), ITEMS.c.line_number == 1)
        .values(event_id="not-the-placement")
    ),
}
