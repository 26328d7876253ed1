"""The Databricks SQL warehouse: its engine, bounded connections, masked errors, staged writes.

One SQLAlchemy engine per process and configuration, created on first use. Connections are
bounded and never leak the token:

- Opening a connection takes at most `GRID_DATABRICKS_CONNECT_TIMEOUT_S` seconds (30 by
  default), retries included. The connector's own retry budget is set a little under it and the
  attempt runs on a helper thread whose `Future` the caller stops waiting for at the deadline
  (`call_within`), so even a host that accepts TCP and never answers cannot hold a run longer.
  A refused connection or a host name that does not resolve fails after about 14 s (3
  attempts, backoff 2 + 4 + 8 s); measured: 14.2 s refused, 15.2 s unresolvable, 30.0 s for a
  silent host. A stopped classic warehouse can take minutes to start: raise the budget with
  `GRID_DATABRICKS_CONNECT_TIMEOUT_S` (or the resource's `connect_timeout_seconds`) for those.
- While an attempt runs, the connector's per-retry WARNING/ERROR records are demoted to DEBUG
  (`_QuietConnectAttempts`): the one error at the end says the same thing once.
- Every failure to connect becomes one `LakehouseConnectionError` naming host and HTTP path,
  with the cause summarised and masked (`grid_assets.logging_redaction.redact`), and no chained
  driver exception that could carry the token.
- Errors raised while executing statements have their messages masked in place before they
  leave SQLAlchemy (`handle_error`), and transport errors that escape the connector unwrapped
  (a bare urllib3 `MaxRetryError`) become `LakehouseConnectionError` too.
- The token is never part of the engine URL (it goes in through `connect_args`), so
  `repr(engine)` and SQLAlchemy's messages cannot show it. An empty token never gets here
  (`config.DatabricksConfig` refuses it): the connector would fall back to an interactive
  browser login and hang.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

import pyarrow as pa
from sqlalchemy import (
    URL,
    Column,
    Connection,
    Engine,
    MetaData,
    Select,
    Table,
    create_engine,
    event,
    insert,
    text,
)
from sqlalchemy.engine.interfaces import ExceptionContext
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import FromClause

from grid_assets.config import HOSTNAME_VAR, DatabricksConfig, Hostname, check
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.staging import Stager, VolumeStaging, relation_name, sdk_files
from grid_assets.logging_redaction import (
    install_redaction,
    redact,
    redact_exception,
    register_secret,
)
from grid_assets.queries.dialect import InsertOverwrite

# Per-request socket timeout once connected: bounds a dead connection without cutting short the
# responses of slow statements (the connector's default is 900 s).
SOCKET_TIMEOUT_S = 120
# Attempts per request in the connector's retry policy (its default is 30).
RETRY_ATTEMPTS = 3
DEFAULT_PORT = 443
POOL_RECYCLE_S = 1800
CONNECT_THREAD_NAME = "grid-databricks-connect"
# Databricks allows at most 256 named parameters per statement.
MAX_PARAMS_PER_STATEMENT = 256
# How long one Files API call (upload, list, delete) may keep retrying.
FILES_RETRY_TIMEOUT_S = 120
_REASON_MAX_CHARS = 300
_RESOLUTION_FAILURES = (
    "nameresolutionerror",
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "no address associated",
    "failed to resolve",
)
_AUTH_FAILURE = re.compile(r"\b(401|403)\b|unauthori[sz]ed|forbidden|invalid access|authenticat")
T = TypeVar("T")


# Loggers the connector and urllib3 report each failed connect attempt on (WARNING / ERROR).
CONNECT_NOISE_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.util.retry",
    "databricks.sql.backend.thrift_backend",
    "databricks.sql.client",
    "databricks.sql.session",
    "databricks.sql.auth.retry",
    "databricks.sql.auth.thrift_http_client",
)


class _QuietConnectAttempts(logging.Filter):
    """Demote what the connector logs from inside a bounded connect attempt to DEBUG.

    Each retry of a refused connection is otherwise a WARNING plus a final ERROR; the attempt
    ends in one `LakehouseConnectionError` that reports the cause, once. The records stay
    available at DEBUG level. (A filter must sit on the logger that creates the record: Python
    does not apply a parent logger's filters to records propagating from its children.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.threadName != CONNECT_THREAD_NAME or record.levelno <= logging.DEBUG:
            return True
        # Kept for the final error: these often name the cause (refused, unresolvable) that
        # the connector's own exception loses once its retry budget runs out.
        if record.thread is not None:
            if len(_ATTEMPT_NOTES) > 64:
                _ATTEMPT_NOTES.clear()
            notes = _ATTEMPT_NOTES.setdefault(record.thread, [])
            notes[:] = [*notes[-7:], record.getMessage()]
        if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_ATTEMPT_NOTES: dict[int, list[str]] = {}


_QUIET_FILTER = _QuietConnectAttempts()


def _quiet_connect_attempts() -> None:
    for name in CONNECT_NOISE_LOGGERS:
        logger = logging.getLogger(name)
        if _QUIET_FILTER not in logger.filters:
            logger.addFilter(_QUIET_FILTER)


class LakehouseConnectionError(RuntimeError):
    """The Databricks SQL warehouse could not be reached or refused the connection.

    The message names host and HTTP path and never contains a secret."""

    def __init__(self, target: DatabricksTarget, reason: str, elapsed_s: float | None = None):
        self.host = target.address
        self.http_path = target.http_path
        self.reason = redact(reason)
        timing = f" after {elapsed_s:.1f} s" if elapsed_s is not None else ""
        super().__init__(
            f"Cannot connect to the Databricks SQL warehouse at host {target.address}, "
            f"http_path {target.http_path}{timing}: {self.reason}"
        )


@dataclass(frozen=True)
class DatabricksTarget:
    host: str
    port: int
    http_path: str

    @property
    def address(self) -> str:
        return self.host if self.port == DEFAULT_PORT else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, server_hostname: str, http_path: str) -> DatabricksTarget:
        """`host` or `host:port` (DATABRICKS_SERVER_HOSTNAME) plus the warehouse's HTTP path."""
        value = check(Hostname, server_hostname, HOSTNAME_VAR)
        host, _, port = value.partition(":")
        return cls(host, int(port) if port else DEFAULT_PORT, http_path.strip())

    @classmethod
    def of(cls, engine: Engine) -> DatabricksTarget:
        url = engine.url
        return cls(str(url.host), url.port or DEFAULT_PORT, str(url.query.get("http_path", "")))


