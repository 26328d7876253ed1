"""The lakehouse: one engine per process plus the few write paths that differ per engine."""

from __future__ import annotations

import logging
import re
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pyarrow as pa
from pydantic import Field, PrivateAttr, field_validator
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Select,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateSchema
from sqlalchemy.sql import FromClause

from grid_assets.models import metadata
from grid_assets.models.base import LAYERS
from grid_assets.queries.dialect import InsertOverwrite
from grid_assets.resources import engines
from grid_assets.resources.staging import (
    ArrowScan,
    Stager,
    VolumeStaging,
    relation_name,
    sdk_files,
)
from grid_assets.settings import (
    DEFAULT_DUCKDB_LOCK_TIMEOUT_S,
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_DUCKDB_PATH,
    DUCKDB_LOCK_TIMEOUT_VAR,
    ConfigurationError,
    derived_staging_volume,
    lock_timeout_problem,
    staging_volume_problem,
    validate_identifier,
)

# Databricks allows at most 256 named parameters per statement.
MAX_PARAMS_PER_STATEMENT = 256
# How long one Files API call (upload, list, delete) may keep retrying.
FILES_RETRY_TIMEOUT_S = 120
log = logging.getLogger(__name__)
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


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def _is_lock_error(exc: BaseException) -> bool:
    """DuckDB's 'Could not set lock on file ... Conflicting lock is held in <process>'."""
    return "could not set lock" in str(exc).lower()


def _lock_holder(exc: BaseException) -> str:
    """Who holds the lock, as DuckDB's message tells it (its PID and program, when given)."""
    found = _LOCK_HOLDER.search(str(exc))
    if found is None:
        return "another process"
    return f"another process, PID {found['pid']} ({found['program']})"


class LakehouseLockTimeout(RuntimeError):
    """Another process held the DuckDB file's lock for longer than this one may wait."""

    def __init__(self, path: str, holder: str, timeout_s: float) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"Gave up after waiting {timeout_s:g} s for the DuckDB file {path}: {holder} still "
            "holds its lock. Stop that process or let it finish, then run again; or let runs "
            f"wait longer by raising {DUCKDB_LOCK_TIMEOUT_VAR} (the lakehouse resource's "
            f"lock_timeout_seconds, now {timeout_s:g})."
        )


