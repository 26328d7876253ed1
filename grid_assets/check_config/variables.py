"""The configuration variables, each judged by the rule the pipeline itself applies.

Every rule comes from `grid_assets.config` (`problem(rule, value, VAR)`); only the token's shape
is judged here, as advice: the pipeline accepts any non-blank token and lets the workspace decide.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from grid_assets.check_config.report import FAIL, PASS, Report
from grid_assets.config import (
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
    Hostname,
    HttpPath,
    Identifier,
    SchemaPrefix,
    StagingVolume,
    derived_staging_volume,
    problem,
)
from grid_assets.logging_redaction import register_secret
from grid_assets.settings import Environment, resolve_environment

LAYERS = ("bronze", "silver", "gold")
PAT_PATTERN = re.compile(r"^dapi[0-9a-f]{32}(?:-\d+)?$")
JWT_PATTERN = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def connect_timeout(env: Mapping[str, str], given: int | None) -> int:
    """`given` (--timeout), else a valid CONNECT_TIMEOUT_VAR, else the pipeline's default."""
    timeout_raw = env.get(CONNECT_TIMEOUT_VAR, "").strip()
    timeout = given or (
        int(timeout_raw) if timeout_raw.isdigit() and int(timeout_raw) > 0 else None
    )
    return timeout or DEFAULT_CONNECT_TIMEOUT_S


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

    host = present(
        HOSTNAME_VAR, "the workspace host, e.g. adb-1234567890123456.7.azuredatabricks.net"
    )
    if host is not None:
        if why := problem(Hostname, host, HOSTNAME_VAR):
            report.line(FAIL, HOSTNAME_VAR, "not a bare host name", why)
        else:
            report.line(PASS, HOSTNAME_VAR, host)

    path = present(HTTP_PATH_VAR, "the warehouse's HTTP path, from its Connection details tab")
    if path is not None:
        match = HTTP_PATH_PATTERN.fullmatch(path)
        if problem(HttpPath, path, HTTP_PATH_VAR) is None and match:
            report.line(PASS, HTTP_PATH_VAR, f"{path} (warehouse id {match['id']})")
        else:
            report.line(
                FAIL,
                HTTP_PATH_VAR,
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
