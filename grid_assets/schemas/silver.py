"""pandera models of the Silver tables, one per SQLAlchemy model, with the contract's rules.

Frames are validated as they come out of payloads (raw JSON values, object dtype) and lazily, so
every broken rule of every event is collected. Each check applies one value rule of
`schemas.values` (the same rules as the typed conversion) to a whole column in one pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from grid_assets.schemas import values

# Raw JSON values are heterogeneous until validated, hence object columns.
Raw = object
# Instants keep microseconds (the tables' precision) and any year an ISO-8601 instant can spell.
Instant = pd.DatetimeTZDtype(unit="us", tz="UTC")


def _each(series: pd.Series, rule: Callable[[Any], bool]) -> pd.Series:
    """`rule` applied to every value of `series`, as one boolean column."""
    return pd.Series([rule(v) for v in series.tolist()], index=series.index, dtype=bool)


class _RawModel(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


class ProductSchema(_RawModel):
    """A candidate `silver.products` row from one product event."""

    product_id: Series[Raw] = pa.Field(nullable=False)
    name: Series[Raw] = pa.Field(nullable=True)
    category: Series[Raw] = pa.Field(nullable=False)
    unit_price: Series[Raw] = pa.Field(nullable=False)
    currency: Series[Raw] = pa.Field(nullable=False)
    active: Series[Raw] = pa.Field(nullable=False)
    updated_at: Series[Instant] = pa.Field(nullable=False)  # type: ignore[valid-type]
    event_id: Series[str] = pa.Field(nullable=False)

    @pa.check("product_id", "category", name="non_empty_string")
    def _non_empty(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_text)

    @pa.check("name", name="string")
    def _name(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_optional_text)

    @pa.check("unit_price", name="decimal_ge_0_max_6_places")
    def _price(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_money)

    @pa.check("currency", name="three_letters")
    def _currency(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_currency)

    @pa.check("active", name="boolean")
    def _active(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_bool)


class OrderSchema(_RawModel):
    """A candidate `silver.orders` row from one order event (placed, paid, shipped, cancelled)."""

    order_id: Series[Raw] = pa.Field(nullable=False)
    customer_id: Series[Raw] = pa.Field(nullable=True)
    status: Series[str] = pa.Field(nullable=False, isin=list(values.ORDER_STATUSES))
    currency: Series[Raw] = pa.Field(nullable=True)
    placed_at: Series[Instant] = pa.Field(nullable=True)  # type: ignore[valid-type]
    updated_at: Series[Instant] = pa.Field(nullable=False)  # type: ignore[valid-type]
    status_event_id: Series[str] = pa.Field(nullable=False)
    placed_event_id: Series[Raw] = pa.Field(nullable=True)

    @pa.check("order_id", name="non_empty_string")
    def _order_id(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_text)

    @pa.check("customer_id", name="string")
    def _customer(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_optional_text)

    @pa.check("currency", name="three_letters")
    def _currency(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_currency)


class OrderItemSchema(_RawModel):
    """A candidate `silver.order_items` row from one line of an `order.placed` event."""

    order_id: Series[Raw] = pa.Field(nullable=False)
    line_number: Series[int] = pa.Field(nullable=False, ge=1)
    product_id: Series[Raw] = pa.Field(nullable=False)
    quantity: Series[Raw] = pa.Field(nullable=False)
    unit_price: Series[Raw] = pa.Field(nullable=False)
    discount: Series[Raw] = pa.Field(nullable=False)
    event_id: Series[str] = pa.Field(nullable=False)

    @pa.check("order_id", "product_id", name="non_empty_string")
    def _ids(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_text)

    @pa.check("quantity", name="integer_gt_0")
    def _quantity(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_positive_int)

    @pa.check("unit_price", name="decimal_ge_0_max_6_places")
    def _price(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_money)

    @pa.check("discount", name="decimal_in_0_1_max_6_places")
    def _discount(cls, series: pd.Series) -> pd.Series:
        return _each(series, values.is_discount)


SCHEMAS = {"products": ProductSchema, "orders": OrderSchema, "order_items": OrderItemSchema}
