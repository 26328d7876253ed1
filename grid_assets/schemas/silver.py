"""pandera models of the Silver tables, one per SQLAlchemy model, with the contract's rules.

Frames are validated as they come out of payloads (raw JSON values, object dtype) and lazily, so
every broken rule of every event is collected. Each value rule of `schemas.values` (the same rules
as the typed conversion) is registered once as a pandera check that takes a whole column in one
pass; the models name, per column, which rules apply (`pa.Field(non_empty_string=())`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera import extensions
from pandera.typing import Series

from grid_assets.schemas import values

# Raw JSON values are heterogeneous until validated, hence object columns.
Raw = object
# Instants keep microseconds (the tables' precision) and any year an ISO-8601 instant can spell.
Instant = pd.DatetimeTZDtype(unit="us", tz="UTC")

# Check name (as it appears in a quarantine reason) -> the value rule it applies.
RULES: dict[str, Callable[[Any], bool]] = {
    "non_empty_string": values.is_text,
    "string": values.is_optional_text,
    "three_letters": values.is_currency,
    "boolean": values.is_bool,
    "integer_gt_0": values.is_positive_int,
    "decimal_ge_0_max_6_places": values.is_money,
    "decimal_in_0_1_max_6_places": values.is_discount,
}


def _register(name: str, rule: Callable[[Any], bool]) -> None:
    def check(series: pd.Series) -> pd.Series:
        return pd.Series([rule(v) for v in series.tolist()], index=series.index, dtype=bool)

    check.__name__ = name
    extensions.register_check_method(check_type="vectorized")(check)


for _name, _rule in RULES.items():
    _register(_name, _rule)


class _RawModel(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


class ProductSchema(_RawModel):
    """A candidate `silver.products` row from one product event."""

    product_id: Series[Raw] = pa.Field(nullable=False, non_empty_string=())
    name: Series[Raw] = pa.Field(nullable=True, string=())
    category: Series[Raw] = pa.Field(nullable=False, non_empty_string=())
    unit_price: Series[Raw] = pa.Field(nullable=False, decimal_ge_0_max_6_places=())
    currency: Series[Raw] = pa.Field(nullable=False, three_letters=())
    active: Series[Raw] = pa.Field(nullable=False, boolean=())
    updated_at: Series[Instant] = pa.Field(nullable=False)  # type: ignore[valid-type]
    event_id: Series[str] = pa.Field(nullable=False)


class OrderSchema(_RawModel):
    """A candidate `silver.orders` row from one order event (placed, paid, shipped, cancelled)."""

    order_id: Series[Raw] = pa.Field(nullable=False, non_empty_string=())
    customer_id: Series[Raw] = pa.Field(nullable=True, string=())
    status: Series[str] = pa.Field(nullable=False, isin=list(values.ORDER_STATUSES))
    currency: Series[Raw] = pa.Field(nullable=True, three_letters=())
    placed_at: Series[Instant] = pa.Field(nullable=True)  # type: ignore[valid-type]
    updated_at: Series[Instant] = pa.Field(nullable=False)  # type: ignore[valid-type]
    status_event_id: Series[str] = pa.Field(nullable=False)
    placed_event_id: Series[Raw] = pa.Field(nullable=True)


class OrderItemSchema(_RawModel):
    """A candidate `silver.order_items` row from one line of an `order.placed` event."""

    order_id: Series[Raw] = pa.Field(nullable=False, non_empty_string=())
    line_number: Series[int] = pa.Field(nullable=False, ge=1)
    product_id: Series[Raw] = pa.Field(nullable=False, non_empty_string=())
    quantity: Series[Raw] = pa.Field(nullable=False, integer_gt_0=())
    unit_price: Series[Raw] = pa.Field(nullable=False, decimal_ge_0_max_6_places=())
    discount: Series[Raw] = pa.Field(nullable=False, decimal_in_0_1_max_6_places=())
    event_id: Series[str] = pa.Field(nullable=False)


SCHEMAS = {"products": ProductSchema, "orders": OrderSchema, "order_items": OrderItemSchema}
