"""The embedded DuckDB file: its engine, its file lock, its memory limit, its Arrow scans."""

from __future__ import annotations

import functools
import logging
import re
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Select,
    Table,
    create_engine,
    delete,
    event,
    insert,
)
from sqlalchemy.engine.interfaces import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import NullPool, PoolResetState
from sqlalchemy.schema import CreateColumn
from sqlalchemy.sql import FromClause
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from grid_assets.config import (
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DUCKDB_LOCK_TIMEOUT_VAR,
    DUCKDB_MEMORY_LIMIT_VAR,
    DUCKDB_PATH_VAR,
    LocalConfig,
    MemoryLimit,
    check,
)
from grid_assets.lakehouse.core import Lakehouse, free_space
from grid_assets.lakehouse.staging import relation_name

log = logging.getLogger(__name__)
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class LakehouseMemoryError(RuntimeError):
    """A DuckDB statement needed more than the configured memory limit, spilling included."""

    def __init__(self, memory_limit: str, detail: str) -> None:
        first_line = detail.strip().splitlines()[0] if detail.strip() else "out of memory"
        super().__init__(
            f"DuckDB ran out of memory under its {memory_limit} limit ({first_line}). "
            f"Raise {DUCKDB_MEMORY_LIMIT_VAR} (for example to 1GB), or free disk space beside "
            "the lakehouse file if it was spilling there (the `.tmp` folder next to it), and "
            "run again; every step is idempotent, so nothing is lost or doubled."
        )


NO_SPACE = "No space left on device"


class LakehouseDiskFullError(RuntimeError):
    """DuckDB could not write the lakehouse file, its `.wal` or its spill folder: the disk is full.

    DuckDB says so in its own words: a commit that failed, or a FATAL error at a checkpoint,
    after which it invalidates the database for the rest of the process (later statements say
    "database has been invalidated" and quote the first error; the next process opens the file
    and replays its `.wal`). Worded here as what it means to an operator and what to do."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        lines = [line.strip() for line in detail.splitlines() if NO_SPACE in line]
        cause = lines[0] if lines else NO_SPACE
        free = free_space(Path(path).parent)
        super().__init__(
            f"The disk holding the lakehouse file {path} is full ({free}). DuckDB: {cause}. "
            "Free space on that disk, or move the file with the `.wal` beside it to a larger "
            f"disk and set {DUCKDB_PATH_VAR} to its new place, then run again: what earlier "
            "units of work committed is kept, and a re-run takes up from there without "
            "doubling anything, whether or not the failed one was stored."
        )


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


def _is_lock_error(exc: BaseException) -> bool:
    """DuckDB's 'Could not set lock on file ... Conflicting lock is held in <process>'."""
    return isinstance(exc, DBAPIError) and "could not set lock" in str(exc).lower()


def _lock_holder(exc: BaseException | None) -> str:
    """Who holds the lock, as DuckDB's message tells it (its PID and program, when given)."""
    found = _LOCK_HOLDER.search(str(exc))
    if found is None:
        return "another process"
    return f"another process, PID {found['pid']} ({found['program']})"


# The DuckDB files kept open in this process (see `held_open`): holders, and the connection
# that keeps each one's database open once a connection to it has been made.
_holds_lock = threading.Lock()
_holders: dict[str, int] = {}
_keepers: dict[str, Any] = {}


@contextmanager
def held_open(engine: Engine) -> Iterator[None]:
    """Keep `engine`'s DuckDB file open in this process from its first connection in the block
    to the end of the block: `grid run` holds it for its run, so that the steps share one
    open database.

    DuckDB opens the file (and replays its log) for the first connection of a process and
    checkpoints it when the last one closes: 15-60 ms each time, for every connection of every
    step and check (about 0.4 s of a run that has nothing to do). Under a hold, later
    connections attach to the open database and closing them costs nothing; the file is
    checkpointed once, when the hold ends. The process keeps the file's lock for the whole
    block, so another process waits for the end of the run rather than of the step."""
    path = str(engine.url.database)
    with _holds_lock:
        _holders[path] = _holders.get(path, 0) + 1
    try:
        yield
    finally:
        keeper = None
        with _holds_lock:
            _holders[path] -= 1
            if not _holders[path]:  # the last holder: the file may close
                del _holders[path]
                keeper = _keepers.pop(path, None)
        if keeper is not None:
            keeper.close()
            _warn_if_log_left(path)


