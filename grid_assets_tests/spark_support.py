"""A local Spark SQL engine standing in for Databricks SQL, and the glue the parity tests need.

Open-source Spark runs the same SQL grammar and ANSI semantics as a Databricks SQL warehouse, but
without Delta (its jars come from Maven, unreachable offline). Tables are therefore created from
the DDL the real Databricks dialect compiles, with only the Delta-specific parts swapped out, and
statements are compiled by the real dialect before Spark parses them.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from databricks.sqlalchemy import DatabricksDialect
from sqlalchemy import Table, insert
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql import ClauseElement

SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.session.timeZone": "UTC",
    # Databricks SQL warehouses run ANSI mode; Spark 4 defaults to it too, say so anyway.
    "spark.sql.ansi.enabled": "true",
    "spark.sql.catalogImplementation": "in-memory",
    "spark.driver.memory": "1g",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    # A short-lived session on tiny tables: the C1 compiler and serial GC roughly halve start-up.
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}
# Rows per INSERT ... VALUES statement when copying tables into Spark: each statement is a Spark
# job with a fixed overhead, and parsing stays linear at this size.
INSERT_CHUNK_ROWS = 2000


def java_available() -> bool:
    return shutil.which("java") is not None


def _popen_without_python_in_the_child(command: Any, **kwargs: Any) -> subprocess.Popen:
    """PySpark starts its JVM with a `preexec_fn` (to keep Ctrl-C from the JVM), which runs
    Python in the forked child: not safe while other threads work (Python's own warning). The
    sessions start beside a pipeline run whose Arrow scans use Arrow's thread pool, and the
    child then crashed (SIGSEGV) in Arrow's at-fork handler. A new process group keeps Ctrl-C
    from the JVM without Python in the child."""
    kwargs.pop("preexec_fn", None)
    return subprocess.Popen(command, process_group=0, **kwargs)


def start_local_spark(work_dir: Path) -> Any:
    """One local SparkSession whose warehouse and scratch space live under `work_dir`."""
    from pyspark import java_gateway
    from pyspark.sql import SparkSession

    java_gateway.Popen = _popen_without_python_in_the_child  # type: ignore[attr-defined]

    builder = SparkSession.builder.master("local[2]").appName("grid-spark-sql-parity")
    conf = {
        **SPARK_CONF,
        "spark.sql.warehouse.dir": str(work_dir / "warehouse"),
        "spark.local.dir": str(work_dir / "scratch"),
    }
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextmanager
def quiet_analysis_errors() -> Iterator[None]:
    """Within the block, PySpark does not log the analysis errors it raises (each one a full JVM
    stack trace on stderr): for statements expected to fail, such as the Databricks dialect's
    `DESCRIBE TABLE EXTENDED` probe of a table not created yet. The errors are still raised."""
    from pyspark.logger import PySparkLogger

    # Created as PySpark creates it: a plain `logging.Logger` of that name would break its calls.
    logger = PySparkLogger.getLogger("SQLQueryContextLogger")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


# --- DDL --------------------------------------------------------------------------------------

_PRIMARY_KEY = re.compile(r",\s*CONSTRAINT \w+ PRIMARY KEY \([^)]*\)")
_TBLPROPERTIES = re.compile(r"\s*TBLPROPERTIES\s*\([^)]*\)")
_USING_DELTA = re.compile(r"\bUSING DELTA\b")


def delta_ddl_to_parquet(ddl: str) -> str:
    """The only adaptations Databricks' CREATE TABLE needs to run on Spark without Delta.

    `USING DELTA` becomes `USING PARQUET`; the Delta TBLPROPERTIES clause and the informational
    PRIMARY KEY constraint go, because Spark rejects both on parquet tables. Columns, types and
    NOT NULL are kept as compiled. Each pattern must match exactly once, so a change in what the
    dialect emits fails here instead of being silently ignored.
    """
    for pattern, replacement in (
        (_USING_DELTA, "USING PARQUET"),
        (_TBLPROPERTIES, ""),
        (_PRIMARY_KEY, ""),
    ):
        ddl, count = pattern.subn(replacement, ddl)
        if count != 1:
            raise AssertionError(f"expected one {pattern.pattern!r} in the Databricks DDL:\n{ddl}")
    return ddl.strip()


def databricks_create_table(table: Table) -> str:
    return str(CreateTable(table).compile(dialect=DatabricksDialect())).strip()


# --- literals ---------------------------------------------------------------------------------


def spark_literal(value: Any) -> str | None:
    """A typed SQL literal for the values whose plain rendering Spark would not store as-is.

    The Databricks dialect renders instants and dates as bare strings, which ANSI store
    assignment refuses for TIMESTAMP/DATE columns, and Decimals through `str()`, which can
    produce exponent notation (a DOUBLE literal). Returns None for every other value.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: instants must carry a time zone")
        return f"TIMESTAMP '{value.astimezone(UTC).isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot render {value!r} as a SQL decimal")
        return format(value, "f")
    return None


class _TypedLiteralCompiler(DatabricksDialect.statement_compiler):
    def render_literal_value(self, value: Any, type_: Any) -> str:
        typed = spark_literal(value)
        return typed if typed is not None else super().render_literal_value(value, type_)


class TypedLiteralDatabricksDialect(DatabricksDialect):
    """The Databricks dialect, unchanged but for `spark_literal` rendering of inlined values.

    It keeps the name `databricks`, so type variants and `@compiles(..., "databricks")` apply.
    Production never inlines values (they travel as typed parameters); only the tests do.
    """

    statement_compiler = _TypedLiteralCompiler
    supports_statement_cache = True


def databricks_sql(statement: ClauseElement) -> str:
    """`statement` exactly as the Databricks dialect compiles it, values inlined."""
    return str(
        statement.compile(dialect=DatabricksDialect(), compile_kwargs={"literal_binds": True})
    )


def typed_literal_sql(statement: ClauseElement) -> str:
    return str(
        statement.compile(
            dialect=TypedLiteralDatabricksDialect(), compile_kwargs={"literal_binds": True}
        )
    )


def insert_statements(table: Table, rows: Sequence[dict[str, Any]]) -> list[str]:
    """Multi-row INSERT ... VALUES statements for `rows`, values inlined as typed literals."""
    return [
        typed_literal_sql(insert(table).values(list(rows[start : start + INSERT_CHUNK_ROWS])))
        for start in range(0, len(rows), INSERT_CHUNK_ROWS)
    ]


# --- comparing results ------------------------------------------------------------------------


def comparable(value: Any) -> tuple[str, str]:
    """A value as (type, text), so 1 != Decimal('1') and Decimal('1.5') != Decimal('1.50').

    Spark hands TIMESTAMPs to Python as naive local-time datetimes; `astimezone` reads a naive
    datetime as local time, which turns both engines' instants into the same UTC value.
    """
    if isinstance(value, datetime):
        return ("instant", value.astimezone(UTC).isoformat())
    return (type(value).__name__, str(value))


def comparable_rows(rows: Sequence[Sequence[Any]], sort: bool = True) -> list[tuple]:
    converted = [tuple(comparable(value) for value in row) for row in rows]
    return sorted(converted) if sort else converted


def spark_table_rows(spark: Any, name: str) -> tuple[list[str], list[tuple]]:
    """Column names and rows of a Spark table, read through Arrow: instants come back UTC-aware,
    decimals as `Decimal` with their declared scale."""
    table = spark.sql(f"SELECT * FROM {name}").toArrow()
    columns = [column.to_pylist() for column in table.columns]
    return table.column_names, list(zip(*columns, strict=True)) if columns else []
