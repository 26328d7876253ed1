"""Dagster metadata derived from the SQLAlchemy models, so the UI shows the real table shape."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg
from sqlalchemy import Column, Select, Table

from grid_assets.defs.constants import table_key
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.queries.lineage import column_sources

OWNERS = ["team:data-platform"]
PII_TAG = {"pii": "true"}


def column_schema(table: Table) -> dg.TableSchema:
    """The table's columns as the UI lists them; each description is the model's comment (the
    same text Databricks stores as the column COMMENT)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=column.name,
                type=str(column.type.compile()),
                description=column.comment,
                constraints=dg.TableColumnConstraints(nullable=bool(column.nullable)),
                tags=PII_TAG if is_pii(column) else None,
            )
            for column in table.columns
        ]
    )


def is_pii(column: Column) -> bool:
    """Personal data is marked on the model's column: `info={"pii": True}`."""
    return bool(column.info.get("pii"))


def column_lineage(statement: Select) -> dg.TableColumnLineage:
    """Which upstream asset columns each column of the table is computed from, read off the
    SELECT that builds it (columns computed from no table, such as `computed_at`, are left out)."""
    return dg.TableColumnLineage(
        deps_by_column={
            name: [
                dg.TableColumnDep(asset_key=table_key(c.table), column_name=c.name) for c in sources
            ]
            for name, sources in column_sources(statement).items()
            if sources
        }
    )


def table_name(table: Table) -> str:
    return f"{table.schema}.{table.name}"


def spec_metadata(table: Table, lineage: dg.TableColumnLineage | None = None) -> dict[str, Any]:
    """Static metadata for an AssetSpec: where the table lives, its columns and, for tables
    computed from others, their column lineage."""
    metadata: dict[str, Any] = {
        "dagster/table_name": table_name(table),
        "dagster/column_schema": column_schema(table),
    }
    if lineage is not None:
        metadata["dagster/column_lineage"] = lineage
    return metadata


def row_counts(lakehouse: Lakehouse, tables: Iterable[Table]) -> dict[Table, int]:
    """How many rows each table holds now, counted on one connection."""
    with lakehouse.connect() as conn:
        return {table: lakehouse.count(conn, table) for table in tables}


def materialized_metadata(
    table: Table,
    rows: int,
    lineage: dg.TableColumnLineage | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What a materialization reports: the row count now (`rows`), the schema and the table
    name."""
    return {**spec_metadata(table, lineage), "dagster/row_count": rows, **extra}


def table_spec(
    model: type,
    deps: Sequence[dg.AssetKey] = (),
    kinds: Iterable[str] = (),
    lineage: dg.TableColumnLineage | None = None,
) -> dg.AssetSpec:
    """The asset of one model's table: keyed by its address, grouped and tagged by its layer,
    owned by the data platform team, described by the model's docstring, with its columns and
    table name; tagged `pii` when a column holds personal data."""
    table = model.__table__
    layer = str(table.schema)
    tags = {"layer": layer}
    if any(is_pii(column) for column in table.columns):
        tags |= PII_TAG
    return dg.AssetSpec(
        table_key(table),
        deps=list(deps),
        group_name=layer,
        description=description(model),
        metadata=spec_metadata(table, lineage),
        owners=OWNERS,
        tags=tags,
        kinds={"duckdb", "databricks", "table", *kinds},
    )


def description(model: type) -> str:
    """An asset description from the model's docstring, which ends with the table's grain."""
    return " ".join((model.__doc__ or "").split())