def _warn_if_log_left(path: str) -> None:
    """Closing the file's last connection checkpoints its write-ahead log into it; DuckDB says
    nothing when that fails (a disk with room for the log but not for the checkpoint). Nothing
    is lost, the next open replays the log, but the next run will need that room."""
    wal = Path(f"{path}.wal")
    try:
        size = wal.stat().st_size
    except OSError:
        return
    if size:
        log.warning(
            "The lakehouse file %s was closed with %.1f MiB still in its write-ahead log (%s): "
            "DuckDB could not checkpoint it, most likely for lack of room on its disk (%s). "
            "Nothing is lost (the next run replays the log), but it needs that room: free "
            "space on that disk.",
            path,
            size / 2**20,
            wal,
            free_space(wal.parent),
        )


def _keep_open(engine: Engine) -> None:
    """Once a connection to a held file is open (its lock is ours), keep one more open."""
    path = str(engine.url.database)
    if path not in _holders or path in _keepers:
        return
    with _holds_lock:
        if path in _holders and path not in _keepers:
            _keepers[path] = engine.raw_connection()


@functools.cache
def duckdb_engine(path: str, memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT) -> Engine:
    """The embedded engine. NullPool on purpose: DuckDB's file lock belongs to whichever process
    holds an open connection, so connections are closed after each unit of work and the Dagster UI,
    a sensor and a run can take turns on the same file (`grid run` keeps it for its whole run:
    see `held_open`). Opening the file takes 15-60 ms; attaching to it while it is open, about
    a millisecond.

    `memory_limit` (checked by `config.MemoryLimit`) caps DuckDB's buffer manager: without it
    DuckDB keeps every table block it has read, up to 80% of the machine, so memory grows with
    the lakehouse rather than with the batch."""
    memory_limit = check(MemoryLimit, memory_limit, DUCKDB_MEMORY_LIMIT_VAR)  # spliced into SET
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # The pool's own rollback on return is replaced by `_roll_back` below.
    engine = create_engine(f"duckdb:///{path}", poolclass=NullPool, pool_reset_on_return=None)

    @event.listens_for(engine, "connect")
    def _session(dbapi_connection, _record) -> None:
        # Instants come back tz-aware in UTC whatever the host's zone, and ::DATE is the UTC date.
        dbapi_connection.execute("SET TimeZone = 'UTC'")
        dbapi_connection.execute(f"SET memory_limit = '{memory_limit}'")

    @event.listens_for(engine, "reset")
    def _roll_back(dbapi_connection, _record, state: PoolResetState) -> None:
        """What the pool does by default when a connection comes back, less one traceback: once
        DuckDB has invalidated the database (a FATAL error, such as a checkpoint on a full
        disk), every rollback of every connection to it fails again, and the pool would log
        each one as "Exception during reset" with the first error's whole traceback, above the
        step's own report of it. The connection is closed next either way."""
        if state.transaction_was_reset:
            return
        try:
            engine.dialect.do_rollback(dbapi_connection)
        except duckdb.FatalException:
            log.debug("Rollback on a DuckDB database already invalidated", exc_info=True)

    @event.listens_for(engine, "handle_error")
    def _name_what_ran_out(context: ExceptionContext) -> BaseException | None:
        if isinstance(context.original_exception, duckdb.Error) and NO_SPACE in str(
            context.original_exception
        ):
            return LakehouseDiskFullError(path, str(context.original_exception))
        if isinstance(context.original_exception, duckdb.OutOfMemoryException):
            return LakehouseMemoryError(memory_limit, str(context.original_exception))
        return None

    # duckdb-engine declares no native Decimal support, which makes SQLAlchemy round-trip DECIMAL
    # through float; DuckDB returns and accepts exact Decimals, so say so.
    engine.dialect.supports_native_decimal = True
    return engine


