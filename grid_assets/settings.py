"""The one place that decides where the lakehouse lives: local DuckDB or a Databricks warehouse.

Nothing here reads the environment at import time; callers ask for `load_settings()` when the code
location is built, so a misconfigured production deploy fails at load with one clear message.

Rules (contract, section 1):

- `GRID_ENV` is `local` or `production` (surrounding blanks ignored); any other non-empty value
  is an error. Empty counts as unset.
- Unset `GRID_ENV` means `local` only when no `DATABRICKS_*` variable is present in the
  environment, even an empty one; otherwise the environment is production. A partial Databricks
  configuration is therefore an error, never a silent fallback to DuckDB.
- In production every one of `DATABRICKS_SERVER_HOSTNAME`, `DATABRICKS_HTTP_PATH`,
  `DATABRICKS_TOKEN`, `DATABRICKS_CATALOG` must be non-empty. All problems are reported in one
  `ConfigurationError` that names the variables and never contains a secret value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from grid_assets.logging_redaction import register_secret_url

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LANDING_DIR = PROJECT_ROOT / "data" / "landing"
DEFAULT_DUCKDB_PATH = PROJECT_ROOT / "data" / "lakehouse" / "grid.duckdb"

REQUIRED_DATABRICKS_VARS = (
    "DATABRICKS_SERVER_HOSTNAME",
    "DATABRICKS_HTTP_PATH",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CATALOG",
)
SECRET_VARS = frozenset({"DATABRICKS_TOKEN"})
SCHEMA_PREFIX_VAR = "DATABRICKS_SCHEMA_PREFIX"
# Optional: seconds allowed to open a warehouse connection (engines.DEFAULT_CONNECT_TIMEOUT_S).
CONNECT_TIMEOUT_VAR = "GRID_DATABRICKS_CONNECT_TIMEOUT_S"
MAX_CONNECT_TIMEOUT_S = 3600
# Optional, local mode: the most memory DuckDB's buffer manager may hold (its `memory_limit`).
# Beyond it, cached table blocks are evicted and large intermediates spill to `<file>.tmp/`, so
# the process's memory stays flat however large the lakehouse grows (see README, Performance).
DUCKDB_MEMORY_LIMIT_VAR = "GRID_DUCKDB_MEMORY_LIMIT"
DEFAULT_DUCKDB_MEMORY_LIMIT = "256MB"
MIN_DUCKDB_MEMORY_BYTES = 64 * 2**20
MEMORY_SIZE_PATTERN = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,3})?\s?([KMGT]i?B)$", re.IGNORECASE)
# Optional, local mode: how long a connection waits for DuckDB's file lock while another process
# (a run, `dagster dev`, a sensor) holds it. The default outlasts the longest single unit of
# work measured (Bronze at 3x10^6 events, about two minutes; README, Performance).
DUCKDB_LOCK_TIMEOUT_VAR = "GRID_DUCKDB_LOCK_TIMEOUT_S"
DEFAULT_DUCKDB_LOCK_TIMEOUT_S = 600
MAX_DUCKDB_LOCK_TIMEOUT_S = 86_400
SECONDS_PATTERN = re.compile(r"^[0-9]{1,6}$")
# Optional, every environment: when GRID counts as silent (the `heartbeat_gaps` check, README
# Checks). GRID's heartbeats are about GRID, not the engine, so local and production read the same.
HEARTBEAT_MAX_GAP_VAR = "GRID_HEARTBEAT_MAX_GAP_S"
HEARTBEAT_WINDOW_VAR = "GRID_HEARTBEAT_WINDOW_H"
HEARTBEAT_MAX_SILENCE_VAR = "GRID_HEARTBEAT_MAX_SILENCE_S"
DEFAULT_HEARTBEAT_MAX_GAP_S = 3600
DEFAULT_HEARTBEAT_WINDOW_H = 24
DEFAULT_HEARTBEAT_MAX_SILENCE_S = 3600
MAX_HEARTBEAT_SECONDS = 86_400
MAX_HEARTBEAT_WINDOW_H = 720
# Catalog and schema names end up inside DDL, so only plain identifiers are accepted.
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_]{0,64}$")
# host or host:port, no scheme, no path (the connector adds https:// and the port itself).
HOSTNAME_PATTERN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?(?::\d{1,5})?$")
# Alerts (grid_assets.alerts), every environment. The webhook URL is a secret (Slack and Teams
# put the credential in its path): Settings only records that it is set, the resource reads it
# through dg.EnvVar, and it is registered with the log redaction as soon as it is read.
ALERT_WEBHOOK_VAR = "GRID_ALERT_WEBHOOK_URL"
# Whether failed WARN checks alert too (failed ERROR checks and failed runs always do).
ALERT_ON_WARN_VAR = "GRID_ALERT_ON_WARN"
# The Dagster UI that alert messages link runs to.
UI_BASE_URL_VAR = "GRID_UI_BASE_URL"
DEFAULT_UI_BASE_URL = "http://127.0.0.1:3000"
# Production, optional: the Unity Catalog volume bulk writes travel through as Parquet files
# (README, Production). Unset, it is derived: the volume `grid_staging` in the Bronze schema,
# which the pipeline creates with its schemas. Set, it must name an existing volume exactly.
STAGING_VOLUME_VAR = "DATABRICKS_STAGING_VOLUME"
DERIVED_STAGING_VOLUME = "grid_staging"
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,127}"
STAGING_VOLUME_PATTERN = re.compile(rf"^/Volumes/{_NAME}/{_NAME}/{_NAME}$")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ConfigurationError(RuntimeError):
    """The environment cannot describe a working lakehouse; raised before anything connects."""


class Environment(StrEnum):
    LOCAL = "local"
    PRODUCTION = "production"


@dataclass(frozen=True)
class HeartbeatRules:
    """When GRID counts as silent: the longest gap allowed between consecutive heartbeats inside
    the trailing window, that window, and the longest silence allowed since the newest one."""

    max_gap_s: int = DEFAULT_HEARTBEAT_MAX_GAP_S
    window_h: int = DEFAULT_HEARTBEAT_WINDOW_H
    max_silence_s: int = DEFAULT_HEARTBEAT_MAX_SILENCE_S


@dataclass(frozen=True)
class AlertSettings:
    """Whether a webhook is configured (never its URL), whether WARN checks alert, the UI."""

    webhook_set: bool = False
    on_warn: bool = False
    ui_base_url: str = DEFAULT_UI_BASE_URL


@dataclass(frozen=True)
class Settings:
    """Resolved configuration; secret values are never part of it (they stay in the environment)."""

    environment: Environment
    landing_dir: Path
    duckdb_path: Path | None = None
    schema_prefix: str = ""
    databricks_vars: tuple[str, ...] = field(default=())
    connect_timeout_s: int | None = None
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    duckdb_lock_timeout_s: int = DEFAULT_DUCKDB_LOCK_TIMEOUT_S
    alerts: AlertSettings = field(default_factory=AlertSettings)
    heartbeat: HeartbeatRules = field(default_factory=HeartbeatRules)
    staging_volume: str | None = None  # production: as set, or None when derived

    @property
    def is_local(self) -> bool:
        return self.environment is Environment.LOCAL


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def resolve_environment(environ: Mapping[str, str] | None = None) -> Environment:
    """`GRID_ENV` if set; otherwise production as soon as any `DATABRICKS_*` variable is present."""
    env = _environ(environ)
    raw = env.get("GRID_ENV", "").strip()
    if raw:
        try:
            return Environment(raw)
        except ValueError:
            shown = raw if len(raw) <= 40 else raw[:40] + "..."
            raise ConfigurationError(
                f"GRID_ENV must be 'local' or 'production', got {shown!r}."
            ) from None
    if any(name.startswith("DATABRICKS_") for name in env):
        return Environment.PRODUCTION
    return Environment.LOCAL


def missing_databricks_vars(environ: Mapping[str, str] | None = None) -> list[str]:
    """Required Databricks variables that are unset or blank, in the contract's order."""
    env = _environ(environ)
    return [name for name in REQUIRED_DATABRICKS_VARS if not env.get(name, "").strip()]


