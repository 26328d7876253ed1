"""Production fails fast: missing secrets at load time, an unreachable warehouse within a bound.

The subprocess scenarios start together (module fixture) and are awaited by the tests, so the
slow imports overlap. `dagster definitions validate` loads the code location exactly as
`dagster dev` and the daemon do (same loader, same `@dg.definitions` function), so it stands in
for `dagster dev` here.
"""

from __future__ import annotations

import re
import socket
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from databricks.sql import exc as dbx
from sqlalchemy import text

from grid_assets.config import (
    DEFAULT_CONNECT_TIMEOUT_S,
    REQUIRED_DATABRICKS_VARS,
    ConfigurationError,
    DatabricksConfig,
)
from grid_assets.lakehouse.core import Lakehouse, ping
from grid_assets.lakehouse.databricks import (
    DatabricksBackend,
    LakehouseConnectionError,
    databricks_engine,
)
from grid_assets_tests.databricks_fakes import (
    HTTP_PATH,
    TOKEN,
    FakeConnection,
    clean_env,
    closed_port,
    production_resource,
    warehouse_config,
)
from grid_assets_tests.launch import Launched

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FAIL_FAST_S = 60  # generous for a loaded 2-core CI box; measured figures are printed


def production_env(**overrides: str | None) -> dict[str, str]:
    values: dict[str, str | None] = {
        "GRID_ENV": "production",
        "DATABRICKS_SERVER_HOSTNAME": "adb-1234567890123456.7.azuredatabricks.net",
        "DATABRICKS_HTTP_PATH": HTTP_PATH,
        "DATABRICKS_TOKEN": TOKEN,
        "DATABRICKS_CATALOG": "main",
        **overrides,
    }
    return clean_env(**{k: v for k, v in values.items() if v is not None})


VALIDATE = [str(BIN / "dagster"), "definitions", "validate", "-m", "grid_assets.definitions"]
GRID_RUN = [str(BIN / "grid"), "run"]


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Launched]]:
    landing = tmp_path_factory.mktemp("landing")
    port = closed_port()
    scenarios = {
        # GRID_ENV=production, token set, HTTP path and catalog missing.
        "validate_missing": (
            VALIDATE,
            production_env(DATABRICKS_HTTP_PATH=None, DATABRICKS_CATALOG=None),
        ),
        # GRID_ENV unset, only the token: production, three variables missing.
        "run_partial": (GRID_RUN, clean_env(DATABRICKS_TOKEN=TOKEN)),
        "run_missing": (
            GRID_RUN,
            production_env(DATABRICKS_SERVER_HOSTNAME=None, DATABRICKS_CATALOG=""),
        ),
        "run_bad_grid_env": (GRID_RUN, production_env(GRID_ENV="staging")),
        # Everything set, nothing listening: bounded by the default connect timeout.
        "run_refused": (
            GRID_RUN,
            production_env(
                DATABRICKS_SERVER_HOSTNAME=f"127.0.0.1:{port}", GRID_LANDING_DIR=str(landing)
            ),
        ),
    }
    yield {name: Launched(args, env) for name, (args, env) in scenarios.items()}


def assert_names_every_missing(result: Launched, missing: list[str]) -> None:
    assert result.returncode != 0, result.output
    for name in missing:
        assert name in result.output, (name, result.output)
    for name in set(REQUIRED_DATABRICKS_VARS) - set(missing):
        assert f"{name}," not in result.output and f"{name}." not in result.output
    assert TOKEN not in result.output
    assert result.elapsed < FAIL_FAST_S, result.elapsed
    print(f"{result.args[0]}: exit {result.returncode} in {result.elapsed:.1f} s")


def test_dagster_load_fails_fast_naming_every_missing_variable(
    launched: dict[str, Launched],
) -> None:
    result = launched["validate_missing"].wait()
    assert_names_every_missing(result, ["DATABRICKS_HTTP_PATH", "DATABRICKS_CATALOG"])
    assert "ConfigurationError" in result.output
    assert result.output.count("missing or empty") == 1


def test_a_partial_config_is_production_not_local(launched: dict[str, Launched]) -> None:
    result = launched["run_partial"].wait()
    missing = ["DATABRICKS_SERVER_HOSTNAME", "DATABRICKS_HTTP_PATH", "DATABRICKS_CATALOG"]
    assert_names_every_missing(result, missing)
    assert result.returncode == 2
    assert "local lakehouse" not in result.output


def test_grid_run_fails_fast_with_one_message(launched: dict[str, Launched]) -> None:
    result = launched["run_missing"].wait()
    assert_names_every_missing(result, ["DATABRICKS_SERVER_HOSTNAME", "DATABRICKS_CATALOG"])
    assert result.returncode == 2
    assert result.output.count("Configuration error") == 1
    assert "Traceback" not in result.output


def test_grid_run_rejects_an_unknown_grid_env(launched: dict[str, Launched]) -> None:
    result = launched["run_bad_grid_env"].wait()
    assert result.returncode == 2, result.output
    assert "GRID_ENV must be 'local' or 'production'" in result.output
    assert TOKEN not in result.output