@functools.cache
def databricks_engine(config: DatabricksConfig, *, dbapi: ModuleType | None = None) -> Engine:
    """A pooled engine on the warehouse `config` names; `create_engine` itself does not connect.

    `config` has passed every rule of `grid_assets.config` (an empty token included: the
    connector would otherwise fall back to an interactive browser login and hang). `dbapi`
    replaces the `databricks.sql` module (tests use a recording fake)."""
    token = config.token
    connect_timeout_s = config.connect_timeout_s
    register_secret(token)
    install_redaction()
    _quiet_connect_attempts()
    target = DatabricksTarget.parse(config.server_hostname, config.http_path)
    url = URL.create(
        "databricks",
        username="token",  # no password: the token goes in through connect_args
        host=target.host,
        port=target.port,
        query={"http_path": target.http_path, "catalog": config.catalog},
    )
    options: dict[str, Any] = {"module": dbapi} if dbapi is not None else {}
    engine = create_engine(
        url,
        pool_size=5,
        max_overflow=5,
        pool_pre_ping=True,
        pool_recycle=POOL_RECYCLE_S,
        hide_parameters=True,
        connect_args={
            "access_token": token,
            "_port": target.port,
            "_retry_stop_after_attempts_count": RETRY_ATTEMPTS,
            # A little under the hard deadline, so the connector's own error (which names the
            # cause) normally arrives first; the deadline only stops a hung attempt.
            "_retry_stop_after_attempts_duration": max(1.0, connect_timeout_s * 0.8),
            "_socket_timeout": SOCKET_TIMEOUT_S,
            "enable_telemetry": False,
            # Instants render and cast in UTC whatever the warehouse's default zone.
            "session_configuration": {"TIMEZONE": "UTC"},
        },
        **options,
    )

    @event.listens_for(engine, "do_connect")
    def _bounded_connect(dialect, _record, cargs, cparams):
        return connect_within(
            lambda: dialect.loaded_dbapi.connect(*cargs, **cparams), target, connect_timeout_s
        )

    @event.listens_for(engine, "handle_error")
    def _mask_errors(context: ExceptionContext) -> BaseException | None:
        redact_exception(context.original_exception)
        if context.sqlalchemy_exception is not None:
            redact_exception(context.sqlalchemy_exception)
            return None
        if context.is_pre_ping or isinstance(context.original_exception, LakehouseConnectionError):
            return None
        if is_transport_error(context.original_exception):
            return LakehouseConnectionError(target, describe(context.original_exception))
        return None

    return engine