def validate_identifier(
    value: str, what: str, pattern: re.Pattern[str] = IDENTIFIER_PATTERN
) -> str:
    if not pattern.fullmatch(value):
        raise ConfigurationError(
            f"{what} must match {pattern.pattern} (letters, digits, underscores); got {value!r}."
        )
    return value


def hostname_problem(value: str) -> str | None:
    """Why `value` cannot be a DATABRICKS_SERVER_HOSTNAME, or None. Never echoes the value."""
    value = value.strip()
    if "://" in value:
        return "DATABRICKS_SERVER_HOSTNAME must be a bare host name: drop the scheme (https://)"
    if "/" in value:
        return "DATABRICKS_SERVER_HOSTNAME must be a bare host name: drop the path"
    if not HOSTNAME_PATTERN.fullmatch(value):
        return "DATABRICKS_SERVER_HOSTNAME must look like adb-123.4.azuredatabricks.net[:port]"
    return None


def connect_timeout_problem(raw: str) -> str | None:
    # isdecimal() and a length bound: "²" passes isdigit() and int() of 5,000 digits raises.
    text = raw.strip()
    if not (text.isascii() and text.isdecimal() and len(text) <= 6) or not (
        1 <= int(text) <= MAX_CONNECT_TIMEOUT_S
    ):
        return (
            f"{CONNECT_TIMEOUT_VAR} must be a whole number of seconds in 1..{MAX_CONNECT_TIMEOUT_S}"
        )
    return None