def test_grid_run_against_a_refused_port_fails_within_the_default_bound(
    launched: dict[str, Launched],
) -> None:
    result = launched["run_refused"].wait()
    assert result.returncode == 3, result.output
    assert result.output.count("Cannot connect to the Databricks SQL warehouse") == 1
    assert "connection refused" in result.output
    assert "127.0.0.1:" in result.output and HTTP_PATH in result.output
    assert TOKEN not in result.output
    assert "Traceback" not in result.output
    # The error reports how long the connection attempt took: within the default bound.
    match = re.search(r"after (\d+\.\d) s", result.output)
    assert match, result.output
    connect_s = float(match[1])
    assert connect_s <= DEFAULT_CONNECT_TIMEOUT_S + 1, connect_s
    # Whole command: that bound plus the CLI's imports (5-25 s on a loaded 2-core box).
    assert result.elapsed < DEFAULT_CONNECT_TIMEOUT_S + 45, result.elapsed
    print(
        f"grid run, refused: connect gave up after {connect_s} s, exit 3 at {result.elapsed:.1f} s"
    )


# -- in process ---------------------------------------------------------------------------------


def assert_clean_connection_error(exc: LakehouseConnectionError, host: str) -> None:
    message = str(exc)
    assert host in message and HTTP_PATH in message
    assert TOKEN not in message
    assert exc.__cause__ is None and exc.__context__ is None
    assert "\n" not in message


@pytest.fixture
def recorded_connects(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Replaces the connector's `connect` and records every call (none should happen)."""
    import databricks.sql

    calls: list[dict] = []

    def connect(*args, **kwargs):
        calls.append(kwargs)
        raise AssertionError("the connector must not be reached")

    monkeypatch.setattr(databricks.sql, "connect", connect)
    return calls


@pytest.mark.parametrize("token", ["", "   ", None])
def test_an_empty_token_never_reaches_the_connector(
    recorded_connects: list[dict], token: str | None
) -> None:
    resource = production_resource("adb-1.azuredatabricks.net", token=token)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="DATABRICKS_TOKEN"):
        resource.get_lakehouse()
    # The model engines are built from refuses it too, so no engine can exist without one.
    with pytest.raises(ValueError, match="access_token"):
        DatabricksConfig(
            server_hostname="adb-1.azuredatabricks.net",
            http_path=HTTP_PATH,
            access_token=token or "",
            catalog="main",
        )
    assert recorded_connects == []


def test_refused_connection_is_one_bounded_error() -> None:
    host = f"127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(LakehouseConnectionError) as caught:
        ping(production_resource(host, timeout=5).get_lakehouse())
    elapsed = time.monotonic() - started
    assert_clean_connection_error(caught.value, host)
    assert "connection refused" in str(caught.value)
    assert elapsed < 5 + 2, elapsed
    print(f"refused, 5 s budget: {elapsed:.1f} s")


def test_unresolvable_host_is_one_bounded_error() -> None:
    host = "grid-warehouse.nonexistent.invalid"
    started = time.monotonic()
    with pytest.raises(LakehouseConnectionError) as caught:
        ping(production_resource(host, timeout=5).get_lakehouse())
    elapsed = time.monotonic() - started
    assert_clean_connection_error(caught.value, host)
    assert "does not resolve" in str(caught.value)
    assert elapsed < 5 + 2, elapsed


def test_a_host_that_never_answers_is_cut_off_at_the_deadline() -> None:
    """TCP accepted, TLS never answered: the connector alone would wait for its socket timeout;
    the helper thread's deadline ends the attempt at the budget."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        host = f"127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        with pytest.raises(LakehouseConnectionError) as caught:
            ping(production_resource(host, timeout=3).get_lakehouse())
        elapsed = time.monotonic() - started
    assert_clean_connection_error(caught.value, host)
    assert "no answer within the 3 s connect timeout" in str(caught.value)
    assert 2.5 < elapsed < 3 + 2, elapsed
    print(f"silent host, 3 s budget: {elapsed:.1f} s")


def fake_dbapi(connect) -> types.ModuleType:
    module = types.ModuleType("fake_databricks_sql")
    module.connect = connect  # type: ignore[attr-defined]
    module.paramstyle = "named"  # type: ignore[attr-defined]
    for name in ("Error", "DatabaseError", "OperationalError", "ProgrammingError"):
        setattr(module, name, getattr(dbx, name))
    return module


def test_a_bare_urllib3_error_from_the_connector_is_wrapped() -> None:
    def connect(**kwargs):
        raise urllib3.exceptions.MaxRetryError(
            None,  # type: ignore[arg-type]
            HTTP_PATH,
            urllib3.exceptions.NewConnectionError(None, "[Errno 111] Connection refused"),  # type: ignore[arg-type]
        )

    engine = databricks_engine(
        warehouse_config("adb-9.azuredatabricks.net"), dbapi=fake_dbapi(connect)
    )
    lakehouse = Lakehouse(DatabricksBackend(engine))
    with pytest.raises(LakehouseConnectionError) as caught, lakehouse.connect():
        pass
    assert_clean_connection_error(caught.value, "adb-9.azuredatabricks.net")
    assert "connection refused" in str(caught.value)


def test_a_transport_error_during_a_statement_is_wrapped() -> None:
    class Cursor:
        description = None
        rowcount = -1

        def execute(self, operation, parameters=None):
            raise urllib3.exceptions.MaxRetryError(None, HTTP_PATH, None)  # type: ignore[arg-type]

        def close(self) -> None:
            pass

    class Connection(FakeConnection):
        def cursor(self) -> Cursor:
            return Cursor()

    engine = databricks_engine(
        warehouse_config("adb-8.azuredatabricks.net"),
        dbapi=fake_dbapi(lambda **kwargs: Connection()),
    )
    engine.pool._pre_ping = False  # the fake fails every statement, the ping included
    with pytest.raises(LakehouseConnectionError) as caught, engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert "adb-8.azuredatabricks.net" in str(caught.value) and TOKEN not in str(caught.value)