class ArrowScan:
    """A batch as a relation: the Arrow table registered under a fresh name, scanned in place
    by DuckDB (no rows through SQL text)."""

    @contextmanager
    def stage(
        self, conn: Connection, rows: pa.Table, like: Table, columns: list[Column]
    ) -> Iterator[FromClause]:
        name = f"{relation_name(like)}_{uuid.uuid4().hex[:12]}"
        relation = Table(name, MetaData(), *columns)
        raw: Any = conn.connection.driver_connection
        raw.register(name, rows)
        try:
            yield relation
        finally:
            raw.unregister(name)


@compiles(CreateColumn, "duckdb")
def _with_compression(element: CreateColumn, compiler: Any, **kw: Any) -> str | None:
    """A column whose model asks for a compression (`info={"duckdb_compression": ...}`) gets it
    in DuckDB's DDL (`USING COMPRESSION`), where DuckDB would otherwise choose per segment.
    Only new tables: a lakehouse created before keeps its columns as they were."""
    text = compiler.visit_create_column(element, **kw)
    how = element.element.info.get("duckdb_compression")
    return f"{text} USING COMPRESSION {how}" if text and how else text


@dataclass
class DuckDBBackend(ArrowScan):
    engine: Engine
    lock_timeout_s: float
    transactional = True

    def open(self) -> Connection:
        """A connection, waiting while another process holds the file's lock.

        The wait is bounded by `lock_timeout_s` (`GRID_DUCKDB_LOCK_TIMEOUT_S`), with back-off
        from 50 ms to 1 s; it logs one warning when it starts (the holder's PID, the bound) and
        ends in one `LakehouseLockTimeout` if the lock is still held then."""

        def first_wait(state: RetryCallState) -> None:
            if state.attempt_number == 1:
                log.warning(
                    "The DuckDB file %s is locked by %s; waiting up to %g s for it (%s).",
                    self.engine.url.database,
                    _lock_holder(state.outcome.exception() if state.outcome else None),
                    self.lock_timeout_s,
                    DUCKDB_LOCK_TIMEOUT_VAR,
                )

        waiting = Retrying(
            retry=retry_if_exception(_is_lock_error),
            stop=stop_after_delay(self.lock_timeout_s),
            wait=wait_exponential(multiplier=0.05, max=1.0),
            before_sleep=first_wait,
        )
        try:
            conn = waiting(self.engine.connect)
        except RetryError as gave_up:
            last = gave_up.last_attempt.exception()
            failure = LakehouseLockTimeout(
                str(self.engine.url.database), _lock_holder(last), self.lock_timeout_s
            )
        else:
            _keep_open(self.engine)
            return conn
        raise failure  # outside the except block: no driver exception chained

    def replace(self, conn: Connection, table: Table, query: Select) -> None:
        # One transaction: the emptying and the refill commit together.
        conn.execute(delete(table))
        conn.execute(insert(table).from_select([c.name for c in query.selected_columns], query))

    def fetch_arrow(self, conn: Connection, query: Select) -> pa.Table:
        result = conn.execute(query)
        try:
            cursor: Any = result.cursor
            with warnings.catch_warnings():
                # DuckDB notes that Arrow from a DB-API result copies the rows once: a batch is
                # bounded, and going through the SQLAlchemy connection keeps its transaction.
                warnings.filterwarnings("ignore", "Arrow output on a DB-API result")
                return cursor.to_arrow_table()  # duckdb-engine passes this to DuckDB's cursor
        finally:
            result.close()

    def prepared(self, schema_prefix: str) -> bool:
        return False  # a local file: the catalog is read on every call (DDL only if a table lacks)

    def prepare(self, conn: Connection) -> None:
        pass

    def after_prepare(self, schema_prefix: str) -> None:
        pass


def local_lakehouse(config: LocalConfig) -> Lakehouse:
    """The lakehouse in the DuckDB file `config` names."""
    engine = duckdb_engine(str(config.duckdb_path), config.memory_limit)
    return Lakehouse(DuckDBBackend(engine, float(config.lock_timeout_s)))
