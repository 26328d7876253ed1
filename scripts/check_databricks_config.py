"""Check the production (Databricks) configuration before deploying.

    python scripts/check_databricks_config.py [--timeout SECONDS] [--verbose]

Reads the same environment variables as the pipeline (GRID_ENV, DATABRICKS_SERVER_HOSTNAME,
DATABRICKS_HTTP_PATH, DATABRICKS_TOKEN, DATABRICKS_CATALOG, optional DATABRICKS_SCHEMA_PREFIX,
GRID_DATABRICKS_CONNECT_TIMEOUT_S and DATABRICKS_STAGING_VOLUME) and prints one line per check:

    PASS|FAIL|SKIP  <check>  <what was found>  (hint: <what to do>)

Checks, in order: each variable (present, non-empty, plausible shape; the staging volume's path,
or the one derived when it is unset); the host name resolves; the warehouse answers `SELECT 1`
within the connect timeout (the pipeline's own bound); the warehouse's state through the
workspace API (dagster-databricks' `DatabricksClient`); the catalog is visible; the layer schemas
exist or can be created (`CREATE SCHEMA IF NOT EXISTS`); the token may create, write, read and
drop a scratch table (always cleaned up); the staging volume exists (a set one, through the Files
API) or can be created (the derived one, with the pipeline's `CREATE VOLUME IF NOT EXISTS`); and
the token may upload a small file to `<volume>/grid/check-<id>.txt` through the pipeline's own
Files API client (`staging.sdk_files`, at https://<DATABRICKS_SERVER_HOSTNAME>), list it, read it
back and remove it. A refusal names the grant that is missing (READ VOLUME, WRITE VOLUME, CREATE
VOLUME, USE SCHEMA, USE CATALOG). A check whose prerequisite failed is reported as SKIP. Every
network step is bounded by the timeout. No secret value is ever printed. Exit status: 0 only when
every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import socket
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from grid_assets.config import (  # noqa: E402
    CATALOG_VAR,
    CONNECT_TIMEOUT_VAR,
    DEFAULT_CONNECT_TIMEOUT_S,
    HOSTNAME_VAR,
    HTTP_PATH_PATTERN,
    HTTP_PATH_VAR,
    SCHEMA_PREFIX_VAR,
    STAGING_VOLUME_VAR,
    TOKEN_VAR,
    ConfigurationError,
    ConnectTimeout,
    DatabricksConfig,
    Hostname,
    HttpPath,
    Identifier,
    SchemaPrefix,
    StagingVolume,
    derived_staging_volume,
    problem,
)
from grid_assets.lakehouse.databricks import (  # noqa: E402
    DEFAULT_PORT,
    DatabricksTarget,
    Deadline,
    LakehouseConnectionError,
    call_within,
    databricks_engine,
)
from grid_assets.logging_redaction import install_redaction, redact, register_secret  # noqa: E402
from grid_assets.settings import Environment, resolve_environment  # noqa: E402

LAYERS = ("bronze", "silver", "gold")
PAT_PATTERN = re.compile(r"^dapi[0-9a-f]{32}(?:-\d+)?$")
JWT_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
HOST_VAR = HOSTNAME_VAR
PATH_VAR = HTTP_PATH_VAR
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
VOLUME_CHECK = "staging volume"
VOLUME_WRITE = "staging volume write"
PRINCIPAL = "`<principal>`"  # the token's user or service principal
NAME_WIDTH = 33
IMPORT_ALLOWANCE_S = 60.0

T = TypeVar("T")


def bounded(fn: Callable[[], T], seconds: float) -> T:
    """`fn()`, or `Deadline` if it is still running after `seconds`."""
    return call_within(fn, seconds, thread_name="grid-config-check")


def one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(redact(f"{type(exc).__name__}: {exc}").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Report:
    """Prints each result as soon as it is known; remembers which checks failed or skipped."""

    def __init__(self) -> None:
        self.results: dict[str, str] = {}

    def line(self, status: str, name: str, detail: str, hint: str = "") -> str:
        self.results[name] = status
        text = f"{status}  {name:<{NAME_WIDTH}}  {detail}"
        if hint:
            text += f"  (hint: {hint})"
        print(redact(text), flush=True)
        return status

    def ok(self, *names: str) -> bool:
        return all(self.results.get(n) == PASS for n in names)

    def skip_unless(self, name: str, *needs: str) -> bool:
        """Report `name` as SKIP (and return True) unless every check in `needs` passed."""
        blocked = [n for n in needs if self.results.get(n) != PASS]
        if blocked:
            self.line(SKIP, name, "not run: needs " + ", ".join(blocked))
        return bool(blocked)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(s == PASS for s in self.results.values())


def check_variables(report: Report, env: Mapping[str, str]) -> None:
    try:
        environment = resolve_environment(env)
    except ConfigurationError as exc:
        report.line(FAIL, "GRID_ENV", str(exc), "use 'production' (or leave it unset)")
    else:
        if environment is Environment.PRODUCTION:
            report.line(PASS, "GRID_ENV", "production")
        else:
            report.line(
                FAIL,
                "GRID_ENV",
                "resolves to local: the pipeline would use the embedded DuckDB file",
                "set GRID_ENV=production (or unset it) where the pipeline is deployed",
            )

    def raw(name: str) -> str | None:
        return env.get(name)

    def present(name: str, hint: str) -> str | None:
        value = raw(name)
        if value is None:
            report.line(FAIL, name, "missing", hint)
            return None
        if not value.strip():
            report.line(FAIL, name, "empty", hint)
            return None
        return value.strip()

    host = present(HOST_VAR, "the workspace host, e.g. adb-1234567890123456.7.azuredatabricks.net")
    if host is not None:
        if why := problem(Hostname, host, HOST_VAR):
            report.line(FAIL, HOST_VAR, "not a bare host name", why)
        else:
            report.line(PASS, HOST_VAR, host)

    path = present(PATH_VAR, "the warehouse's HTTP path, from its Connection details tab")
    if path is not None:
        match = HTTP_PATH_PATTERN.fullmatch(path)
        if problem(HttpPath, path, PATH_VAR) is None and match:
            report.line(PASS, PATH_VAR, f"{path} (warehouse id {match['id']})")
        else:
            report.line(
                FAIL,
                PATH_VAR,
                "does not look like a SQL warehouse HTTP path",
                "expected /sql/1.0/warehouses/<warehouse id>, from its Connection details tab",
            )

    token = present(TOKEN_VAR, "a personal access token (dapi...) of the deploying principal")
    if token is not None:
        register_secret(token)
        if any(c.isspace() for c in token):
            report.line(FAIL, TOKEN_VAR, "contains whitespace", "paste the token on one line")
        elif PAT_PATTERN.fullmatch(token):
            report.line(PASS, TOKEN_VAR, "set (personal access token shape)")
        elif JWT_PATTERN.fullmatch(token):
            report.line(PASS, TOKEN_VAR, "set (OAuth access token shape; it expires within hours)")
        else:
            report.line(
                FAIL,
                TOKEN_VAR,
                "set, but not shaped like a Databricks token",
                "expected dapi followed by 32 hex digits",
            )

    catalog = present(CATALOG_VAR, "the Unity Catalog catalog that holds the layer schemas")
    if catalog is not None:
        if problem(Identifier, catalog, CATALOG_VAR) is None:
            report.line(PASS, CATALOG_VAR, catalog)
        else:
            report.line(
                FAIL, CATALOG_VAR, "not a plain identifier", "letters, digits and underscores only"
            )

    prefix = (raw(SCHEMA_PREFIX_VAR) or "").strip()
    if problem(SchemaPrefix, prefix, SCHEMA_PREFIX_VAR):
        report.line(
            FAIL,
            SCHEMA_PREFIX_VAR,
            "invalid schema prefix",
            "letters, digits and underscores only (64 at most), e.g. grid_",
        )
    else:
        schemas = ", ".join(f"{prefix}{layer}" for layer in LAYERS)
        report.line(PASS, SCHEMA_PREFIX_VAR, f"{'set' if prefix else 'not set'}: schemas {schemas}")

    timeout_raw = (raw(CONNECT_TIMEOUT_VAR) or "").strip()
    if timeout_raw and (why := problem(ConnectTimeout, timeout_raw, CONNECT_TIMEOUT_VAR)):
        report.line(FAIL, CONNECT_TIMEOUT_VAR, "invalid", why)
    else:
        seconds = (
            f"{timeout_raw} s" if timeout_raw else (f"{DEFAULT_CONNECT_TIMEOUT_S} s (default)")
        )
        report.line(PASS, CONNECT_TIMEOUT_VAR, f"connect timeout {seconds}")

    volume = (raw(STAGING_VOLUME_VAR) or "").strip()
    if volume and (why := problem(StagingVolume, volume, STAGING_VOLUME_VAR)):
        report.line(FAIL, STAGING_VOLUME_VAR, "not a Unity Catalog volume path", why)
    elif volume:
        report.line(PASS, STAGING_VOLUME_VAR, f"{volume} (must exist: the pipeline uses it as is)")
    elif not report.skip_unless(STAGING_VOLUME_VAR, CATALOG_VAR, SCHEMA_PREFIX_VAR):
        derived = derived_staging_volume(str(catalog), prefix)
        report.line(PASS, STAGING_VOLUME_VAR, f"not set: {derived} (the pipeline creates it)")


def check_dns(report: Report, host: str, port: int, timeout: float) -> None:
    try:
        infos = bounded(lambda: socket.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
    except Deadline as exc:
        report.line(FAIL, "host resolves", f"{host}: {exc}", "check DNS / network from here")
        return
    except OSError as exc:
        report.line(
            FAIL,
            "host resolves",
            f"{host} does not resolve ({one_line(exc)})",
            f"check {HOST_VAR} and DNS from this machine",
        )
        return
    addresses = sorted({info[4][0] for info in infos})
    shown = ", ".join(addresses[:3]) + (" ..." if len(addresses) > 3 else "")
    report.line(PASS, "host resolves", f"{host} -> {shown}")


def check_port(report: Report, host: str, port: int, timeout: float) -> None:
    name = "port reachable"
    proxies = urllib.request.getproxies()
    if proxies.get("https") and not urllib.request.proxy_bypass(host):
        report.line(
            PASS,
            name,
            "an HTTPS proxy is configured: not probed directly (the checks below use the proxy)",
        )
        return
    seconds = min(float(timeout), 10.0)
    try:
        socket.create_connection((host, port), timeout=seconds).close()
    except ConnectionRefusedError:
        report.line(
            FAIL,
            name,
            f"{host}:{port} refused the connection",
            f"check the host and port in {HOST_VAR}; Databricks listens on 443",
        )
    except TimeoutError:
        report.line(
            FAIL,
            name,
            f"{host}:{port} did not answer within {seconds:g} s",
            "a firewall or missing proxy setting blocks HTTPS to the workspace",
        )
    except OSError as exc:
        report.line(FAIL, name, f"{host}:{port}: {one_line(exc)}", "check network access")
    else:
        report.line(PASS, name, f"{host}:{port} accepts TCP connections")


class WarehouseLookup:
    """The workspace API call, started early and run alongside the SQL checks."""

    def __init__(self, host: str, port: int, token: str, warehouse_id: str, timeout: float):
        self.warehouse_id = warehouse_id
        self.timeout = timeout
        self.started = time.monotonic()
        self.outcome: dict[str, Any] = {}
        self.done = threading.Event()
        self.imported = threading.Event()
        self.called_at = 0.0
        base = f"https://{host}" if port == DEFAULT_PORT else f"https://{host}:{port}"
        threading.Thread(
            target=self._run, args=(base, token), name="grid-config-check-api", daemon=True
        ).start()

    def _run(self, base: str, token: str) -> None:
        try:
            # Imported here: dagster-databricks pulls in pyspark (several seconds).
            from dagster_databricks import DatabricksClient

            self.called_at = time.monotonic()
            self.imported.set()
            client = DatabricksClient(host=base, token=token)
            self.outcome["value"] = client.workspace_client.warehouses.get(self.warehouse_id)
        except BaseException as exc:  # reported by report()
            self.outcome["error"] = exc
        finally:
            self.imported.set()
            self.done.set()

    def report(self, report: Report) -> None:
        name = "warehouse state (API)"
        # The call gets the whole timeout, after the client's import (~8 s, pyspark included).
        self.imported.wait(IMPORT_ALLOWANCE_S)
        remaining = self.timeout - (time.monotonic() - (self.called_at or self.started))
        if not self.done.wait(max(0.0, remaining)):
            report.line(
                FAIL,
                name,
                f"the workspace API gave no answer within {self.timeout:g} s",
                "check the host and that HTTPS to it is allowed from here",
            )
            return
        if "error" in self.outcome:
            exc = self.outcome["error"]
            text = one_line(exc)
            lowered = text.lower()
            if "403" in lowered or "permission" in lowered or "forbidden" in lowered:
                hint = "grant the token's principal CAN USE (or CAN MONITOR) on the warehouse"
            elif "401" in lowered or "unauthorized" in lowered or "invalid access token" in lowered:
                hint = f"{TOKEN_VAR} is not accepted by this workspace"
            elif "does not exist" in lowered or "404" in lowered or "not found" in lowered:
                hint = f"no warehouse {self.warehouse_id} here: check {PATH_VAR}"
            else:
                hint = "see the SELECT 1 line for the connection problem"
            report.line(FAIL, name, text, hint)
            return
        info = self.outcome["value"]
        state = getattr(getattr(info, "state", None), "value", None) or "UNKNOWN"
        kind = (
            "serverless"
            if getattr(info, "enable_serverless_compute", False)
            else (
                str(
                    getattr(getattr(info, "warehouse_type", None), "value", "") or "classic"
                ).lower()
            )
        )
        label = f"{getattr(info, 'name', '?')} ({kind}): {state}"
        if state in ("RUNNING", "STARTING"):
            report.line(PASS, name, label)
        elif state in ("STOPPED", "STOPPING"):
            report.line(
                PASS,
                name,
                label + "; starts on the first query",
                f"a cold start can exceed the connect timeout: raise {CONNECT_TIMEOUT_VAR}",
            )
        else:
            report.line(FAIL, name, label, "the warehouse is being deleted: use another one")


def check_warehouse(
    report: Report, env: Mapping[str, str], timeout: int, statement_s: float
) -> None:
    """SELECT 1, the workspace API lookup (run alongside), then the catalog and schema checks."""
    api = "warehouse state (API)"
    lookup = None
    if not report.skip_unless(api, "port reachable", PATH_VAR, TOKEN_VAR):
        target = DatabricksTarget.parse(env[HOST_VAR], env[PATH_VAR])
        match = HTTP_PATH_PATTERN.fullmatch(target.http_path)
        assert match is not None  # the PATH_VAR check passed
        token = env[TOKEN_VAR].strip()
        lookup = WarehouseLookup(target.host, target.port, token, match["id"], timeout)

    engine = connection = None
    if not report.skip_unless("SELECT 1", "port reachable", PATH_VAR, TOKEN_VAR, CATALOG_VAR):
        engine = databricks_engine(
            DatabricksConfig.from_environ(
                {
                    **{k: env.get(k, "") for k in (HOST_VAR, PATH_VAR, TOKEN_VAR, CATALOG_VAR)},
                    CONNECT_TIMEOUT_VAR: str(timeout),
                }
            )
        )
        started = time.monotonic()
        try:
            connection = engine.connect()
            from sqlalchemy import text

            value = bounded(lambda: connection.execute(text("SELECT 1")).scalar(), statement_s)
            if value != 1:
                raise RuntimeError(f"SELECT 1 returned {value!r}")
            report.line(PASS, "SELECT 1", f"answered in {time.monotonic() - started:.1f} s")
        except LakehouseConnectionError as exc:
            report.line(FAIL, "SELECT 1", str(exc), "nothing below can work until this passes")
        except Exception as exc:
            report.line(FAIL, "SELECT 1", one_line(exc), "the warehouse connected, then failed")

    if lookup is not None:
        lookup.report(report)
    try:
        check_sql_objects(report, connection, env, statement_s)
        check_staging_volume(report, env, sql_runner(connection, statement_s), timeout)
    finally:
        if connection is not None:
            try:
                bounded(connection.close, statement_s)
            except Exception as exc:
                print(redact(f"WARN  closing the connection: {one_line(exc)}"), flush=True)
        if engine is not None:
            engine.dispose()


def sql_runner(connection: Any, statement_s: float) -> Callable[[str], list[Any]]:
    """Runs one statement on `connection`, bounded by `statement_s`; returns its rows."""
    from sqlalchemy import text

    def run(sql: str) -> list[Any]:
        def execute() -> list[Any]:
            result = connection.execute(text(sql))
            return list(result) if result.returns_rows else []

        return bounded(execute, statement_s)

    return run


def check_sql_objects(
    report: Report, connection: Any, env: Mapping[str, str], statement_s: float
) -> None:
    catalog = env.get(CATALOG_VAR, "").strip()
    prefix = env.get(SCHEMA_PREFIX_VAR, "").strip()
    run = sql_runner(connection, statement_s)

    if not report.skip_unless("catalog visible", "SELECT 1"):
        try:
            rows = run(f"SHOW CATALOGS LIKE '{catalog}'")
            if rows:
                report.line(PASS, "catalog visible", catalog)
            else:
                report.line(
                    FAIL,
                    "catalog visible",
                    f"{catalog} not found",
                    f"create it, grant USE CATALOG on it, or fix {CATALOG_VAR}",
                )
        except Exception as exc:
            report.line(FAIL, "catalog visible", one_line(exc), "grant USE CATALOG on it")

    schemas = [f"{prefix}{layer}" for layer in LAYERS]
    if not report.skip_unless("layer schemas", "catalog visible", SCHEMA_PREFIX_VAR):
        try:
            for schema in schemas:
                run(f"CREATE SCHEMA IF NOT EXISTS `{catalog}`.`{schema}`")
            report.line(PASS, "layer schemas", f"{', '.join(schemas)} exist in {catalog}")
        except Exception as exc:
            report.line(FAIL, "layer schemas", one_line(exc), "grant CREATE SCHEMA on the catalog")

    if report.skip_unless("scratch table write", "layer schemas"):
        return
    scratch = f"`{catalog}`.`{schemas[0]}`.`grid_config_check_{uuid.uuid4().hex[:12]}`"
    created = False
    try:
        run(f"CREATE TABLE {scratch} (id INT, note STRING) USING DELTA")
        created = True
        run(f"INSERT INTO {scratch} VALUES (1, 'grid config check')")
        count = run(f"SELECT count(*) FROM {scratch}")[0][0]
        if count != 1:
            raise RuntimeError(f"read back {count} rows instead of 1")
        report.line(
            PASS, "scratch table write", f"created, wrote, read and dropped in {schemas[0]}"
        )
    except Exception as exc:
        report.line(
            FAIL,
            "scratch table write",
            one_line(exc),
            f"grant CREATE TABLE and MODIFY on {catalog}.{schemas[0]}",
        )
    finally:
        if created:
            try:
                run(f"DROP TABLE IF EXISTS {scratch}")
            except Exception as exc:
                print(redact(f"WARN  could not drop {scratch}: {one_line(exc)}"), flush=True)


def staging_volume(env: Mapping[str, str]) -> tuple[str, bool]:
    """The staging volume's path and whether it is derived (settings' rule; already checked)."""
    volume = env.get(STAGING_VOLUME_VAR, "").strip()
    if volume:
        return volume, False
    catalog = env.get(CATALOG_VAR, "").strip()
    return derived_staging_volume(catalog, env.get(SCHEMA_PREFIX_VAR, "").strip()), True


def volume_hint(exc: BaseException, step: str, volume: str, derived: bool, timeout: float) -> str:
    """What to grant (or fix) when the Files API refused `step` on `volume`."""
    from databricks.sdk.errors import NotFound, PermissionDenied, Unauthenticated

    catalog, schema, name = volume.split("/")[2:5]
    dotted = f"{catalog}.{schema}.{name}"
    parents = f"USE CATALOG ON CATALOG {catalog} and USE SCHEMA ON SCHEMA {catalog}.{schema}"
    if isinstance(exc, Deadline):
        return f"the Files API gave no answer within {timeout:g} s: check HTTPS to the workspace"
    if isinstance(exc, Unauthenticated):
        return f"{TOKEN_VAR} is not accepted by the workspace's Files API"
    if isinstance(exc, PermissionDenied):
        if step in ("upload", "delete"):
            return (
                f"GRANT WRITE VOLUME, READ VOLUME ON VOLUME {dotted} TO {PRINCIPAL} (with "
                f"{parents}): batches are uploaded there and removed after their load"
            )
        return (
            f"GRANT READ VOLUME ON VOLUME {dotted} TO {PRINCIPAL} (with {parents}): the loads "
            "read the staged files (parquet.`<path>`) and the sweep lists them"
        )
    if isinstance(exc, NotFound):
        if derived:
            return f"the volume is not visible after CREATE VOLUME: grant {parents}"
        return (
            f"create the volume (CREATE VOLUME {dotted}) or unset {STAGING_VOLUME_VAR} to let "
            f"the pipeline create its own; if it exists, grant {parents}"
        )
    return f"the Files API at https://<{HOST_VAR}> failed: see the error"


def short_error(exc: BaseException) -> str:
    # The SDK appends its configuration ("Config: host=..., token=***, ...") to every error.
    return one_line(exc).split(" Config: ")[0]


def check_staging_volume(
    report: Report, env: Mapping[str, str], run: Callable[[str], list[Any]], timeout: float
) -> None:
    """The staging volume exists (the derived one: created as the pipeline creates it), and the
    token may upload, list, read and remove a file in it through the pipeline's Files API client.
    The probe file is removed whatever fails after its upload (unless the delete is refused)."""
    if report.results.get(STAGING_VOLUME_VAR) != PASS:
        report.skip_unless(VOLUME_CHECK, STAGING_VOLUME_VAR)
        report.skip_unless(VOLUME_WRITE, VOLUME_CHECK)
        return
    volume, derived = staging_volume(env)
    catalog, schema, name = volume.split("/")[2:5]
    dotted = f"{catalog}.{schema}.{name}"
    files: Any = None

    def client() -> Any:
        from grid_assets.lakehouse.staging import sdk_files

        target = DatabricksTarget.parse(env[HOST_VAR], env.get(PATH_VAR, ""))
        token = env[TOKEN_VAR].strip()
        return bounded(
            lambda: sdk_files(f"https://{target.address}", token, int(timeout)), IMPORT_ALLOWANCE_S
        )

    if derived:
        if not report.skip_unless(VOLUME_CHECK, "layer schemas"):
            try:
                run(f"CREATE VOLUME IF NOT EXISTS {dotted}")  # the pipeline's own statement
                report.line(PASS, VOLUME_CHECK, f"{dotted} exists (or was just created)")
            except Exception as exc:
                report.line(
                    FAIL,
                    VOLUME_CHECK,
                    one_line(exc),
                    f"GRANT CREATE VOLUME ON SCHEMA {catalog}.{schema} TO {PRINCIPAL}, or set "
                    f"{STAGING_VOLUME_VAR} to a volume an administrator manages",
                )
    elif not report.skip_unless(VOLUME_CHECK, "port reachable", TOKEN_VAR):
        try:
            files = client()
            bounded(lambda: files.get_directory_metadata(volume), timeout)
            report.line(PASS, VOLUME_CHECK, f"{volume} exists")
        except Exception as exc:
            hint = volume_hint(exc, "exists", volume, derived, timeout)
            report.line(FAIL, VOLUME_CHECK, short_error(exc), hint)

    if report.skip_unless(VOLUME_WRITE, VOLUME_CHECK):
        return
    check_volume_round_trip(report, files or client(), volume, derived, timeout)


def check_volume_round_trip(
    report: Report, files: Any, volume: str, derived: bool, timeout: float
) -> None:
    from grid_assets.lakehouse.staging import STAGING_FOLDER

    folder = f"{volume}/{STAGING_FOLDER}"
    probe = f"{folder}/check-{uuid.uuid4().hex[:12]}.txt"
    body = f"grid config check {probe}\n".encode()
    step = "upload"
    try:
        bounded(lambda: files.upload(probe, io.BytesIO(body), overwrite=True), timeout)
        step = "list"
        listed = bounded(lambda: [e.path for e in files.list_directory_contents(folder)], timeout)
        if probe not in listed:
            raise RuntimeError(f"{probe} was uploaded but is not listed in {folder}")
        step = "read"
        read = bounded(lambda: files.download(probe).contents.read(), timeout)
        if read != body:
            raise RuntimeError(f"{probe} read back {len(read)} bytes instead of {len(body)}")
        step = "delete"
        bounded(lambda: files.delete(probe), timeout)
        report.line(PASS, VOLUME_WRITE, f"uploaded, listed, read and removed {probe}")
    except Exception as exc:
        hint = volume_hint(exc, step, volume, derived, timeout)
        report.line(FAIL, VOLUME_WRITE, f"{step}: {short_error(exc)}", hint)
        # After a refused upload there is nothing to remove, and a refused delete would only be
        # refused again; a timed-out upload may still land.
        if step in ("list", "read") or (step == "upload" and isinstance(exc, Deadline)):
            remove_probe(files, probe, timeout)


def remove_probe(files: Any, probe: str, timeout: float) -> None:
    """Best effort: the probe must not stay behind (the pipeline's sweep would remove it too)."""
    try:
        bounded(lambda: files.delete(probe), timeout)
    except Exception as exc:
        if type(exc).__name__ not in ("NotFound", "ResourceDoesNotExist"):
            print(redact(f"WARN  could not remove {probe}: {short_error(exc)}"), flush=True)


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="seconds allowed for DNS, the connection and the workspace API "
        f"(default: {CONNECT_TIMEOUT_VAR} or {DEFAULT_CONNECT_TIMEOUT_S})",
    )
    parser.add_argument(
        "--statement-timeout", type=float, default=120.0, help="seconds allowed per SQL statement"
    )
    parser.add_argument("--verbose", action="store_true", help="show library logs (masked)")
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ

    install_redaction()
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        # Each failure is summarised on its check's line; the libraries' own retry chatter
        # (urllib3, the connector, the SDK) would only repeat it.
        logging.getLogger().addHandler(logging.NullHandler())

    report = Report()
    check_variables(report, env)

    timeout_raw = env.get(CONNECT_TIMEOUT_VAR, "").strip()
    timeout = args.timeout or (
        int(timeout_raw) if timeout_raw.isdigit() and int(timeout_raw) > 0 else None
    )
    timeout = timeout or DEFAULT_CONNECT_TIMEOUT_S

    if not report.skip_unless("host resolves", HOST_VAR):
        target = DatabricksTarget.parse(env[HOST_VAR], env.get(PATH_VAR, ""))
        check_dns(report, target.host, target.port, timeout)
    if not report.skip_unless("port reachable", "host resolves"):
        check_port(report, target.host, target.port, timeout)

    check_warehouse(report, env, timeout, args.statement_timeout)

    failed = [name for name, status in report.results.items() if status != PASS]
    if failed:
        print(f"NOT READY: {len(failed)} check(s) did not pass: {', '.join(failed)}", flush=True)
        return 1
    print("READY: every check passed.", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    # Helper threads may still be waiting on an unreachable host; do not wait for them.
    os._exit(code)