class Deadline(Exception):
    """`call_within` stopped waiting."""


def call_within(
    fn: Callable[[], T],
    seconds: float,
    *,
    thread_name: str = "grid-deadline",
    on_late: Callable[[T], object] | None = None,
) -> T:
    """`fn()`'s result, or `Deadline` after `seconds`; what `fn` raises is raised here.

    `fn` runs on a daemon thread behind a `concurrent.futures.Future`: a call that never
    returns (a silent host) is abandoned at the deadline without holding the process at exit,
    which an executor's worker threads would. `on_late` receives a result that arrives after
    the deadline (a connection to close), if any."""
    future: Future = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:  # handed to the waiting thread
            future.set_exception(exc)

    threading.Thread(target=run, name=thread_name, daemon=True).start()
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        if on_late is not None:
            future.add_done_callback(
                lambda late: on_late(late.result()) if late.exception() is None else None
            )
        raise Deadline from None


def connect_within(connect, target: DatabricksTarget, timeout_s: float):
    """Run `connect()` on a helper thread and wait at most `timeout_s` seconds for it.

    Any failure, and the deadline, raise one `LakehouseConnectionError` with no chained
    exception. A connection that arrives after the deadline is closed."""
    started = time.monotonic()
    thread_ids: list[int] = []

    def attempt():
        thread_ids.append(threading.get_ident())
        return connect()

    error: BaseException | None = None
    try:
        connection = call_within(
            attempt, timeout_s, thread_name=CONNECT_THREAD_NAME, on_late=_close_quietly
        )
    except Deadline:
        pass
    except BaseException as exc:  # reported below, masked and without its chain
        error = exc
    else:
        _ATTEMPT_NOTES.pop(thread_ids[0], None)
        return connection
    elapsed = time.monotonic() - started
    note = " ".join(_ATTEMPT_NOTES.pop(thread_ids[0], [])) if thread_ids else ""
    if isinstance(error, LakehouseConnectionError):
        failure = error
    else:
        if error is not None:
            redact_exception(error)
        failure = LakehouseConnectionError(
            target, describe(error, note or None, timeout_s), elapsed
        )
    raise failure  # outside any except block: nothing chained


def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):  # nothing left to report to
        connection.close()


def is_transport_error(exc: BaseException) -> bool:
    """Network-level failures the connector lets escape unwrapped (urllib3, sockets)."""
    try:
        import urllib3.exceptions
    except ImportError:  # pragma: no cover
        return isinstance(exc, OSError)
    return isinstance(exc, (urllib3.exceptions.HTTPError, OSError))


