"""The few constructs SQLAlchemy does not have, compiled per dialect (DuckDB and Databricks).

Everything else in `queries/` is plain SQLAlchemy Core and compiles unchanged for both engines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ClauseElement, ColumnElement, FromClause, Select
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import BigInteger, Date, Numeric


class Merge(Executable, ClauseElement):
    """`MERGE INTO target AS t USING source AS s ON ... WHEN MATCHED AND <newer> THEN UPDATE ...
    WHEN NOT MATCHED THEN INSERT ...`: the upsert both DuckDB and Databricks run natively.

    `target` must be an alias of the table (named `t`) and `source` an aliased selectable, so
    conditions and values are written against `target.c` / `source.c`. `more_updates` are
    further `WHEN MATCHED AND <condition> THEN UPDATE` clauses, tried in order after the first
    (a matched row takes the first clause whose condition holds).
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
        more_updates: Sequence[tuple[ColumnElement[bool], Mapping[str, ColumnElement]]] = (),
    ) -> None:
        self.target = target
        self.source = source
        self.on = on
        self.update_when = update_when
        self.update_values = dict(update_values)
        self.insert_values = dict(insert_values)
        self.more_updates = [(when, dict(values)) for when, values in more_updates]


@compiles(Merge)
def _compile_merge(element: Merge, compiler, **kw) -> str:
    kw = {**kw, "asfrom": True}
    parts = [
        f"MERGE INTO {compiler.process(element.target, **kw)}",
        f"USING {compiler.process(element.source, **kw)}",
        f"ON {compiler.process(element.on, include_table=True)}",
    ]
    updates = [(element.update_when, element.update_values), *element.more_updates]
    for when, values in updates:
        if not values:
            continue
        condition = ""
        if when is not None:
            # Parenthesised: the condition is usually an OR chain.
            condition = f" AND ({compiler.process(when, include_table=True)})"
        assignments = ", ".join(
            f"{compiler.preparer.quote(name)} = {compiler.process(value, include_table=True)}"
            for name, value in values.items()
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


def _spelled(construct: type[FunctionElement], default: str, **per_dialect: str) -> None:
    """Register how a function construct renders: a template over its arguments' SQL
    (`{0}`, `{1}`, ...), with a default and one spelling per dialect name."""

    def renderer(template: str):
        def render(element: FunctionElement, compiler, **kw) -> str:
            return template.format(*(compiler.process(arg, **kw) for arg in element.clauses))

        return render

    compiles(construct)(renderer(default))
    for dialect, template in per_dialect.items():
        compiles(construct, dialect)(renderer(template))


class int_div(FunctionElement):
    """Integer division that truncates, which each engine spells differently."""

    type = BigInteger()
    name = "int_div"
    inherit_cache = True


_spelled(
    int_div,
    "FLOOR(({0}) / ({1}))",
    duckdb="(({0}) // ({1}))",
    databricks="(({0}) DIV ({1}))",
)


class utc_date(FunctionElement):
    """The UTC calendar date of an instant, whatever time zone the session runs in.

    DuckDB sessions are pinned to UTC by the engine, so a cast is the UTC date. A Databricks
    session's time zone is a workspace/warehouse setting, and `CAST(ts AS DATE)` follows it, so
    the date is counted from the epoch there instead (the DOUBLE quotient is exact far beyond any
    real date).
    """

    type = Date()
    name = "utc_date"
    inherit_cache = True


_spelled(
    utc_date,
    "CAST({0} AS DATE)",
    databricks="date_from_unix_date(CAST(floor(unix_seconds({0}) / 86400) AS INT))",
)


class seconds_between(FunctionElement):
    """Whole seconds from the first instant to the second."""

    type = BigInteger()
    name = "seconds_between"
    inherit_cache = True


_spelled(
    seconds_between,
    "CAST(EXTRACT(EPOCH FROM {1}) - EXTRACT(EPOCH FROM {0}) AS BIGINT)",
    duckdb="date_diff('second', {0}, {1})",
    databricks="(unix_timestamp({1}) - unix_timestamp({0}))",
)


class row_hash(FunctionElement):
    """A 64-bit hash of two values, as an exact number that sums without overflow (its sum over
    a table is a fingerprint of the table's rows): DuckDB's `hash`, Databricks' `xxhash64`. The
    engines hash differently, so a fingerprint is only compared with one from the same engine."""

    type = Numeric(38, 0)
    name = "row_hash"
    inherit_cache = True


_spelled(
    row_hash,
    "CAST(hash({0}, {1}) AS DECIMAL(38, 0))",
    databricks="CAST(xxhash64({0}, {1}) AS DECIMAL(38, 0))",
)
