"""No secret value in log records, exception messages, tracebacks, Dagster events or CLI output.

Each failure path is driven for real: missing variables, a host that does not resolve, a refused
connection, an authentication error raised by the driver (the connector's own exception class,
from a fake `databricks.sql.connect`, with the token in its message and context) and a failing
statement whose error echoes a URL with the token in it. The token must appear nowhere: not in
`str(exc)`, not in `traceback.format_exception`, not in any captured log record, not in the
serialized Dagster events of a run, not in the UI's resource config, not in a subprocess's
stdout or stderr.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
from databricks.sql import exc as dbx
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from grid_assets import run_report
from grid_assets.config import ConfigurationError
from grid_assets.lakehouse.core import ping
from grid_assets.lakehouse.databricks import LakehouseConnectionError
from grid_assets.logging_redaction import (
    MASK,
    install_redaction,
    redact,
    redact_exception,
    register_secret,
)
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.settings import load_settings
from grid_assets_tests.databricks_fakes import (
    HTTP_PATH,
    TOKEN,
    FakeConnection,
    closed_port,
    production_resource,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def everything(exc: BaseException) -> str:
    """Every way an exception is shown: message, repr, full traceback with its chain."""
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


def assert_no_secret(*texts: str, secret: str = TOKEN) -> None:
    for text_ in texts:
        assert secret not in text_, text_[:2000]


def captured(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


def unique_host() -> str:
    return f"adb-{uuid.uuid4().hex[:12]}.7.azuredatabricks.net"


@pytest.fixture(autouse=True)
def _redaction_installed(caplog: pytest.LogCaptureFixture) -> None:
    install_redaction()
    caplog.set_level(logging.DEBUG)


# -- redact() -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"token {TOKEN} rejected", f"token {MASK} rejected"),
        (
            f"databricks://token:{TOKEN}@adb-1.net?http_path=/p",
            f"databricks://token:{MASK}@adb-1.net?http_path=/p",
        ),
        (
            "https://user:hunter2hunter2@proxy.example:8080/x",
            f"https://user:{MASK}@proxy.example:8080/x",
        ),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            f"Authorization: Bearer {MASK}",
        ),
        (
            "{'access_token': 'opaque-value-123', 'catalog': 'main'}",
            f"{{'access_token': '{MASK}', 'catalog': 'main'}}",
        ),
        ("password=s3cr3t&user=me", f"password={MASK}&user=me"),
        (f"dapi{'ab' * 16}-2 then more", f"{MASK} then more"),
    ],
)
def test_redact_masks_secret_shapes(raw: str, expected: str) -> None:
    assert redact(raw) == expected
    assert redact(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "harmless",
    [
        "GRID_ENV is production, but these required variables are missing or empty: "
        "DATABRICKS_TOKEN, DATABRICKS_CATALOG.",
        "Cannot connect to host adb-1.azuredatabricks.net, http_path /sql/1.0/warehouses/abc",
        "SELECT event_id, payload FROM bronze.events WHERE source = 'grid'",
        "the token was refused",
    ],
)
def test_redact_leaves_ordinary_text_alone(harmless: str) -> None:
    assert redact(harmless) == harmless


def test_the_configured_token_is_masked_whatever_its_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    opaque = "Opaque.Token/Value+" + secrets.token_hex(8)
    monkeypatch.setenv("DATABRICKS_TOKEN", opaque)
    assert opaque not in redact(f"header was {opaque}; again:{opaque}")
    registered = "another-opaque-" + secrets.token_hex(8)
    register_secret(registered)
    assert redact(f"x {registered} y") == f"x {MASK} y"


def test_log_records_of_every_logger_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    # Child loggers included: a filter on "databricks" alone would not see these records.
    for name in ("grid_assets.etl", "databricks.sql.backend.thrift_backend", "urllib3.poolmanager"):
        logging.getLogger(name).warning("request with %s failed", f"Bearer {TOKEN}")
    try:
        raise RuntimeError(f"driver said https://token:{TOKEN}@host/path")
    except RuntimeError:
        logging.getLogger("dagster.some.child").exception("step failed")
    logging.getLogger("elsewhere").info("stack", stack_info=True, extra={"x": 1})
    text_ = captured(caplog)
    assert text_.count(MASK) >= 4
    assert_no_secret(text_)


# -- failure paths, in process ------------------------------------------------------------------


def test_missing_variables(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"GRID_ENV": "production", "DATABRICKS_TOKEN": TOKEN}
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ)
    logging.getLogger("grid_assets").error("startup failed: %s", caught.value)
    assert "DATABRICKS_SERVER_HOSTNAME" in str(caught.value)
    assert_no_secret(everything(caught.value), captured(caplog))


@pytest.mark.parametrize(
    "host", ["grid-warehouse.nonexistent.invalid", f"127.0.0.1:{closed_port()}"]
)
def test_bad_or_refusing_host(caplog: pytest.LogCaptureFixture, host: str) -> None:
    with pytest.raises(LakehouseConnectionError) as caught:
        ping(production_resource(host, timeout=4).get_lakehouse())
    logging.getLogger("grid_assets").exception("ping failed")
    assert host in str(caught.value)
    assert "Sending request" in captured(caplog)  # the connector's debug logs were captured too
    assert_no_secret(everything(caught.value), captured(caplog))


class FakeCursor:
    description = None
    rowcount = -1
    arraysize = 1

    def __init__(self, failure: Callable[[str], Exception] | None) -> None:
        self.failure = failure

    def execute(self, operation: str, parameters: object = None) -> None:
        if self.failure is not None and "grid_fail" in operation:
            raise self.failure(operation)

    def fetchall(self) -> list:
        return []

    def close(self) -> None:
        pass


class FailingConnection(FakeConnection):
    def __init__(self, failure: Callable[[str], Exception] | None = None) -> None:
        self.failure = failure

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.failure)


def auth_error(token: str) -> dbx.RequestError:
    return dbx.RequestError(
        f"Error during request to server: 401 Unauthorized: Invalid access token {token}",
        {"http-code": 401, "request-headers": {"Authorization": f"Bearer {token}"}},
    )


def statement_error(token: str, host: str) -> Callable[[str], Exception]:
    def build(operation: str) -> Exception:
        return dbx.ServerOperationError(
            f"[CANNOT_READ_FILE] while running {operation!r}: failed to open "
            f"https://token:{token}@{host}/api/2.0/fs/files (token={token})",
            {"diagnostic-info": f"Authorization: Bearer {token}"},
        )

    return build


@pytest.fixture
def fake_connector(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make `databricks.sql.connect` fail to authenticate, or connect to a fake warehouse."""
    import databricks.sql

    def install(*, auth_fails: bool = False, statement: Callable | None = None) -> None:
        def connect(*args, **kwargs):
            if auth_fails:
                raise auth_error(kwargs["access_token"])
            return FailingConnection(statement)

        monkeypatch.setattr(databricks.sql, "connect", connect)

    return install


