"""The pandera models and the SQLAlchemy models describe the same Silver columns."""

from __future__ import annotations

import pytest

from grid_assets.models.silver import Order, OrderItem, Product
from grid_assets.schemas.silver import SCHEMAS


@pytest.mark.parametrize(
    ("name", "model"), [("products", Product), ("orders", Order), ("order_items", OrderItem)]
)
def test_pandera_columns_equal_sqlalchemy_columns(name: str, model: type) -> None:
    schema = SCHEMAS[name].to_schema()
    table = model.__table__
    assert list(schema.columns) == [c.name for c in table.columns]
    for column in table.columns:
        # pandera may be stricter (nullable in SQL for late-arriving data is checked per row),
        # but never looser than the table.
        if not column.nullable:
            assert not schema.columns[column.name].nullable, column.name
