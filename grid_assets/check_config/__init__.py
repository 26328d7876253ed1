"""`grid check-config`: check the production (Databricks) configuration before deploying.

    grid check-config [--timeout SECONDS] [--statement-timeout SECONDS] [--verbose]
    python scripts/check_databricks_config.py ...     # the same command, from a plain checkout

Reads the same environment variables as the pipeline (GRID_ENV, DATABRICKS_SERVER_HOSTNAME,
DATABRICKS_HTTP_PATH, DATABRICKS_TOKEN, DATABRICKS_CATALOG, optional DATABRICKS_SCHEMA_PREFIX,
GRID_DATABRICKS_CONNECT_TIMEOUT_S and DATABRICKS_STAGING_VOLUME) and prints one line per check:

    PASS|FAIL|SKIP  <check>  <what was found>  (hint: <what to do>)

Checks, in order: each variable (present, non-empty, plausible shape; the staging volume's path,
or the one derived when it is unset: `variables`); the host name resolves and its port answers
(`network`); the warehouse answers `SELECT 1` within the connect timeout (the pipeline's own
bound); the warehouse's state through the workspace API (dagster-databricks' `DatabricksClient`);
the catalog is visible; the layer schemas exist or can be created (`CREATE SCHEMA IF NOT
EXISTS`); the token may create, write, read and drop a scratch table (always cleaned up:
`warehouse`); the staging volume exists (a set one, through the Files API) or can be created (the
derived one, with the pipeline's `CREATE VOLUME IF NOT EXISTS`); and the token may upload a small
file to `<volume>/grid/check-<id>.txt` through the pipeline's own Files API client
(`staging.sdk_files`, at https://<DATABRICKS_SERVER_HOSTNAME>), list it, read it back and remove
it (`volume`). A refusal names the grant that is missing (READ VOLUME, WRITE VOLUME, CREATE
VOLUME, USE SCHEMA, USE CATALOG). A check whose prerequisite failed is reported as SKIP. Every
network step is bounded by the timeout. No secret value is ever printed. Exit status: 0 only when
every check passes, 1 otherwise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from grid_assets.check_config.network import check_dns, check_port
from grid_assets.check_config.report import PASS, Report
from grid_assets.check_config.variables import check_variables, connect_timeout
from grid_assets.check_config.warehouse import check_warehouse
from grid_assets.config import HOSTNAME_VAR, HTTP_PATH_VAR
from grid_assets.lakehouse.databricks import DatabricksTarget
from grid_assets.logging_redaction import install_redaction


def run_checks(
    env: Mapping[str, str], *, timeout: int | None, statement_timeout: float, verbose: bool = False
) -> int:
    """Every check on `env`, each line printed as it is known; the exit status (0: ready).

    `timeout` bounds DNS, the connection and the workspace API (None: the connect timeout
    the pipeline would use); `statement_timeout` bounds each SQL statement."""
    install_redaction()
    if verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        # Each failure is summarised on its check's line; the libraries' own retry chatter
        # (urllib3, the connector, the SDK) would only repeat it.
        logging.getLogger().addHandler(logging.NullHandler())

    report = Report()
    check_variables(report, env)
    seconds = connect_timeout(env, timeout)

    target = None
    if not report.skip_unless("host resolves", HOSTNAME_VAR):
        target = DatabricksTarget.parse(env[HOSTNAME_VAR], env.get(HTTP_PATH_VAR, ""))
        check_dns(report, target.host, target.port, seconds)
    if not report.skip_unless("port reachable", "host resolves"):
        assert target is not None  # the host resolved
        check_port(report, target.host, target.port, seconds)

    check_warehouse(report, env, seconds, statement_timeout)

    failed = [name for name, status in report.results.items() if status != PASS]
    if failed:
        print(f"NOT READY: {len(failed)} check(s) did not pass: {', '.join(failed)}", flush=True)
        return 1
    print("READY: every check passed.", flush=True)
    return 0