def _chain(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found and len(found) < 20:
        found.append(current)
        reason = getattr(current, "reason", None)
        orig = getattr(current, "orig", None)
        current = next(
            (
                e
                for e in (orig, reason, current.__cause__, current.__context__)
                if isinstance(e, BaseException)
            ),
            None,
        )
    return found


def _summary(chain: list[BaseException], text: str) -> str | None:
    lowered = text.lower()
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
        marker in lowered for marker in _RESOLUTION_FAILURES
    ):
        return "the host name does not resolve (check DATABRICKS_SERVER_HOSTNAME)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in lowered:
        return "connection refused (check DATABRICKS_SERVER_HOSTNAME and the port)"
    if any(isinstance(e, TimeoutError) for e in chain) or "timed out" in lowered:
        return "the connection timed out (network, proxy or firewall)"
    if _AUTH_FAILURE.search(lowered):
        return "authentication failed (check DATABRICKS_TOKEN)"
    if re.search(r"\b404\b|not found", lowered):
        return "not found (check DATABRICKS_HTTP_PATH and DATABRICKS_CATALOG)"
    if any(m in lowered for m in ("ssl", "certificate", "tls")):
        return "the TLS handshake failed (proxy or certificate problem)"
    return None


def describe(
    exc: BaseException | None, note: str | None = None, timeout_s: float | None = None
) -> str:
    """A short, masked, one-line reason for a connection failure, with a hint when known.

    `exc` is what the connector raised (None when the deadline passed first); `note` is what
    it logged during the attempt."""
    chain = _chain(exc) if exc is not None else []
    text = " ".join(f"{type(e).__name__} {e}" for e in chain)
    summary = _summary(chain, text) or (_summary([], note) if note else None)
    if exc is None:
        budget = (
            f"no answer within the {timeout_s:g} s connect timeout"
            if timeout_s
            else ("no answer within the connect timeout")
        )
        return f"{budget}; last attempt: {summary}" if summary else budget
    if summary is None:
        if "max retry duration" in text.lower():
            summary = "no answer before the connect timeout ran out (retries exhausted)"
        else:
            summary = "the warehouse did not accept the connection"
    detail = " ".join(redact(str(exc)).split())
    if len(detail) > _REASON_MAX_CHARS:
        detail = detail[: _REASON_MAX_CHARS - 3] + "..."
    kind = type(exc).__name__
    return f"{summary}; {kind}: {detail}" if detail else f"{summary}; {kind}"


def connection_error(engine: Engine, exc: BaseException) -> LakehouseConnectionError:
    """`exc`, raised while opening a connection on `engine`, as a masked project error."""
    if isinstance(exc, LakehouseConnectionError):
        return exc
    redact_exception(exc)
    return LakehouseConnectionError(DatabricksTarget.of(engine), describe(exc))


# -- the backend ---------------------------------------------------------------------------------

# Runs whose schema DDL has run in this process (see DatabricksBackend.prepared).
_PREPARED_RUNS: set[tuple[str, str, str]] = set()