@dataclass
class Lakehouse:
    """Connections and engine-specific write paths over the Bronze, Silver and Gold schemas."""

    engine: Engine
    schema_prefix: str = ""
    lock_timeout_s: float = float(DEFAULT_DUCKDB_LOCK_TIMEOUT_S)
    # How batches reach SQL (resources.staging): an Arrow scan on DuckDB, Parquet files in a
    # volume on Databricks. Without one on Databricks, batches go as chunked multi-row VALUES
    # into a scratch table: the row path, kept for comparison (scripts/bench.py).
    stager: Stager | None = None
    # A volume the pipeline itself creates (the derived default), as catalog.schema.volume.
    create_volume: str | None = None

    def __post_init__(self) -> None:
        if self.stager is None:
            self.stager = ArrowScan() if self.dialect == "duckdb" else ScratchTables(self)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def schema_map(self) -> dict[str, str]:
        return {layer: f"{self.schema_prefix}{layer}" for layer in LAYERS}

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection, waiting while another process holds DuckDB's file lock.

        The wait is bounded by `lock_timeout_s` (`GRID_DUCKDB_LOCK_TIMEOUT_S`); it logs one
        warning when it starts (the holder's PID, the bound) and ends in one
        `LakehouseLockTimeout` if the lock is still held then. On other engines any failure to
        connect raises `engines.LakehouseConnectionError` (bounded in time, masked, naming host
        and HTTP path)."""
        deadline: float | None = None
        delay = 0.05
        while True:
            failure: Exception | None = None
            try:
                conn = self.engine.connect()
                break
            except engines.LakehouseConnectionError:
                raise
            except DBAPIError as exc:
                if self.dialect != "duckdb":
                    failure = engines.connection_error(self.engine, exc)
                elif not _is_lock_error(exc):
                    raise
                elif deadline is None:
                    deadline = time.monotonic() + self.lock_timeout_s
                    dg.get_dagster_logger(__name__).warning(
                        "The DuckDB file %s is locked by %s; waiting up to %g s for it (%s).",
                        self.engine.url.database,
                        _lock_holder(exc),
                        self.lock_timeout_s,
                        DUCKDB_LOCK_TIMEOUT_VAR,
                    )
                elif time.monotonic() >= deadline:
                    path = str(self.engine.url.database)
                    failure = LakehouseLockTimeout(path, _lock_holder(exc), self.lock_timeout_s)
            except Exception as exc:
                if self.dialect == "duckdb" or not engines.is_transport_error(exc):
                    raise
                failure = engines.connection_error(self.engine, exc)
            if failure is not None:
                raise failure  # outside the except blocks: no driver exception chained
            assert deadline is not None  # only a lock wait gets here
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)
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
        once = self._run_key()
        if once is not None and once in _PREPARED_RUNS:
            return
        with self.begin() as conn:
            for layer in LAYERS:
                conn.execute(CreateSchema(self.schema_map[layer], if_not_exists=True))
            stale = self._stale_tables(conn)
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
            if self.create_volume is not None:
                conn.execute(text(f"CREATE VOLUME IF NOT EXISTS {self.create_volume}"))
        if isinstance(self.stager, VolumeStaging):
            self.stager.sweep()
        if once is not None:
            _PREPARED_RUNS.add(once)

    def _run_key(self) -> tuple[str, str, str] | None:
        """What identifies one run's DDL on Databricks (None on DuckDB, which runs it always)."""
        if not isinstance(self.stager, VolumeStaging):
            return None
        return (str(self.engine.url), self.schema_prefix, self.stager.run_id)

    def _stale_tables(self, conn: Connection) -> dict[Table, list[str]]:
        """Existing tables missing a column of their model, with the missing columns."""
        found: dict[tuple[str, str], set[str]] = {}
        query = select(_COLUMNS.c.table_schema, _COLUMNS.c.table_name, _COLUMNS.c.column_name)
        # Databricks keeps names in lower case whatever case they were created in.
        physical = {name.lower(): layer for layer, name in self.schema_map.items()}
        names = sorted({*physical, *self.schema_map.values()})
        for schema, table, column in conn.execute(query.where(_COLUMNS.c.table_schema.in_(names))):
            layer = physical[schema.lower()]
            found.setdefault((layer, table.lower()), set()).add(column.lower())
        stale: dict[Table, list[str]] = {}
        for table in metadata.sorted_tables:
            columns = found.get((str(table.schema), table.name))
            missing = [c.name for c in table.c if columns and c.name not in columns]
            if missing:
                stale[table] = missing
        return stale

    # -- staging: make a batch of rows available to SQL as a relation -----------------------
    @contextmanager
    def staged(self, conn: Connection, rows: pa.Table, like: Table) -> Iterator[FromClause]:
        """Expose `rows` to SQL as a relation typed like `like`'s columns, for INSERT/MERGE ...
        SELECT: an Arrow scan on DuckDB, a Parquet file in the staging volume on Databricks
        (`resources.staging`). Columns not in `like` keep their Arrow type."""
        columns = [like.c[n].copy() for n in rows.column_names if n in like.c] + [
            Column(n, _arrow_to_sql_type(rows.schema.field(n).type))
            for n in rows.column_names
            if n not in like.c
        ]
        for column in columns:
            column.primary_key = False
            column.nullable = True
            column.comment = None  # the model's description is for the real table, not a stage
        assert self.stager is not None  # set in __post_init__
        with self.stager.stage(conn, rows, like, columns) as relation:
            yield relation

    def bulk_insert(self, conn: Connection, table: Table, rows: pa.Table) -> int:
        """Append rows in bulk: one INSERT ... SELECT from the staged batch (multi-row VALUES
        on the row path)."""
        if rows.num_rows == 0:
            return 0
        if isinstance(self.stager, ScratchTables):
            return self._insert_chunked(conn, table, rows)
        with self.staged(conn, rows, table) as stage:
            names = rows.column_names
            conn.execute(insert(table).from_select(names, select(*(stage.c[n] for n in names))))
        return rows.num_rows

    def _insert_chunked(self, conn: Connection, table: Table, rows: pa.Table) -> int:
        # executemany would be one request per row on Databricks; multi-row VALUES under the
        # parameter cap keeps it to rows / (256 // columns) statements.
        # Columns with a client-side default are rendered as parameters too.
        rendered = set(rows.column_names) | {c.name for c in table.c if c.default is not None}
        per_statement = max(1, MAX_PARAMS_PER_STATEMENT // max(1, len(rendered)))
        # Slices, not to_batches(): batches never span the table's chunks, which would add
        # short statements at every chunk boundary.
        for start in range(0, rows.num_rows, per_statement):
            conn.execute(insert(table).values(rows.slice(start, per_statement).to_pylist()))
        return rows.num_rows

    def replace(self, conn: Connection, table: Table, query: Select) -> None:
        """Replace a table's whole content with `query`, atomically on both engines."""
        columns = [c.name for c in query.selected_columns]
        if self.dialect == "databricks":
            conn.execute(InsertOverwrite(table, columns, query))
            return
        conn.execute(delete(table))
        conn.execute(insert(table).from_select(columns, query))

    def fetch_arrow(self, conn: Connection, query: Select) -> pa.Table:
        """Run a SELECT and return its rows as Arrow columns: no Python object per value."""
        result = conn.execute(query)
        try:
            cursor: Any = result.cursor  # the DBAPI cursor holding the rows
            if self.dialect != "duckdb":
                return cursor.fetchall_arrow()  # the Databricks SQL connector's cursor
            with warnings.catch_warnings():
                # DuckDB notes that Arrow from a DB-API result copies the rows once: a batch is
                # bounded, and going through the SQLAlchemy connection keeps its transaction.
                warnings.filterwarnings("ignore", "Arrow output on a DB-API result")
                return cursor.to_arrow_table()  # duckdb-engine passes this to DuckDB's cursor
        finally:
            result.close()

    def count(self, conn: Connection, table: Table) -> int:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# Runs whose schema DDL has run in this process (Databricks; see Lakehouse.create_tables).
_PREPARED_RUNS: set[tuple[str, str, str]] = set()


@dataclass
class ScratchTables:
    """The row path on Databricks: a scratch table in the target's schema filled by multi-row
    VALUES under the parameter cap, dropped after use. About rows / (256 // columns)
    statements a batch; production stages files instead (`staging.VolumeStaging`)."""

    lakehouse: Lakehouse

    @contextmanager
    def stage(
        self, conn: Connection, rows: pa.Table, like: Table, columns: list[Column]
    ) -> Iterator[FromClause]:
        name = f"{relation_name(like)}_{uuid.uuid4().hex[:12]}"
        relation = Table(name, MetaData(), *columns, schema=like.schema)
        relation.create(conn)
        try:
            self.lakehouse._insert_chunked(conn, relation, rows)
            yield relation
        finally:
            relation.drop(conn)


def _arrow_to_sql_type(arrow_type: pa.DataType):
    from sqlalchemy import BigInteger, Boolean, DateTime, Numeric, String

    if pa.types.is_integer(arrow_type):
        return BigInteger()
    if pa.types.is_boolean(arrow_type):
        return Boolean()
    if pa.types.is_decimal(arrow_type):
        return Numeric(arrow_type.precision, arrow_type.scale)  # type: ignore[attr-defined]
    if pa.types.is_timestamp(arrow_type):
        return DateTime(timezone=True)
    return String()


class LakehouseResource(dg.ConfigurableResource):
    """Where Bronze, Silver and Gold live: an embedded DuckDB file (`local`) or a Databricks SQL
    warehouse (`production`). The engine is created once per process and shared by every asset,
    check and sensor in it; secrets come from environment variables and are never logged."""

    environment: str = "local"
    duckdb_path: str = str(DEFAULT_DUCKDB_PATH)
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    server_hostname: str | None = None
    http_path: str | None = None
    # repr=False: the resolved resource's repr (in a log line or an error) never shows the token.
    access_token: str | None = Field(
        default=None, repr=False, description="Databricks token, as EnvVar('DATABRICKS_TOKEN')."
    )
    catalog: str | None = None
    schema_prefix: str = ""
    connect_timeout_seconds: int = engines.DEFAULT_CONNECT_TIMEOUT_S
    # Local only: how long to wait for DuckDB's file lock (GRID_DUCKDB_LOCK_TIMEOUT_S).
    lock_timeout_seconds: int = DEFAULT_DUCKDB_LOCK_TIMEOUT_S
    # Production: the volume bulk writes travel through (DATABRICKS_STAGING_VOLUME); None
    # derives /Volumes/<catalog>/<prefix>bronze/grid_staging, created with the schemas.
    staging_volume: str | None = None
    _run_id: str | None = PrivateAttr(default=None)

    @field_validator("staging_volume")
    @classmethod
    def _check_staging_volume(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and (problem := staging_volume_problem(value)):
            raise ValueError(problem)
        return value

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Staged file names carry the run id, so a retried step finds its own batches.
        self._run_id = context.run_id

    def get_lakehouse(self) -> Lakehouse:
        if self.environment == "local":
            if problem := lock_timeout_problem(str(self.lock_timeout_seconds)):
                raise ConfigurationError(problem)
            engine = engines.duckdb_engine(self.duckdb_path, self.duckdb_memory_limit)
            return Lakehouse(engine, "", float(self.lock_timeout_seconds))
        required: Mapping[str, str | None] = {
            "DATABRICKS_SERVER_HOSTNAME": self.server_hostname,
            "DATABRICKS_HTTP_PATH": self.http_path,
            "DATABRICKS_TOKEN": self.access_token,
            "DATABRICKS_CATALOG": self.catalog,
        }
        missing = [name for name, value in required.items() if not (value or "").strip()]
        if missing:
            raise dg.DagsterInvalidConfigError(
                "Databricks configuration is incomplete; missing or empty: " + ", ".join(missing),
                [],
                None,
            )
        catalog = validate_identifier(str(self.catalog).strip(), "DATABRICKS_CATALOG")
        engine = engines.databricks_engine(
            str(self.server_hostname),
            str(self.http_path),
            str(self.access_token),
            catalog,
            self.connect_timeout_seconds,
        )
        volume, create = self.staging_volume, None
        if volume is None:
            volume = derived_staging_volume(catalog, self.schema_prefix)
            create = ".".join(volume.split("/")[2:])  # catalog.schema.volume
        elif problem := staging_volume_problem(volume):
            raise ConfigurationError(problem)
        target = engines.DatabricksTarget.of(engine)
        files = sdk_files(
            f"https://{target.address}", str(self.access_token).strip(), FILES_RETRY_TIMEOUT_S
        )
        stager = VolumeStaging(volume, files, self._run_id or f"adhoc-{uuid.uuid4().hex[:12]}")
        return Lakehouse(
            engine,
            self.schema_prefix,
            float(self.lock_timeout_seconds),
            stager=stager,
            create_volume=create,
        )


def ping(lakehouse: Lakehouse) -> None:
    with lakehouse.connect() as conn:
        conn.execute(text("SELECT 1"))