@pytest.mark.parametrize("token", [TOKEN, "opaque-oauth-token-" + secrets.token_hex(12)])
def test_authentication_error_from_the_driver(
    caplog: pytest.LogCaptureFixture, fake_connector: Callable[..., None], token: str
) -> None:
    fake_connector(auth_fails=True)
    host = unique_host()
    with pytest.raises(LakehouseConnectionError) as caught:
        ping(production_resource(host, token=token).get_lakehouse())
    logging.getLogger("grid_assets").exception("ping failed: %s", caught.value)
    assert "authentication failed" in str(caught.value) and host in str(caught.value)
    assert_no_secret(everything(caught.value), captured(caplog), secret=token)


# Not hex, so it cannot turn up by chance inside the random host names of these tests.
HIDDEN = "zz-parameter-value"


def test_failing_statement_that_echoes_the_url(
    caplog: pytest.LogCaptureFixture, fake_connector: Callable[..., None]
) -> None:
    host = unique_host()
    fake_connector(statement=statement_error(TOKEN, host))
    lakehouse = production_resource(host).get_lakehouse()
    with pytest.raises(DBAPIError) as caught, lakehouse.connect() as conn:
        conn.execute(
            text("SELECT grid_fail FROM bronze.events WHERE event_id = :id"), {"id": HIDDEN}
        )
    logging.getLogger("grid_assets").exception("statement failed")
    shown = everything(caught.value)
    assert "CANNOT_READ_FILE" in shown and "grid_fail" in shown and host in shown
    assert HIDDEN not in str(caught.value)  # hide_parameters
    assert_no_secret(shown, everything(caught.value.orig), captured(caplog))
    assert_no_secret(str(caught.value.orig.message_with_context()))  # type: ignore[union-attr]


