"""`grid check-config` (`grid_assets.check_config`, and its wrapper
`scripts/check_databricks_config.py`): every failure detectable without a workspace, offline.

The subprocess scenarios (`grid check-config`, and some through the script, which must print
the same) start together (module fixture) and each test awaits its own. The happy path and the
SQL-permission failures run in process (`run_checks`) against a fake connector and a fake
workspace client, which also shows the scratch table is dropped. The staging volume is checked
against a real Files API server on 127.0.0.1 (`files_api_server`), over HTTPS with a self-signed
certificate the check trusts through `REQUESTS_CA_BUNDLE`: the check's own Files API client
(the pipeline's `staging.sdk_files`) talks to it unchanged, in process and in a subprocess.
"""

from __future__ import annotations

import re
import socket
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grid_assets.check_config import run_checks
from grid_assets_tests.databricks_fakes import (
    HTTP_PATH,
    TOKEN,
    FakeConnection,
    clean_env,
    closed_port,
)
from grid_assets_tests.files_api_server import (
    FILES,
    Certificate,
    FilesServer,
    self_signed_certificate,
    serving,
)
from grid_assets_tests.launch import Launched

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = [sys.executable, str(REPO_ROOT / "scripts" / "check_databricks_config.py")]
GRID = [str(Path(sys.executable).with_name("grid")), "check-config"]
VALID = {
    "DATABRICKS_SERVER_HOSTNAME": "adb-1234567890123456.7.azuredatabricks.net",
    "DATABRICKS_HTTP_PATH": HTTP_PATH,
    "DATABRICKS_TOKEN": TOKEN,
    "DATABRICKS_CATALOG": "main",
}
REMOTE = ("warehouse state (API)", "SELECT 1", "catalog visible", "layer schemas")
VOLUME_CHECKS = ("staging volume", "staging volume write")
SET_VOLUME = "/Volumes/ops/etl/grid_in"
LINE = re.compile(r"^(PASS|FAIL|SKIP|NOT READY|READY|WARN)\b")


class ScriptRun(Launched):
    """A run of the check (`grid check-config` or the script), with its PASS/FAIL/SKIP lines."""

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
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def no_write_volume(certificate: Certificate) -> Iterator[FilesServer]:
    """A Files API whose one volume refuses uploads (the principal lacks WRITE VOLUME)."""
    with serving(FilesServer(volumes={SET_VOLUME}, denied={"PUT"}), certificate) as server:
        yield server


@pytest.fixture(scope="module")
def runs(
    silent_port: int, certificate: Certificate, no_write_volume: FilesServer
) -> dict[str, ScriptRun]:
    bad_shapes = clean_env(
        GRID_ENV="prod",
        DATABRICKS_SERVER_HOSTNAME="https://adb-1.azuredatabricks.net/",
        DATABRICKS_HTTP_PATH="sql/1.0/clusters/0123-456",
        DATABRICKS_TOKEN="abc" + TOKEN[4:],
        DATABRICKS_CATALOG="main-catalog",
        DATABRICKS_SCHEMA_PREFIX="grid prod",
        GRID_DATABRICKS_CONNECT_TIMEOUT_S="soon",
        DATABRICKS_STAGING_VOLUME="/Volumes/main/grid/",
    )
    scenarios: dict[str, tuple[list[str], dict[str, str]]] = {
        "missing": ([*GRID], clean_env(DATABRICKS_TOKEN=TOKEN)),
        "missing_script": ([*SCRIPT], clean_env(DATABRICKS_TOKEN=TOKEN)),
        "empty_token": ([*GRID], clean_env(**{**VALID, "DATABRICKS_TOKEN": ""})),
        "bad_shapes": ([*GRID], bad_shapes),
        "bad_shapes_script": ([*SCRIPT], bad_shapes),
        "bad_option": ([*GRID, "--timeout", "soon"], clean_env()),
        "bad_option_script": ([*SCRIPT, "--timeout", "soon"], clean_env()),
        "unresolvable": (
            [*GRID],
            clean_env(
                **{**VALID, "DATABRICKS_SERVER_HOSTNAME": "grid-warehouse.nonexistent.invalid"},
                GRID_ENV="local",
            ),
        ),
        "refused": (
            [*GRID],
            clean_env(**{**VALID, "DATABRICKS_SERVER_HOSTNAME": f"127.0.0.1:{closed_port()}"}),
        ),
        "silent": (
            [*GRID, "--timeout", "3"],
            clean_env(**{**VALID, "DATABRICKS_SERVER_HOSTNAME": f"127.0.0.1:{silent_port}"}),
        ),
        # The warehouse is not there (the server speaks no SQL), the Files API is.
        "no_write_volume": (
            [*SCRIPT, "--timeout", "5"],
            clean_env(
                **{**VALID, "DATABRICKS_SERVER_HOSTNAME": no_write_volume.address},
                DATABRICKS_STAGING_VOLUME=SET_VOLUME,
                REQUESTS_CA_BUNDLE=str(certificate.cert),
            ),
        ),
    }
    return {name: ScriptRun(args, env) for name, (args, env) in scenarios.items()}


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
    for check in (*REMOTE, "scratch table write", *VOLUME_CHECKS):
        assert run.status(check) == "SKIP", check
    # Unset, the volume is derived from the catalog, which is missing.
    assert run.status("DATABRICKS_STAGING_VOLUME") == "SKIP"
    assert "needs DATABRICKS_CATALOG" in run.line("DATABRICKS_STAGING_VOLUME")