def memory_limit_problem(raw: str) -> str | None:
    """Why `raw` is not a usable DuckDB memory limit (a size of at least 64 MiB), or None."""
    size = MEMORY_SIZE_PATTERN.fullmatch(raw.strip())
    if size is None:
        return (
            f"{DUCKDB_MEMORY_LIMIT_VAR} must be a size such as 256MB or 1GiB (KB to TB, KiB to TiB)"
        )
    unit = size.group(2).upper()
    base = 1024 if "I" in unit else 1000
    number = float(raw.strip()[: size.start(2)])
    if number * base ** "KMGT".index(unit[0]) * base < MIN_DUCKDB_MEMORY_BYTES:
        return f"{DUCKDB_MEMORY_LIMIT_VAR} must be at least 64MiB"
    return None


def lock_timeout_problem(raw: str) -> str | None:
    """Why `raw` is not a usable DuckDB lock wait (whole seconds, 1 to a day), or None."""
    value = raw.strip()
    if not SECONDS_PATTERN.fullmatch(value) or not 1 <= int(value) <= MAX_DUCKDB_LOCK_TIMEOUT_S:
        return (
            f"{DUCKDB_LOCK_TIMEOUT_VAR} must be a whole number of seconds in "
            f"1..{MAX_DUCKDB_LOCK_TIMEOUT_S}; got {value[:20]!r}"
        )
    return None


def whole_number_problem(var: str, raw: str, high: int, unit: str) -> str | None:
    """Why `raw` is not a whole number of `unit` in 1..`high`, or None."""
    if SECONDS_PATTERN.fullmatch(raw) and 1 <= int(raw) <= high:
        return None
    return f"{var} must be a whole number of {unit} in 1..{high}; got {raw[:20]!r}"