def test_redact_exception_rewrites_the_whole_chain() -> None:
    try:
        try:
            raise auth_error(TOKEN)
        except dbx.Error as inner:
            raise RuntimeError(f"wrapped: Bearer {TOKEN}") from inner
    except RuntimeError as outer:
        outer.add_note(f"note with {TOKEN}")
        redact_exception(outer)
        shown = everything(outer)
        assert_no_secret(shown)
        # Masked where it stood, the rest kept: the message, its note and the chained cause.
        assert f"wrapped: Bearer {MASK}" in shown and f"note with {MASK}" in shown
        assert f"401 Unauthorized: Invalid access token {MASK}" in shown


# -- Dagster: events of a run and the UI's resource config ---------------------------------------


@dg.op
def query_the_lakehouse(lakehouse: LakehouseResource) -> None:
    with lakehouse.get_lakehouse().connect() as conn:
        conn.execute(text("SELECT grid_fail FROM bronze.events"))


def run_job(host: str) -> tuple[dg.ExecuteInProcessResult, str]:
    resource = LakehouseResource(
        environment="production",
        server_hostname=host,
        http_path=HTTP_PATH,
        access_token=dg.EnvVar("DATABRICKS_TOKEN"),
        catalog="main",
        connect_timeout_seconds=5,
    )
    job = dg.GraphDefinition(name="grid_secret_probe", node_defs=[query_the_lakehouse]).to_job(
        resource_defs={"lakehouse": resource}
    )
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        stored = [dg.serialize_value(entry) for entry in instance.all_logs(result.run_id)]
    events = [dg.serialize_value(event) for event in result.all_events]
    return result, "\n".join(events + stored)


@pytest.mark.parametrize("failure", ["authentication", "statement"])
def test_dagster_events_of_a_failed_run(
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    fake_connector: Callable[..., None],
    failure: str,
) -> None:
    monkeypatch.setenv("DATABRICKS_TOKEN", TOKEN)
    host = unique_host()
    if failure == "authentication":
        fake_connector(auth_fails=True)
    else:
        fake_connector(statement=statement_error(TOKEN, host))
    result, serialized = run_job(host)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures and failures[0].step_failure_data.error is not None
    error = failures[0].step_failure_data.error.to_string()
    assert ("authentication failed" if failure == "authentication" else "CANNOT_READ_FILE") in error
    # What `grid run` prints for the failed step, and `--json` reports.
    shown = run_report.step_errors(result)
    assert list(shown) == [failures[0].step_key] and shown[failures[0].step_key]
    out, err = capfd.readouterr()
    assert_no_secret(serialized, error, out, err, captured(caplog), *shown.values())