@dataclass
class DatabricksBackend:
    """A warehouse with no multi-statement transactions: batches arrive as staged Parquet files
    (`staging.VolumeStaging`), tables are replaced by `INSERT OVERWRITE`, reads come back as
    Arrow from the connector, and the schema DDL runs once per run and process.

    Without a `VolumeStaging`, batches go as chunked multi-row VALUES into a scratch table
    (`ScratchTables`): the row path, kept for comparison (grid bench --databricks-statements)."""

    engine: Engine
    stager: Stager | None = None
    # A volume the pipeline itself creates (the derived default), as catalog.schema.volume.
    create_volume: str | None = None
    transactional = False

    def __post_init__(self) -> None:
        if self.stager is None:
            self.stager = ScratchTables()

    def open(self) -> Connection:
        """A connection; any failure to open one is a `LakehouseConnectionError` (bounded in
        time, masked, naming host and HTTP path)."""
        failure: Exception | None = None
        try:
            return self.engine.connect()
        except LakehouseConnectionError:
            raise
        except DBAPIError as exc:
            failure = connection_error(self.engine, exc)
        except Exception as exc:
            if not is_transport_error(exc):
                raise
            failure = connection_error(self.engine, exc)
        raise failure  # outside the except blocks: no driver exception chained

    def stage(
        self, conn: Connection, rows: pa.Table, like: Table, columns: list[Column]
    ) -> contextlib.AbstractContextManager[FromClause]:
        assert self.stager is not None  # set in __post_init__
        return self.stager.stage(conn, rows, like, columns)

    def replace(self, conn: Connection, table: Table, query: Select) -> None:
        conn.execute(InsertOverwrite(table, [c.name for c in query.selected_columns], query))

    def fetch_arrow(self, conn: Connection, query: Select) -> pa.Table:
        result = conn.execute(query)
        try:
            cursor: Any = result.cursor  # the Databricks SQL connector's cursor
            return cursor.fetchall_arrow()
        finally:
            result.close()

    def _run_key(self, schema_prefix: str) -> tuple[str, str, str] | None:
        """What identifies one run's DDL: the warehouse, the schemas, the run (None on the row
        path, which has no run)."""
        if not isinstance(self.stager, VolumeStaging):
            return None
        return (str(self.engine.url), schema_prefix, self.stager.run_id)

    def prepared(self, schema_prefix: str) -> bool:
        key = self._run_key(schema_prefix)
        return key is not None and key in _PREPARED_RUNS

    def prepare(self, conn: Connection) -> None:
        if self.create_volume is not None:
            conn.execute(text(f"CREATE VOLUME IF NOT EXISTS {self.create_volume}"))

    def after_prepare(self, schema_prefix: str) -> None:
        if isinstance(self.stager, VolumeStaging):
            self.stager.sweep()
        if (key := self._run_key(schema_prefix)) is not None:
            _PREPARED_RUNS.add(key)


@dataclass
class ScratchTables:
    """The row path: a scratch table in the target's schema filled by multi-row VALUES under
    the parameter cap, dropped after use. About rows / (256 // columns) statements a batch;
    production stages files instead (`staging.VolumeStaging`)."""

    @contextmanager
    def stage(
        self, conn: Connection, rows: pa.Table, like: Table, columns: list[Column]
    ) -> Iterator[FromClause]:
        name = f"{relation_name(like)}_{uuid.uuid4().hex[:12]}"
        relation = Table(name, MetaData(), *columns, schema=like.schema)
        relation.create(conn)
        try:
            insert_chunked(conn, relation, rows)
            yield relation
        finally:
            relation.drop(conn)


def insert_chunked(conn: Connection, table: Table, rows: pa.Table) -> int:
    """Multi-row VALUES under the parameter cap: rows / (256 // columns) statements (executemany
    would be one request per row). Columns with a client-side default count as parameters."""
    rendered = set(rows.column_names) | {c.name for c in table.c if c.default is not None}
    per_statement = max(1, MAX_PARAMS_PER_STATEMENT // max(1, len(rendered)))
    # Slices, not to_batches(): batches never span the table's chunks, which would add short
    # statements at every chunk boundary.
    for start in range(0, rows.num_rows, per_statement):
        conn.execute(insert(table).values(rows.slice(start, per_statement).to_pylist()))
    return rows.num_rows


def databricks_lakehouse(config: DatabricksConfig, run_id: str) -> Lakehouse:
    """The lakehouse on the warehouse `config` names, its batches staged in its volume under
    `run_id` (staged file names carry it, so a retried step finds its own batches)."""
    engine = databricks_engine(config)
    target = DatabricksTarget.of(engine)
    files = sdk_files(f"https://{target.address}", config.token, FILES_RETRY_TIMEOUT_S)
    stager = VolumeStaging(config.staging_volume_path, files, run_id)
    backend = DatabricksBackend(engine, stager, create_volume=config.volume_to_create)
    return Lakehouse(backend, config.schema_prefix)
