"""Dagster metadata derived from the SQLAlchemy models, so the UI shows the real table shape."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg
from sqlalchemy import Table

from grid_assets.resources.lakehouse import Lakehouse


def column_schema(table: Table) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=str(column.type.compile()),
                description=column.comment,
                constraints=dg.TableColumnConstraints(nullable=bool(column.nullable)),
            )
            for column in table.columns
        ]
    )


def table_name(table: Table) -> str:
    return f"{table.schema}.{table.name}"


def spec_metadata(table: Table) -> dict[str, Any]:
    """Static metadata for an AssetSpec: where the table lives and its columns."""
    return {"dagster/table_name": table_name(table), "dagster/column_schema": column_schema(table)}


def materialized_metadata(lakehouse: Lakehouse, table: Table, **extra: Any) -> dict[str, Any]:
    """What a materialization reports: the row count now, the schema and the table name."""
    with lakehouse.connect() as conn:
        rows = lakehouse.count(conn, table)
    return {**spec_metadata(table), "dagster/row_count": rows, **extra}


def table_spec(
    model: type, deps: Sequence[dg.AssetKey] = (), kinds: Iterable[str] = ()
) -> dg.AssetSpec:
    """The asset of one model's table: keyed by its address, grouped by its layer, described by
    the model's docstring, with its columns and table name."""
    table = model.__table__
    return dg.AssetSpec(
        dg.AssetKey([table.schema, table.name]),
        deps=list(deps),
        group_name=table.schema,
        description=description(model),
        metadata=spec_metadata(table),
        kinds={"duckdb", "databricks", *kinds},
    )


def description(model: type) -> str:
    """An asset description from the model's docstring, which ends with the table's grain."""
    return " ".join((model.__doc__ or "").split())
