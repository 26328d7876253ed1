"""The warehouse: `SELECT 1` within the pipeline's connect timeout, its state through the
workspace API (run alongside), the catalog, the layer schemas and a scratch table's round trip."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from grid_assets.check_config.report import (
    FAIL,
    IMPORT_ALLOWANCE_S,
    PASS,
    Report,
    bounded,
    one_line,
    warn,
)
from grid_assets.check_config.variables import LAYERS
from grid_assets.check_config.volume import check_staging_volume
from grid_assets.config import (
    CATALOG_VAR,
    CONNECT_TIMEOUT_VAR,
    HOSTNAME_VAR,
    HTTP_PATH_PATTERN,
    HTTP_PATH_VAR,
    SCHEMA_PREFIX_VAR,
    TOKEN_VAR,
    DatabricksConfig,
)
from grid_assets.lakehouse.databricks import (
    DEFAULT_PORT,
    DatabricksTarget,
    LakehouseConnectionError,
    databricks_engine,
)


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
                hint = f"no warehouse {self.warehouse_id} here: check {HTTP_PATH_VAR}"
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
    """SELECT 1, the workspace API lookup (run alongside), then the catalog and schema checks,
    then the staging volume (which may be created through this connection)."""
    api = "warehouse state (API)"
    lookup = None
    if not report.skip_unless(api, "port reachable", HTTP_PATH_VAR, TOKEN_VAR):
        target = DatabricksTarget.parse(env[HOSTNAME_VAR], env[HTTP_PATH_VAR])
        match = HTTP_PATH_PATTERN.fullmatch(target.http_path)
        assert match is not None  # the HTTP_PATH_VAR check passed
        token = env[TOKEN_VAR].strip()
        lookup = WarehouseLookup(target.host, target.port, token, match["id"], timeout)

    engine = connection = None
    if not report.skip_unless("SELECT 1", "port reachable", HTTP_PATH_VAR, TOKEN_VAR, CATALOG_VAR):
        engine = databricks_engine(
            DatabricksConfig.from_environ(
                {
                    **{
                        k: env.get(k, "")
                        for k in (HOSTNAME_VAR, HTTP_PATH_VAR, TOKEN_VAR, CATALOG_VAR)
                    },
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
                warn(f"closing the connection: {one_line(exc)}")
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
                warn(f"could not drop {scratch}: {one_line(exc)}")
