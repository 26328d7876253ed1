"""pandera models of the Silver tables, one per SQLAlchemy model, with the contract's rules.

Frames are validated as they come out of payloads (raw JSON values, object dtype) and lazily, so
every broken rule of every event is collected; element-wise checks use the same value rules as the
typed conversion (`schemas.values`).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from grid_assets.schemas import values

# Raw JSON values are heterogeneous until validated, hence object columns.
Raw = object


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
    updated_at: Series[pd.DatetimeTZDtype(tz="UTC")] = pa.Field(nullable=False)  # type: ignore[valid-type]
    event_id: Series[str] = pa.Field(nullable=False)

    @pa.check("product_id", "category", element_wise=True, name="non_empty_string")
    def _non_empty(cls, value) -> bool:
        return values.is_text(value)

    @pa.check("name", element_wise=True, name="string")
    def _name(cls, value) -> bool:
        return values.is_optional_text(value)

    @pa.check("unit_price", element_wise=True, name="decimal_ge_0_max_6_places")
    def _price(cls, value) -> bool:
        return values.is_money(value)

    @pa.check("currency", element_wise=True, name="three_letters")
    def _currency(cls, value) -> bool:
        return values.is_currency(value)

    @pa.check("active", element_wise=True, name="boolean")
    def _active(cls, value) -> bool:
        return values.is_bool(value)


class OrderSchema(_RawModel):
    """A candidate `silver.orders` row from one order event (placed, paid, shipped, cancelled)."""

    order_id: Series[Raw] = pa.Field(nullable=False)
    customer_id: Series[Raw] = pa.Field(nullable=True)
    status: Series[str] = pa.Field(nullable=False, isin=list(values.ORDER_STATUSES))
    currency: Series[Raw] = pa.Field(nullable=True)
    placed_at: Series[pd.DatetimeTZDtype(tz="UTC")] = pa.Field(nullable=True)  # type: ignore[valid-type]
    updated_at: Series[pd.DatetimeTZDtype(tz="UTC")] = pa.Field(nullable=False)  # type: ignore[valid-type]
    status_event_id: Series[str] = pa.Field(nullable=False)
    placed_event_id: Series[Raw] = pa.Field(nullable=True)

    @pa.check("order_id", element_wise=True, name="non_empty_string")
    def _order_id(cls, value) -> bool:
        return values.is_text(value)

    @pa.check("customer_id", element_wise=True, name="string")
    def _customer(cls, value) -> bool:
        return values.is_optional_text(value)

    @pa.check("currency", element_wise=True, name="three_letters")
    def _currency(cls, value) -> bool:
        return value is None or values.is_currency(value)


class OrderItemSchema(_RawModel):
    """A candidate `silver.order_items` row from one line of an `order.placed` event."""

    order_id: Series[Raw] = pa.Field(nullable=False)
    line_number: Series[int] = pa.Field(nullable=False, ge=1)
    product_id: Series[Raw] = pa.Field(nullable=False)
    quantity: Series[Raw] = pa.Field(nullable=False)
    unit_price: Series[Raw] = pa.Field(nullable=False)
    discount: Series[Raw] = pa.Field(nullable=False)
    event_id: Series[str] = pa.Field(nullable=False)

    @pa.check("order_id", "product_id", element_wise=True, name="non_empty_string")
    def _ids(cls, value) -> bool:
        return values.is_text(value)

    @pa.check("quantity", element_wise=True, name="integer_gt_0")
    def _quantity(cls, value) -> bool:
        return values.is_positive_int(value)

    @pa.check("unit_price", element_wise=True, name="decimal_ge_0_max_6_places")
    def _price(cls, value) -> bool:
        return values.is_money(value)

    @pa.check("discount", element_wise=True, name="decimal_in_0_1_max_6_places")
    def _discount(cls, value) -> bool:
        return values.is_discount(value)


SCHEMAS = {"products": ProductSchema, "orders": OrderSchema, "order_items": OrderItemSchema}