@pytest.mark.parametrize("scenario", ["missing", "bad_shapes"])
def test_the_script_prints_what_grid_check_config_prints(
    runs: dict[str, ScriptRun], scenario: str
) -> None:
    command, script = runs[scenario].wait(), runs[f"{scenario}_script"].wait()
    assert script.args[1].endswith("scripts/check_databricks_config.py")
    assert command.args[1:] == ["check-config"]
    assert_common(script, 30)
    assert (script.returncode, script.stdout, script.stderr) == (
        command.returncode,
        command.stdout,
        command.stderr,
    )


def test_a_bad_option_is_a_usage_error(runs: dict[str, ScriptRun]) -> None:
    for name, program in (
        ("bad_option", "grid check-config"),
        ("bad_option_script", "check_databricks_config.py"),
    ):
        run = runs[name].wait()
        assert run.returncode == 2, run.output
        assert run.stdout == "" and f"Usage: {program} [OPTIONS]" in run.stderr, run.stderr
        assert "Invalid value for '--timeout'" in run.stderr, run.stderr


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
        "DATABRICKS_STAGING_VOLUME",
    ):
        assert run.status(name) == "FAIL", (name, run.stdout)
        assert "hint:" in run.line(name)
    assert "/Volumes/<catalog>/<schema>/<volume>" in run.line("DATABRICKS_STAGING_VOLUME")
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
    assert run.status("staging volume") == "SKIP"  # derived: created once the schemas are
    print(f"grid check-config, silent host, --timeout 3: {run.elapsed:.1f} s")


def test_a_volume_without_write_volume_is_named_by_the_script(
    runs: dict[str, ScriptRun], no_write_volume: FilesServer
) -> None:
    run = runs["no_write_volume"].wait()
    assert_common(run, 60)
    assert run.status("DATABRICKS_STAGING_VOLUME") == "PASS"
    assert SET_VOLUME in run.line("DATABRICKS_STAGING_VOLUME")
    assert run.status("SELECT 1") == "FAIL"  # no warehouse here; the volume does not need one
    assert run.status("staging volume") == "PASS"
    line = run.line("staging volume write")
    assert line.startswith("FAIL") and "PermissionDenied" in line
    assert "GRANT WRITE VOLUME, READ VOLUME ON VOLUME ops.etl.grid_in TO" in line
    uploads = no_write_volume.calls("PUT")
    assert len(uploads) == 1 and uploads[0].startswith(f"{FILES}{SET_VOLUME}/grid/check-")
    assert no_write_volume.files == {}
    assert no_write_volume.calls("DELETE") == []  # nothing was written, nothing to remove
    assert_token_only_in_authorization(no_write_volume)