def heartbeat_rules(environ: Mapping[str, str] | None = None) -> HeartbeatRules:
    """The heartbeat rules from the environment (defaults for unset or blank variables); one
    `ConfigurationError` names every malformed variable."""
    env = _environ(environ)
    bounds = {
        HEARTBEAT_MAX_GAP_VAR: (MAX_HEARTBEAT_SECONDS, "seconds"),
        HEARTBEAT_WINDOW_VAR: (MAX_HEARTBEAT_WINDOW_H, "hours"),
        HEARTBEAT_MAX_SILENCE_VAR: (MAX_HEARTBEAT_SECONDS, "seconds"),
    }
    raw = {var: env.get(var, "").strip() for var in bounds}
    problems = [
        problem
        for var, (high, unit) in bounds.items()
        if raw[var] and (problem := whole_number_problem(var, raw[var], high, unit))
    ]
    if problems:
        raise ConfigurationError("; ".join(problems) + ".")
    return HeartbeatRules(
        max_gap_s=int(raw[HEARTBEAT_MAX_GAP_VAR] or DEFAULT_HEARTBEAT_MAX_GAP_S),
        window_h=int(raw[HEARTBEAT_WINDOW_VAR] or DEFAULT_HEARTBEAT_WINDOW_H),
        max_silence_s=int(raw[HEARTBEAT_MAX_SILENCE_VAR] or DEFAULT_HEARTBEAT_MAX_SILENCE_S),
    )


def staging_volume_problem(raw: str) -> str | None:
    """Why `raw` cannot be a DATABRICKS_STAGING_VOLUME, or None."""
    if STAGING_VOLUME_PATTERN.fullmatch(raw):
        return None
    return (
        f"{STAGING_VOLUME_VAR} must be a Unity Catalog volume path "
        "/Volumes/<catalog>/<schema>/<volume> (each a plain identifier, no trailing slash); "
        f"got {raw[:120]!r}"
    )


def derived_staging_volume(catalog: str, schema_prefix: str = "") -> str:
    """The staging volume used when DATABRICKS_STAGING_VOLUME is unset."""
    return f"/Volumes/{catalog}/{schema_prefix}bronze/{DERIVED_STAGING_VOLUME}"


def databricks_problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """Everything wrong with the production variables, one sentence each, no values echoed."""
    env = _environ(environ)
    problems: list[str] = []
    missing = missing_databricks_vars(env)
    if missing:
        problems.append("these required variables are missing or empty: " + ", ".join(missing))
    hostname = env.get("DATABRICKS_SERVER_HOSTNAME", "").strip()
    if hostname and (problem := hostname_problem(hostname)):
        problems.append(problem)
    http_path = env.get("DATABRICKS_HTTP_PATH", "").strip()
    if http_path and (not http_path.startswith("/") or any(c.isspace() for c in http_path)):
        problems.append("DATABRICKS_HTTP_PATH must look like /sql/1.0/warehouses/<id>")
    catalog = env.get("DATABRICKS_CATALOG", "").strip()
    if catalog and not IDENTIFIER_PATTERN.fullmatch(catalog):
        problems.append(
            "DATABRICKS_CATALOG must be a plain identifier (letters, digits, underscores)"
        )
    prefix = env.get(SCHEMA_PREFIX_VAR, "").strip()
    if not PREFIX_PATTERN.fullmatch(prefix):
        problems.append(
            f"{SCHEMA_PREFIX_VAR} may only hold letters, digits and underscores (64 at most)"
        )
    timeout = env.get(CONNECT_TIMEOUT_VAR, "").strip()
    if timeout and (problem := connect_timeout_problem(timeout)):
        problems.append(problem)
    volume = env.get(STAGING_VOLUME_VAR, "").strip()
    if volume and (problem := staging_volume_problem(volume)):
        problems.append(problem)
    return problems


