"""Engine factories: one SQLAlchemy engine per process and configuration, created on first use.

Databricks connections are bounded and never leak the token:

- Opening a connection takes at most `connect_timeout_s` seconds (`DEFAULT_CONNECT_TIMEOUT_S`,
  30 s), retries included. The connector's own retry budget is set a little under it and the
  attempt runs in a helper thread that the caller stops waiting for at the deadline, so even a
  host that accepts TCP and never answers cannot hold a run longer. A refused connection or a
  host name that does not resolve fails after about 14 s (3 attempts, backoff 2 + 4 + 8 s);
  measured: 14.2 s refused, 15.2 s unresolvable, 30.0 s for a silent host. A stopped classic
  warehouse can take minutes to start: raise the budget with
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
  `repr(engine)` and SQLAlchemy's messages cannot show it. An empty token is refused here: the
  connector would otherwise fall back to an interactive browser login and hang.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine.interfaces import ExceptionContext
from sqlalchemy.pool import NullPool

from grid_assets.logging_redaction import (
    install_redaction,
    redact,
    redact_exception,
    register_secret,
)
from grid_assets.settings import (
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DUCKDB_MEMORY_LIMIT_VAR,
    ConfigurationError,
    hostname_problem,
    memory_limit_problem,
)

# Total seconds allowed to open one warehouse connection, every retry included.
DEFAULT_CONNECT_TIMEOUT_S = 30
# Per-request socket timeout once connected: bounds a dead connection without cutting short the
# responses of slow statements (the connector's default is 900 s).
SOCKET_TIMEOUT_S = 120
# Attempts per request in the connector's retry policy (its default is 30).
RETRY_ATTEMPTS = 3
DEFAULT_PORT = 443
POOL_RECYCLE_S = 1800
CONNECT_THREAD_NAME = "grid-databricks-connect"
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


class LakehouseMemoryError(RuntimeError):
    """A DuckDB statement needed more than the configured memory limit, spilling included."""

    def __init__(self, memory_limit: str, detail: str) -> None:
        first_line = detail.strip().splitlines()[0] if detail.strip() else "out of memory"
        super().__init__(
            f"DuckDB ran out of memory under its {memory_limit} limit ({first_line}). "
            f"Raise {DUCKDB_MEMORY_LIMIT_VAR} (for example to 1GB) and run again; every step "
            "is idempotent, so nothing is lost or doubled."
        )


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
        value = server_hostname.strip()
        if problem := hostname_problem(value):
            raise ConfigurationError(problem)
        host, _, port = value.partition(":")
        return cls(host, int(port) if port else DEFAULT_PORT, http_path.strip())

    @classmethod
    def of(cls, engine: Engine) -> DatabricksTarget:
        url = engine.url
        return cls(str(url.host), url.port or DEFAULT_PORT, str(url.query.get("http_path", "")))


@functools.cache
def duckdb_engine(path: str, memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT) -> Engine:
    """The embedded engine. NullPool on purpose: DuckDB's file lock belongs to whichever process
    holds an open connection, so connections are closed after each unit of work and the Dagster UI,
    a sensor and a run can take turns on the same file. Opening one takes about a millisecond.

    `memory_limit` caps DuckDB's buffer manager (`GRID_DUCKDB_MEMORY_LIMIT`): without it DuckDB
    keeps every table block it has read, up to 80% of the machine, so memory grows with the
    lakehouse rather than with the batch."""
    if problem := memory_limit_problem(memory_limit):
        raise ConfigurationError(problem)  # it is spliced into SET below: never unchecked
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"duckdb:///{path}", poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _session(dbapi_connection, _record) -> None:
        # Instants come back tz-aware in UTC whatever the host's zone, and ::DATE is the UTC date.
        dbapi_connection.execute("SET TimeZone = 'UTC'")
        dbapi_connection.execute(f"SET memory_limit = '{memory_limit.strip()}'")

    @event.listens_for(engine, "handle_error")
    def _name_the_limit(context: ExceptionContext) -> BaseException | None:
        if isinstance(context.original_exception, duckdb.OutOfMemoryException):
            return LakehouseMemoryError(memory_limit.strip(), str(context.original_exception))
        return None

    # duckdb-engine declares no native Decimal support, which makes SQLAlchemy round-trip DECIMAL
    # through float; DuckDB returns and accepts exact Decimals, so say so.
    engine.dialect.supports_native_decimal = True
    return engine


@functools.cache
def databricks_engine(
    server_hostname: str,
    http_path: str,
    access_token: str,
    catalog: str,
    connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S,
    *,
    dbapi: ModuleType | None = None,
) -> Engine:
    """A pooled engine on a Databricks SQL warehouse; `create_engine` itself does not connect.

    `dbapi` replaces the `databricks.sql` module (tests use a recording fake)."""
    token = (access_token or "").strip()
    if not token:
        raise ConfigurationError("DATABRICKS_TOKEN is empty; refusing to connect without a token.")
    if not http_path or not http_path.strip():
        raise ConfigurationError("DATABRICKS_HTTP_PATH is empty.")
    if connect_timeout_s <= 0:
        raise ConfigurationError("The connect timeout must be a positive number of seconds.")
    register_secret(token)
    install_redaction()
    _quiet_connect_attempts()
    target = DatabricksTarget.parse(server_hostname, http_path)
    url = URL.create(
        "databricks",
        username="token",  # no password: the token goes in through connect_args
        host=target.host,
        port=target.port,
        query={"http_path": target.http_path, "catalog": catalog},
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


def connect_within(connect, target: DatabricksTarget, timeout_s: float):
    """Run `connect()` in a helper thread and wait at most `timeout_s` seconds for it.

    Any failure, and the deadline, raise one `LakehouseConnectionError` with no chained
    exception. A connection that arrives after the deadline is closed."""
    outcome: dict[str, Any] = {}
    lock = threading.Lock()
    finished = threading.Event()

    def attempt() -> None:
        try:
            connection = connect()
        except BaseException as exc:  # reported to the waiting thread
            with lock:
                outcome["error"] = exc
        else:
            with lock:
                if outcome.get("abandoned"):
                    _close_quietly(connection)
                else:
                    outcome["connection"] = connection
        finally:
            finished.set()

    started = time.monotonic()
    worker = threading.Thread(target=attempt, name=CONNECT_THREAD_NAME, daemon=True)
    worker.start()
    finished.wait(timeout_s)
    elapsed = time.monotonic() - started
    with lock:
        if "connection" in outcome:
            _ATTEMPT_NOTES.pop(worker.ident or 0, None)
            return outcome["connection"]
        error = outcome.get("error")
        if error is None:
            outcome["abandoned"] = True
    note = " ".join(_ATTEMPT_NOTES.pop(worker.ident or 0, [])) or None
    if isinstance(error, LakehouseConnectionError):
        failure = error
    else:
        if error is not None:
            redact_exception(error)
        failure = LakehouseConnectionError(target, describe(error, note, timeout_s), elapsed)
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
