"""`scripts/check_databricks_config.py`: every failure detectable without a workspace, offline.

The subprocess scenarios start together (module fixture) and each test awaits its own. The
happy path and the SQL-permission failures run in process against a fake connector and a fake
workspace client, which also shows the scratch table is dropped.
"""

from __future__ import annotations

import importlib.util
import re
import socket
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grid_assets_tests.databricks_fakes import (
    HTTP_PATH,
    TOKEN,
    FakeConnection,
    clean_env,
    closed_port,
)
from grid_assets_tests.launch import Launched

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "check_databricks_config.py"
VALID = {
    "DATABRICKS_SERVER_HOSTNAME": "adb-1234567890123456.7.azuredatabricks.net",
    "DATABRICKS_HTTP_PATH": HTTP_PATH,
    "DATABRICKS_TOKEN": TOKEN,
    "DATABRICKS_CATALOG": "main",
}
REMOTE = ("warehouse state (API)", "SELECT 1", "catalog visible", "layer schemas")
LINE = re.compile(r"^(PASS|FAIL|SKIP|NOT READY|READY|WARN)\b")


class ScriptRun(Launched):
    """A run of the check script, with its PASS/FAIL/SKIP lines."""

    def wait(self, timeout: float = 180) -> ScriptRun:
        super().wait(timeout)
        return self

    def status(self, check: str) -> str | None:
        for line in self.stdout.splitlines():
            match = re.match(r"^(PASS|FAIL|SKIP)\s+(.+?)\s{2,}", line + "  ")
            if match and match[2] == check:
                return match[1]
        return None

    def line(self, check: str) -> str:
        return next(
            line
            for line in self.stdout.splitlines()
            if re.match(rf"^\w+\s+{re.escape(check)}\s", line)
        )


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """Accepts TCP connections (kernel backlog) and never answers: a hung warehouse."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        yield silent.getsockname()[1]


@pytest.fixture(scope="module")
def runs(silent_port: int) -> dict[str, ScriptRun]:
    scenarios: dict[str, tuple[list[str], dict[str, str]]] = {
        "missing": ([], clean_env(DATABRICKS_TOKEN=TOKEN)),
        "empty_token": ([], clean_env(**{**VALID, "DATABRICKS_TOKEN": ""})),
        "bad_shapes": (
            [],
            clean_env(
                GRID_ENV="prod",
                DATABRICKS_SERVER_HOSTNAME="https://adb-1.azuredatabricks.net/",
                DATABRICKS_HTTP_PATH="sql/1.0/clusters/0123-456",
                DATABRICKS_TOKEN="abc" + TOKEN[4:],
                DATABRICKS_CATALOG="main-catalog",
                DATABRICKS_SCHEMA_PREFIX="grid prod",
                GRID_DATABRICKS_CONNECT_TIMEOUT_S="soon",
            ),
        ),
        "unresolvable": (
            [],
            clean_env(
                **{**VALID, "DATABRICKS_SERVER_HOSTNAME": "grid-warehouse.nonexistent.invalid"},
                GRID_ENV="local",
            ),
        ),
        "refused": (
            [],
            clean_env(**{**VALID, "DATABRICKS_SERVER_HOSTNAME": f"127.0.0.1:{closed_port()}"}),
        ),
        "silent": (
            ["--timeout", "3"],
            clean_env(**{**VALID, "DATABRICKS_SERVER_HOSTNAME": f"127.0.0.1:{silent_port}"}),
        ),
    }
    return {
        name: ScriptRun([sys.executable, str(SCRIPT), *args], env)
        for name, (args, env) in scenarios.items()
    }


def assert_common(run: Launched, bound_s: float) -> None:
    assert run.returncode == 1, run.stdout + run.stderr
    assert TOKEN not in run.stdout + run.stderr
    assert TOKEN[4:] not in run.stdout + run.stderr
    assert run.stderr == "", run.stderr
    lines = run.stdout.splitlines()
    assert lines and all(LINE.match(line) for line in lines), run.stdout
    assert lines[-1].startswith("NOT READY")
    assert run.elapsed < bound_s, run.elapsed


def test_missing_variables(runs: dict[str, ScriptRun]) -> None:
    run = runs["missing"].wait()
    assert_common(run, 30)
    for name in ("DATABRICKS_SERVER_HOSTNAME", "DATABRICKS_HTTP_PATH", "DATABRICKS_CATALOG"):
        assert run.status(name) == "FAIL"
        assert "missing" in run.line(name)
    assert run.status("DATABRICKS_TOKEN") == "PASS"
    assert run.status("GRID_ENV") == "PASS"  # unset + DATABRICKS_* set = production
    assert run.status("host resolves") == "SKIP"
    for check in (*REMOTE, "scratch table write"):
        assert run.status(check) == "SKIP", check


def test_empty_token(runs: dict[str, ScriptRun]) -> None:
    run = runs["empty_token"].wait()
    assert_common(run, 30)
    assert run.status("DATABRICKS_TOKEN") == "FAIL" and "empty" in run.line("DATABRICKS_TOKEN")
    # DNS and the port do not need the token; everything that authenticates is skipped.
    assert run.status("SELECT 1") == "SKIP" and run.status("warehouse state (API)") == "SKIP"
    assert "DATABRICKS_TOKEN" in run.line("SELECT 1")


def test_bad_shapes(runs: dict[str, ScriptRun]) -> None:
    run = runs["bad_shapes"].wait()
    assert_common(run, 30)
    for name in (
        "GRID_ENV",
        "DATABRICKS_SERVER_HOSTNAME",
        "DATABRICKS_HTTP_PATH",
        "DATABRICKS_TOKEN",
        "DATABRICKS_CATALOG",
        "DATABRICKS_SCHEMA_PREFIX",
        "GRID_DATABRICKS_CONNECT_TIMEOUT_S",
    ):
        assert run.status(name) == "FAIL", (name, run.stdout)
        assert "hint:" in run.line(name)
    assert "drop the scheme" in run.line("DATABRICKS_SERVER_HOSTNAME")
    assert "/sql/1.0/warehouses/" in run.line("DATABRICKS_HTTP_PATH")
    assert "dapi followed by 32 hex digits" in run.line("DATABRICKS_TOKEN")
    assert run.status("host resolves") == "SKIP"


def test_unresolvable_host(runs: dict[str, ScriptRun]) -> None:
    run = runs["unresolvable"].wait()
    assert_common(run, 30)
    assert run.status("GRID_ENV") == "FAIL" and "DuckDB" in run.line("GRID_ENV")
    assert run.status("DATABRICKS_SERVER_HOSTNAME") == "PASS"
    assert run.status("host resolves") == "FAIL"
    assert "does not resolve" in run.line("host resolves")
    for check in ("port reachable", *REMOTE):
        assert run.status(check) == "SKIP", check


def test_refused_connection(runs: dict[str, ScriptRun]) -> None:
    run = runs["refused"].wait()
    assert_common(run, 30)
    assert run.status("host resolves") == "PASS"
    assert run.status("port reachable") == "FAIL"
    assert "refused the connection" in run.line("port reachable")
    for check in REMOTE:
        assert run.status(check) == "SKIP", check


def test_a_host_that_never_answers_is_bounded(runs: dict[str, ScriptRun]) -> None:
    run = runs["silent"].wait()
    # 3 s connect bound; the API lookup gets 3 s after the client's import (~8 s, pyspark).
    assert_common(run, 3 + 3 + 30)
    assert run.status("port reachable") == "PASS"
    assert run.status("SELECT 1") == "FAIL"
    assert "no answer within the 3 s connect timeout" in run.line("SELECT 1")
    assert run.status("warehouse state (API)") == "FAIL"
    assert run.status("catalog visible") == "SKIP"
    print(f"check script, silent host, --timeout 3: {run.elapsed:.1f} s")


# -- in process: the workspace side faked -------------------------------------------------------


def load_script() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("check_databricks_config", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeWarehouse:
    executed: list[str] = field(default_factory=list)
    deny: str | None = None  # a statement prefix that fails with a permission error

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        assert kwargs["access_token"] == TOKEN
        return WarehouseConnection(self)


class FakeCursor:
    def __init__(self, warehouse: FakeWarehouse) -> None:
        self.warehouse = warehouse
        self.description: list[tuple] | None = None
        self.rowcount = -1
        self.rows: list[tuple] = []

    def execute(self, operation: str, parameters: Any = None) -> None:
        from databricks.sql import exc as dbx

        self.warehouse.executed.append(operation)
        if self.warehouse.deny and operation.startswith(self.warehouse.deny):
            raise dbx.ServerOperationError(
                f"[INSUFFICIENT_PERMISSIONS] User does not have CREATE SCHEMA (token {TOKEN})"
            )
        upper = operation.upper()
        if upper == "SELECT 1" or upper.startswith("SELECT COUNT(*)"):
            self.rows = [(1,)]
        elif upper.startswith("SHOW CATALOGS"):
            self.rows = [("main",)]
        else:
            self.rows = []
        self.description = [("c", "string", None, None, None, None, None)] if self.rows else None

    def fetchall(self) -> list[tuple]:
        rows, self.rows = self.rows, []
        return rows

    def fetchone(self) -> tuple | None:
        return self.rows.pop(0) if self.rows else None

    def fetchmany(self, size: int | None = None) -> list[tuple]:
        return self.fetchall()

    def close(self) -> None:
        pass


class WarehouseConnection(FakeConnection):
    def __init__(self, warehouse: FakeWarehouse) -> None:
        self.warehouse = warehouse

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.warehouse)


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeWarehouse, dict[str, str]]]:
    """A listening local port, a fake connector and a fake dagster_databricks client."""
    import databricks.sql

    warehouse = FakeWarehouse()
    monkeypatch.setattr(databricks.sql, "connect", warehouse.connect)

    class FakeDatabricksClient:
        def __init__(self, host: str, token: str) -> None:
            assert host.startswith("https://127.0.0.1:") and token == TOKEN
            # Shaped like databricks.sdk.service.sql.GetWarehouseResponse (enums have .value).
            get = lambda warehouse_id: types.SimpleNamespace(  # noqa: E731
                id=warehouse_id,
                name="grid-warehouse",
                state=types.SimpleNamespace(value="RUNNING"),
                enable_serverless_compute=True,
                warehouse_type=types.SimpleNamespace(value="PRO"),
            )
            self.workspace_client = types.SimpleNamespace(warehouses=types.SimpleNamespace(get=get))

    fake_module = types.ModuleType("dagster_databricks")
    fake_module.DatabricksClient = FakeDatabricksClient  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dagster_databricks", fake_module)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(16)
        host = f"127.0.0.1:{listening.getsockname()[1]}"
        yield warehouse, {**VALID, "DATABRICKS_SERVER_HOSTNAME": host, "GRID_ENV": "production"}


def test_everything_passes_and_the_scratch_table_is_dropped(
    workspace: tuple[FakeWarehouse, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse, environ = workspace
    code = load_script().main(["--timeout", "5"], {**environ, "DATABRICKS_SCHEMA_PREFIX": "g_"})
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[-1] == "READY: every check passed."
    assert "FAIL" not in out and "SKIP" not in out
    assert "grid-warehouse (serverless): RUNNING" in out
    schemas = [s for s in warehouse.executed if s.startswith("CREATE SCHEMA")]
    assert schemas == [
        f"CREATE SCHEMA IF NOT EXISTS `main`.`g_{layer}`" for layer in ("bronze", "silver", "gold")
    ]
    created = next(s for s in warehouse.executed if s.startswith("CREATE TABLE"))
    scratch = created.split()[2]
    assert scratch.startswith("`main`.`g_bronze`.`grid_config_check_")
    assert warehouse.executed[-1] == f"DROP TABLE IF EXISTS {scratch}"
    assert TOKEN not in out


def test_a_permission_failure_skips_what_depends_on_it(
    workspace: tuple[FakeWarehouse, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse, environ = workspace
    warehouse.deny = "CREATE SCHEMA"
    code = load_script().main(["--timeout", "5"], environ)
    out = capsys.readouterr().out
    assert code == 1
    assert re.search(r"^FAIL\s+layer schemas\s+.*INSUFFICIENT_PERMISSIONS.*hint:", out, re.M)
    assert re.search(r"^SKIP\s+scratch table write\s+not run: needs layer schemas", out, re.M)
    assert re.search(r"^PASS\s+SELECT 1\s", out, re.M)
    assert not any(s.startswith("CREATE TABLE") for s in warehouse.executed)
    assert TOKEN not in out