def http_url_problem(var: str, raw: str, *, secret: bool) -> str | None:
    """Why `raw` is not an http(s) URL with a host, or None. A secret's value is never echoed."""
    try:
        parts = urlsplit(raw)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a malformed host or port
        usable = False
    if usable and not any(c.isspace() for c in raw):
        return None
    shown = "" if secret else f"; got {raw[:80]!r}"
    return f"{var} must be an http:// or https:// URL with a host{shown}"


def alert_settings(environ: Mapping[str, str] | None = None) -> AlertSettings:
    """The alert variables, checked; one `ConfigurationError` names every malformed one."""
    env = _environ(environ)
    problems: list[str] = []
    url = env.get(ALERT_WEBHOOK_VAR, "").strip()
    if url:
        register_secret_url(url)  # before anything could echo it
        if problem := http_url_problem(ALERT_WEBHOOK_VAR, url, secret=True):
            problems.append(problem)
    on_warn = env.get(ALERT_ON_WARN_VAR, "").strip().lower()
    if on_warn and on_warn not in TRUE_WORDS | FALSE_WORDS:
        problems.append(
            f"{ALERT_ON_WARN_VAR} must be true or false (1/0, yes/no, on/off); got {on_warn[:20]!r}"
        )
    ui_base_url = env.get(UI_BASE_URL_VAR, "").strip() or DEFAULT_UI_BASE_URL
    if problem := http_url_problem(UI_BASE_URL_VAR, ui_base_url, secret=False):
        problems.append(problem)
    if problems:
        raise ConfigurationError("; ".join(problems) + ".")
    return AlertSettings(bool(url), on_warn in TRUE_WORDS, ui_base_url.rstrip("/"))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the environment; raise one `ConfigurationError` naming every problem."""
    env = _environ(environ)
    environment = resolve_environment(env)
    alerts = alert_settings(env)
    heartbeat = heartbeat_rules(env)
    landing_raw = env.get("GRID_LANDING_DIR", "").strip()
    landing_dir = Path(landing_raw).expanduser() if landing_raw else DEFAULT_LANDING_DIR

    if environment is Environment.LOCAL:
        db_raw = env.get("GRID_DUCKDB_PATH", "").strip()
        duckdb_path = Path(db_raw).expanduser() if db_raw else DEFAULT_DUCKDB_PATH
        memory_limit = env.get(DUCKDB_MEMORY_LIMIT_VAR, "").strip() or DEFAULT_DUCKDB_MEMORY_LIMIT
        if problem := memory_limit_problem(memory_limit):
            raise ConfigurationError(problem)
        lock_timeout = env.get(DUCKDB_LOCK_TIMEOUT_VAR, "").strip()
        if lock_timeout and (problem := lock_timeout_problem(lock_timeout)):
            raise ConfigurationError(problem)
        return Settings(
            environment,
            landing_dir.resolve(),
            duckdb_path=duckdb_path.resolve(),
            duckdb_memory_limit=memory_limit,
            duckdb_lock_timeout_s=int(lock_timeout or DEFAULT_DUCKDB_LOCK_TIMEOUT_S),
            alerts=alerts,
            heartbeat=heartbeat,
        )

    problems = databricks_problems(env)
    if problems:
        why = (
            "GRID_ENV is production"
            if env.get("GRID_ENV", "").strip()
            else ("a DATABRICKS_* variable is set, so the environment is production")
        )
        raise ConfigurationError(
            f"{why}, but the Databricks configuration is unusable: "
            + "; ".join(problems)
            + ". Production never falls back to a local database; set them (see README)."
        )
    timeout = env.get(CONNECT_TIMEOUT_VAR, "").strip()
    return Settings(
        environment,
        landing_dir,
        schema_prefix=env.get(SCHEMA_PREFIX_VAR, "").strip(),
        databricks_vars=REQUIRED_DATABRICKS_VARS,
        connect_timeout_s=int(timeout) if timeout else None,
        alerts=alerts,
        heartbeat=heartbeat,
        staging_volume=env.get(STAGING_VOLUME_VAR, "").strip() or None,
    )
