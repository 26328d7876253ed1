"""`Lakehouse`: connections, units of work, DDL and the write paths Bronze, Silver and Gold use.

What differs between engines (how a connection is opened, how a batch reaches SQL, how a table
is replaced, how rows come back as Arrow, what the first DDL of a run also does) is one
`Backend`, chosen once when the lakehouse is built: `lakehouse.duckdb.DuckDBBackend` or
`lakehouse.databricks.DatabricksBackend`. Nothing here branches on the engine.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Numeric,
    Select,
    String,
    Table,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.schema import CreateSchema
from sqlalchemy.sql import FromClause

from grid_assets.models import metadata
from grid_assets.models.base import LAYERS

log = logging.getLogger(__name__)


def free_space(folder: Path) -> str:
    """How much room is left on the disk holding `folder`, for an error about a full disk."""
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:,.0f} MiB free there now"
    except OSError:
        return "its free space unknown"


# The SQL-standard catalog view both engines have: which columns each existing table has.
_COLUMNS = Table(
    "columns",
    MetaData(),
    Column("table_schema", String()),
    Column("table_name", String()),
    Column("column_name", String()),
    schema="information_schema",
)


class LakehouseLayoutError(RuntimeError):
    """A table was created by an earlier layout that cannot be rebuilt in place."""


class Backend(Protocol):
    """What one engine does its own way."""

    engine: Engine
    # A unit of work (`Lakehouse.begin`) is one transaction: its statements read one snapshot,
    # no other writer's changes among them, and commit together or not at all.
    transactional: bool

    def open(self) -> Connection:
        """A new connection (DuckDB waits for its file lock; Databricks bounds the connect)."""
        ...

    def stage(
        self, conn: Connection, rows: pa.Table, like: Table, columns: list[Column]
    ) -> AbstractContextManager[FromClause]:
        """`rows` as a relation with `columns`, for the duration of the block."""
        ...

    def replace(self, conn: Connection, table: Table, query: Select) -> None:
        """`table`'s whole content becomes `query`'s rows, atomically."""
        ...

    def fetch_arrow(self, conn: Connection, query: Select) -> pa.Table: ...

    def prepared(self, schema_prefix: str) -> bool:
        """Whether this run's DDL for the schemas under `schema_prefix` has already run in this
        process (then it is skipped)."""
        ...

    def prepare(self, conn: Connection) -> None:
        """What the first DDL of a run also does, inside its unit of work."""
        ...

    def after_prepare(self, schema_prefix: str) -> None:
        """What follows the first DDL of a run, outside its unit of work."""
        ...


@dataclass
class Lakehouse:
    """Connections and write paths over the Bronze, Silver and Gold schemas of one backend."""

    backend: Backend
    schema_prefix: str = ""

    @property
    def engine(self) -> Engine:
        return self.backend.engine

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def transactional(self) -> bool:
        return self.backend.transactional

    @property
    def schema_map(self) -> dict[str, str]:
        return {layer: f"{self.schema_prefix}{layer}" for layer in LAYERS}

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection with the layer schemas mapped to this lakehouse's physical names."""
        conn = self.backend.open()
        try:
            yield conn.execution_options(schema_translate_map=self.schema_map)
        finally:
            conn.close()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A unit of work: committed together on DuckDB (Databricks has no multi-statement
        transactions, so every write path there is idempotent on retry instead)."""
        with self.connect() as conn, conn.begin():
            yield conn

    def create_tables(self) -> None:
        """Create the layer schemas and every table if missing; safe to call on every run.

        On Databricks it runs once per run and process (the DDL costs a statement per table):
        later calls for the same run return at once. The first also creates the derived
        staging volume and sweeps files left in it by earlier runs.

        A table left by an earlier layout (a model column missing) is rebuilt when what it holds
        can be rebuilt: Gold tables (recomputed every run) and `bronze.ingested_files` (without
        it, Bronze reads the landing files again, and every line already stored is recognised
        as a duplicate or a known rejected line). Any other stale table stops with one error."""
        if self.backend.prepared(self.schema_prefix):
            return
        with self.begin() as conn:
            found = self._existing_columns(conn)
            stale = self._stale_tables(found)
            # The usual call finds every table as its model has it: no DDL to send.
            if stale or not all(found.get((str(t.schema), t.name)) for t in metadata.sorted_tables):
                self._create_missing(conn, stale)
            self.backend.prepare(conn)
        self.backend.after_prepare(self.schema_prefix)

    def _create_missing(self, conn: Connection, stale: dict[Table, list[str]]) -> None:
        """Create the layer schemas and the tables that are missing; rebuild or refuse each
        stale one (see `create_tables`)."""
        for layer in LAYERS:
            conn.execute(CreateSchema(self.schema_map[layer], if_not_exists=True))
        for table, missing in stale.items():
            if table.schema != "gold" and table.name != "ingested_files":
                raise LakehouseLayoutError(
                    f"{table.schema}.{table.name} was created by an earlier version of the "
                    f"pipeline and lacks {', '.join(missing)}. Rebuild the lakehouse: "
                    "locally, delete the DuckDB file (GRID_DUCKDB_PATH) and run again; "
                    "Bronze is rebuilt from the landing folder."
                )
            log.warning(
                "Rebuilding %s.%s, created by an earlier layout (it lacked %s)",
                table.schema,
                table.name,
                ", ".join(missing),
            )
            table.drop(conn)
        metadata.create_all(conn, checkfirst=True)

    def _existing_columns(self, conn: Connection) -> dict[tuple[str, str], set[str]]:
        """(layer, table) -> the columns each existing table of the layer schemas has."""
        found: dict[tuple[str, str], set[str]] = {}
        query = select(_COLUMNS.c.table_schema, _COLUMNS.c.table_name, _COLUMNS.c.column_name)
        # Databricks keeps names in lower case whatever case they were created in.
        physical = {name.lower(): layer for layer, name in self.schema_map.items()}
        names = sorted({*physical, *self.schema_map.values()})
        for schema, table, column in conn.execute(query.where(_COLUMNS.c.table_schema.in_(names))):
            layer = physical[schema.lower()]
            found.setdefault((layer, table.lower()), set()).add(column.lower())
        return found

    @staticmethod
    def _stale_tables(found: dict[tuple[str, str], set[str]]) -> dict[Table, list[str]]:
        """Existing tables (`found`) missing a column of their model, with the missing ones."""
        stale: dict[Table, list[str]] = {}
        for table in metadata.sorted_tables:
            columns = found.get((str(table.schema), table.name))
            missing = [c.name for c in table.c if columns and c.name not in columns]
            if missing:
                stale[table] = missing
        return stale

    @contextmanager
    def staged(self, conn: Connection, rows: pa.Table, like: Table) -> Iterator[FromClause]:
        """Expose `rows` to SQL as a relation typed like `like`'s columns, for INSERT/MERGE ...
        SELECT: an Arrow scan on DuckDB, a Parquet file in the staging volume on Databricks.
        Columns not in `like` keep their Arrow type."""
        # Names and types only: no key, constraint or comment of the real table on a stage.
        columns = [
            Column(
                n, like.c[n].type if n in like.c else _arrow_to_sql_type(rows.schema.field(n).type)
            )
            for n in rows.column_names
        ]
        with self.backend.stage(conn, rows, like, columns) as relation:
            yield relation

    def bulk_insert(self, conn: Connection, table: Table, rows: pa.Table) -> int:
        """Append rows in bulk: one INSERT ... SELECT from the staged batch."""
        if rows.num_rows == 0:
            return 0
        with self.staged(conn, rows, table) as stage:
            names = rows.column_names
            conn.execute(insert(table).from_select(names, select(*(stage.c[n] for n in names))))
        return rows.num_rows

    def replace(self, conn: Connection, table: Table, query: Select) -> None:
        """Replace a table's whole content with `query`, atomically on both engines."""
        self.backend.replace(conn, table, query)

    def fetch_arrow(self, conn: Connection, query: Select) -> pa.Table:
        """Run a SELECT and return its rows as Arrow columns: no Python object per value."""
        return self.backend.fetch_arrow(conn, query)

    def count(self, conn: Connection, table: Table) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def ping(lakehouse: Lakehouse) -> None:
    with lakehouse.connect() as conn:
        conn.execute(text("SELECT 1"))


def _arrow_to_sql_type(arrow_type: pa.DataType):
    if pa.types.is_integer(arrow_type):
        return BigInteger()
    if pa.types.is_boolean(arrow_type):
        return Boolean()
    if pa.types.is_decimal(arrow_type):
        return Numeric(arrow_type.precision, arrow_type.scale)  # type: ignore[attr-defined]
    if pa.types.is_timestamp(arrow_type):
        return DateTime(timezone=True)
    return String()