def test_the_ui_config_view_shows_variable_names_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._core.remote_representation.external_data import RepositorySnap

    from grid_assets.definitions import build_definitions

    for name, value in {
        "GRID_ENV": "production",
        "DATABRICKS_SERVER_HOSTNAME": unique_host(),
        "DATABRICKS_HTTP_PATH": HTTP_PATH,
        "DATABRICKS_TOKEN": TOKEN,
        "DATABRICKS_CATALOG": "main",
    }.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions(load_settings())
    snapshot = RepositorySnap.from_def(defs.get_repository_def())
    lakehouse = next(r for r in snapshot.resources if r.name == "lakehouse")
    assert lakehouse.configured_values["access_token"].name == "DATABRICKS_TOKEN"  # type: ignore[union-attr]
    assert_no_secret(dg.serialize_value(snapshot))
    with defs.resources["lakehouse"].process_config_and_initialize_cm() as resolved:  # type: ignore[union-attr]
        assert resolved.access_token == TOKEN
        assert_no_secret(repr(resolved), str(resolved))


# -- a subprocess: real stdout and stderr, debug logging on, an uncaught error at the end --------

SUBPROCESS_SCRIPT = r"""
import logging, sys, traceback
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
import databricks.sql
from databricks.sql import exc as dbx
from sqlalchemy import text
from grid_assets.logging_redaction import install_redaction
from grid_assets.lakehouse.core import ping
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.settings import load_settings
install_redaction()
TOKEN = sys.argv[1]
log = logging.getLogger("grid_assets.probe")

def resource(host):
    return LakehouseResource(environment="production", server_hostname=host,
        http_path="/sql/1.0/warehouses/0123456789abcdef", access_token=TOKEN,
        catalog="main", connect_timeout_seconds=6)

def show(label, exc):
    print(label, exc)
    print("".join(traceback.format_exception(exc)))
    log.error("%s: %r", label, exc, exc_info=exc)

try:
    load_settings()
except Exception as exc:
    show("MISSING", exc)
for host in ("grid-warehouse.nonexistent.invalid", "127.0.0.1:" + sys.argv[2]):
    try:
        ping(resource(host).get_lakehouse())
    except Exception as exc:
        show("UNREACHABLE", exc)

def connect(*args, **kwargs):
    raise dbx.RequestError("401 Unauthorized: invalid token " + kwargs["access_token"],
                           {"Authorization": "Bearer " + kwargs["access_token"]})
databricks.sql.connect = connect
try:
    ping(resource("adb-auth.azuredatabricks.net").get_lakehouse())
except Exception as exc:
    show("AUTH", exc)

class Cursor:
    description = None
    rowcount = -1
    def execute(self, operation, parameters=None):
        if "grid_fail" in operation:
            raise dbx.ServerOperationError("failed to open https://token:" + TOKEN
                                           + "@adb-sql.azuredatabricks.net/files", {})
    def close(self):
        pass
class Connection:
    def cursor(self): return Cursor()
    def rollback(self): pass
    def close(self): pass
databricks.sql.connect = lambda *a, **k: Connection()
lakehouse = resource("adb-sql.azuredatabricks.net").get_lakehouse()
with lakehouse.connect() as conn:
    conn.execute(text("SELECT grid_fail"))  # uncaught: Python prints the traceback
"""


@pytest.fixture(scope="module", autouse=True)
def probe_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    """Started with the module's first test so its ~10 s overlap the in-process tests."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABRICKS_", "GRID_", "DAGSTER_"))
    }
    env.update(GRID_ENV="production", DATABRICKS_TOKEN=TOKEN, PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen(
        [sys.executable, "-c", SUBPROCESS_SCRIPT, TOKEN, str(closed_port())],
        env=env,
        cwd=tmp_path_factory.mktemp("probe"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.communicate()


def test_subprocess_output_never_contains_the_token(
    probe_process: subprocess.Popen[str],
) -> None:
    stdout, stderr = probe_process.communicate(timeout=120)
    output = stdout + stderr
    assert probe_process.returncode == 1, output[-3000:]
    for marker in (
        "MISSING",
        "DATABRICKS_SERVER_HOSTNAME",
        "does not resolve",
        "connection refused",
        "authentication failed",
        "ServerOperationError",
        "Traceback",
    ):
        assert marker in output, (marker, output[-6000:])
    assert_no_secret(output)