def assert_token_only_in_authorization(server: FilesServer) -> None:
    assert server.requests
    for request in server.requests:
        assert request["headers"]["Authorization"] == f"Bearer {TOKEN}", request["path"]
        others = {k: v for k, v in request["headers"].items() if k != "Authorization"}
        assert TOKEN not in str(others) and TOKEN not in request["path"]
        assert TOKEN.encode() not in request["body"]


# -- in process: the workspace side faked -------------------------------------------------------


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


@dataclass
class Workspace:
    warehouse: FakeWarehouse
    files: FilesServer
    environ: dict[str, str]

    def run(self, capsys: pytest.CaptureFixture[str], **extra: str) -> tuple[int, str]:
        """`run_checks` on this workspace; its exit status and everything it printed."""
        code = run_checks({**self.environ, **extra}, timeout=5, statement_timeout=120.0)
        captured = capsys.readouterr()
        assert TOKEN not in captured.out + captured.err
        return code, captured.out


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch, certificate: Certificate) -> Iterator[Workspace]:
    """A fake connector and a fake dagster_databricks client; the host is a real Files API
    server (HTTPS, trusted through REQUESTS_CA_BUNDLE) where every volume exists."""
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
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate.cert))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with serving(FilesServer(), certificate) as files:
        environ = {**VALID, "DATABRICKS_SERVER_HOSTNAME": files.address, "GRID_ENV": "production"}
        yield Workspace(warehouse, files, environ)


