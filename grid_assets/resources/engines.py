"""Engine factories: one SQLAlchemy engine per process and configuration, created on first use."""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.pool import NullPool

# Bounded so an unreachable warehouse fails in seconds, not after the connector's 900 s default.
DEFAULT_CONNECT_TIMEOUT_S = 30
POOL_RECYCLE_S = 1800


@functools.cache
def duckdb_engine(path: str) -> Engine:
    """The embedded engine. NullPool on purpose: DuckDB's file lock belongs to whichever process
    holds an open connection, so connections are closed after each unit of work and the Dagster UI,
    a sensor and a run can take turns on the same file. Opening one takes about a millisecond."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"duckdb:///{path}", poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _utc_session(dbapi_connection, _record) -> None:  # noqa: ANN001
        # Instants come back tz-aware in UTC whatever the host's zone, and ::DATE is the UTC date.
        dbapi_connection.execute("SET TimeZone = 'UTC'")

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
) -> Engine:
    """A pooled engine on a Databricks SQL warehouse; `create_engine` itself does not connect."""
    url = URL.create(
        "databricks",
        username="token",
        password=access_token,
        host=server_hostname,
        query={"http_path": http_path, "catalog": catalog},
    )
    return create_engine(
        url,
        pool_size=5,
        max_overflow=5,
        pool_pre_ping=True,
        pool_recycle=POOL_RECYCLE_S,
        hide_parameters=True,
        connect_args={
            "_retry_stop_after_attempts_count": 3,
            "_retry_stop_after_attempts_duration": connect_timeout_s,
            "_socket_timeout": connect_timeout_s,
            "enable_telemetry": False,
        },
    )
