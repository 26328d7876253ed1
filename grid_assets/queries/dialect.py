"""The few constructs SQLAlchemy does not have, compiled per dialect (DuckDB and Databricks).

Everything else in `queries/` is plain SQLAlchemy Core and compiles unchanged for both engines.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ClauseElement, ColumnElement, FromClause, Select
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import BigInteger, Date


class Merge(Executable, ClauseElement):
    """`MERGE INTO target AS t USING source AS s ON ... WHEN MATCHED AND <newer> THEN UPDATE ...
    WHEN NOT MATCHED THEN INSERT ...`: the upsert both DuckDB and Databricks run natively.

    `target` must be an alias of the table (named `t`) and `source` an aliased selectable, so
    conditions and values are written against `target.c` / `source.c`.
    """

    inherit_cache = False

    def __init__(
        self,
        target: FromClause,
        source: FromClause,
        on: ColumnElement[bool],
        update_when: ColumnElement[bool] | None,
        update_values: Mapping[str, ColumnElement],
        insert_values: Mapping[str, ColumnElement],
    ) -> None:
        self.target = target
        self.source = source
        self.on = on
        self.update_when = update_when
        self.update_values = dict(update_values)
        self.insert_values = dict(insert_values)


@compiles(Merge)
def _compile_merge(element: Merge, compiler, **kw) -> str:
    kw = {**kw, "asfrom": True}
    parts = [
        f"MERGE INTO {compiler.process(element.target, **kw)}",
        f"USING {compiler.process(element.source, **kw)}",
        f"ON {compiler.process(element.on, include_table=True)}",
    ]
    if element.update_values:
        condition = ""
        if element.update_when is not None:
            # Parenthesised: the condition is usually an OR chain.
            condition = f" AND ({compiler.process(element.update_when, include_table=True)})"
        assignments = ", ".join(
            f"{compiler.preparer.quote(name)} = {compiler.process(value, include_table=True)}"
            for name, value in element.update_values.items()
        )
        parts.append(f"WHEN MATCHED{condition} THEN UPDATE SET {assignments}")
    columns = ", ".join(compiler.preparer.quote(name) for name in element.insert_values)
    values = ", ".join(
        compiler.process(value, include_table=True) for value in element.insert_values.values()
    )
    parts.append(f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})")
    return "\n".join(parts)


class InsertOverwrite(Executable, ClauseElement):
    """Databricks' atomic replace of a table's contents: `INSERT OVERWRITE <table> <select>`."""

    inherit_cache = False

    def __init__(self, table: Table, columns: list[str], select: Select) -> None:
        self.table = table
        self.columns = columns
        self.select = select


@compiles(InsertOverwrite)
def _compile_insert_overwrite(element: InsertOverwrite, compiler, **kw) -> str:
    table = compiler.process(element.table, asfrom=True, **kw)
    columns = ", ".join(compiler.preparer.quote(name) for name in element.columns)
    return f"INSERT OVERWRITE {table} ({columns}) {compiler.process(element.select, **kw)}"


class int_div(FunctionElement):
    """Integer division that truncates, which each engine spells differently."""

    type = BigInteger()
    name = "int_div"
    inherit_cache = True


@compiles(int_div)
def _int_div_default(element: int_div, compiler, **kw) -> str:
    left, right = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"FLOOR(({left}) / ({right}))"


@compiles(int_div, "duckdb")
def _int_div_duckdb(element: int_div, compiler, **kw) -> str:
    left, right = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(({left}) // ({right}))"


@compiles(int_div, "databricks")
def _int_div_databricks(element: int_div, compiler, **kw) -> str:
    left, right = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(({left}) DIV ({right}))"


class utc_date(FunctionElement):
    """The UTC calendar date of an instant, whatever time zone the session runs in.

    DuckDB sessions are pinned to UTC by the engine, so a cast is the UTC date. A Databricks
    session's time zone is a workspace/warehouse setting, and `CAST(ts AS DATE)` follows it, so
    the date is counted from the epoch there instead.
    """

    type = Date()
    name = "utc_date"
    inherit_cache = True


@compiles(utc_date)
def _utc_date_default(element: utc_date, compiler, **kw) -> str:
    (instant,) = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"CAST({instant} AS DATE)"


@compiles(utc_date, "databricks")
def _utc_date_databricks(element: utc_date, compiler, **kw) -> str:
    # Whole days since 1970-01-01 UTC; the DOUBLE quotient is exact far beyond any real date.
    (instant,) = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"date_from_unix_date(CAST(floor(unix_seconds({instant}) / 86400) AS INT))"


class seconds_between(FunctionElement):
    """Whole seconds from the first instant to the second."""

    type = BigInteger()
    name = "seconds_between"
    inherit_cache = True


@compiles(seconds_between)
def _seconds_between_default(element: seconds_between, compiler, **kw) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM {end}) - EXTRACT(EPOCH FROM {start}) AS BIGINT)"


@compiles(seconds_between, "duckdb")
def _seconds_between_duckdb(element: seconds_between, compiler, **kw) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"date_diff('second', {start}, {end})"


@compiles(seconds_between, "databricks")
def _seconds_between_databricks(element: seconds_between, compiler, **kw) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(unix_timestamp({end}) - unix_timestamp({start}))"