def test_everything_passes_and_the_scratch_table_is_dropped(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = workspace.warehouse
    code, out = workspace.run(capsys, DATABRICKS_SCHEMA_PREFIX="g_")
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
    # The derived volume is created as the pipeline creates it, after the scratch table went.
    assert warehouse.executed[-2:] == [
        f"DROP TABLE IF EXISTS {scratch}",
        "CREATE VOLUME IF NOT EXISTS main.g_bronze.grid_staging",
    ]
    assert re.search(
        r"^PASS\s+DATABRICKS_STAGING_VOLUME\s+not set: /Volumes/main/g_bronze/", out, re.M
    )
    probe = workspace.files.calls("PUT")
    assert len(probe) == 1 and probe[0].startswith(
        f"{FILES}/Volumes/main/g_bronze/grid_staging/grid/check-"
    )
    assert workspace.files.calls("DELETE") == probe
    assert workspace.files.files == {}


def test_a_permission_failure_skips_what_depends_on_it(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = workspace.warehouse
    warehouse.deny = "CREATE SCHEMA"
    code, out = workspace.run(capsys)
    assert code == 1
    assert re.search(r"^FAIL\s+layer schemas\s+.*INSUFFICIENT_PERMISSIONS.*hint:", out, re.M)
    assert re.search(r"^SKIP\s+scratch table write\s+not run: needs layer schemas", out, re.M)
    assert re.search(r"^PASS\s+SELECT 1\s", out, re.M)
    assert not any(s.startswith("CREATE TABLE") for s in warehouse.executed)
    # The derived volume lives in the Bronze schema: nothing to create it in, nothing to write.
    assert re.search(r"^SKIP\s+staging volume\s+not run: needs layer schemas", out, re.M)
    assert re.search(r"^SKIP\s+staging volume write\s+not run: needs staging volume$", out, re.M)
    assert workspace.files.requests == []


# -- the staging volume, against a real Files API server ----------------------------------------


def test_a_writable_staging_volume_passes_and_keeps_nothing(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.files.volumes = {SET_VOLUME}
    code, out = workspace.run(capsys, DATABRICKS_STAGING_VOLUME=SET_VOLUME)
    assert code == 0, out
    assert re.search(rf"^PASS\s+staging volume\s+{SET_VOLUME} exists$", out, re.M)
    write = next(line for line in out.splitlines() if "staging volume write" in line)
    assert write.startswith("PASS") and "uploaded, listed, read and removed" in write
    # A set volume is used as is: never created.
    assert not any("VOLUME" in s for s in workspace.warehouse.executed)
    (probe,) = [path.removeprefix(FILES) for path in workspace.files.calls("PUT")]
    assert re.fullmatch(rf"{SET_VOLUME}/grid/check-[0-9a-f]{{12}}\.txt", probe)
    assert probe in write
    assert [(r["method"], r["path"].split("?")[0]) for r in workspace.files.requests] == [
        ("HEAD", f"/api/2.0/fs/directories{SET_VOLUME}"),
        ("PUT", f"{FILES}{probe}"),
        ("GET", f"/api/2.0/fs/directories{SET_VOLUME}/grid"),
        ("GET", f"{FILES}{probe}"),
        ("DELETE", f"{FILES}{probe}"),
    ]
    assert workspace.files.files == {}
    assert_token_only_in_authorization(workspace.files)


def test_an_upload_without_write_volume_names_the_grant_and_the_volume(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.files.denied = {"PUT"}
    code, out = workspace.run(capsys, DATABRICKS_STAGING_VOLUME=SET_VOLUME)
    assert code == 1
    assert re.search(r"^PASS\s+staging volume\s", out, re.M)
    line = next(line for line in out.splitlines() if "staging volume write" in line)
    assert line.startswith("FAIL") and "upload: PermissionDenied" in line
    assert "GRANT WRITE VOLUME, READ VOLUME ON VOLUME ops.etl.grid_in TO `<principal>`" in line
    assert "USE SCHEMA ON SCHEMA ops.etl" in line and "Config:" not in line
    assert out.splitlines()[-1].endswith("did not pass: staging volume write")
    assert workspace.files.files == {}


def test_a_read_refusal_names_read_volume_and_the_probe_is_still_removed(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.files.denied = {"GET"}  # listing and downloading: READ VOLUME
    code, out = workspace.run(capsys, DATABRICKS_STAGING_VOLUME=SET_VOLUME)
    assert code == 1
    line = next(line for line in out.splitlines() if "staging volume write" in line)
    assert line.startswith("FAIL  staging volume write") and "list: PermissionDenied" in line
    assert "GRANT READ VOLUME ON VOLUME ops.etl.grid_in" in line and "parquet." in line
    (probe,) = workspace.files.calls("PUT")
    assert workspace.files.calls("DELETE") == [probe]
    assert workspace.files.files == {}


def test_a_missing_staging_volume_fails_with_a_hint(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.files.volumes = {"/Volumes/ops/etl/other"}
    code, out = workspace.run(capsys, DATABRICKS_STAGING_VOLUME=SET_VOLUME)
    assert code == 1
    line = next(line for line in out.splitlines() if re.match(r"^\w+\s+staging volume\s", line))
    assert line.startswith("FAIL") and "NotFound" in line
    assert "create the volume (CREATE VOLUME ops.etl.grid_in)" in line
    assert "unset DATABRICKS_STAGING_VOLUME" in line
    assert "USE CATALOG ON CATALOG ops and USE SCHEMA ON SCHEMA ops.etl" in line
    assert re.search(r"^SKIP\s+staging volume write\s+not run: needs staging volume", out, re.M)
    assert workspace.files.calls("PUT") == []


def test_a_derived_volume_that_cannot_be_created_names_create_volume(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace.warehouse.deny = "CREATE VOLUME"
    code, out = workspace.run(capsys)
    assert code == 1
    line = next(line for line in out.splitlines() if re.match(r"^\w+\s+staging volume\s", line))
    assert line.startswith("FAIL") and "INSUFFICIENT_PERMISSIONS" in line
    assert "GRANT CREATE VOLUME ON SCHEMA main.bronze TO `<principal>`" in line
    assert "set DATABRICKS_STAGING_VOLUME" in line
    assert re.search(r"^PASS\s+scratch table write\s", out, re.M)
    assert workspace.files.requests == []
