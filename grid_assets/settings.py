"""The one place that decides where the lakehouse lives: local DuckDB or a Databricks warehouse.

Nothing here reads the environment at import time; callers ask for `load_settings()` when the code
location is built, so a misconfigured production deploy fails at load with one clear message.
The rules for each variable are in `grid_assets.config`; this module decides which apply.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from grid_assets.config import (
    ALERT_WEBHOOK_VAR,
    DEFAULT_DUCKDB_LOCK_TIMEOUT_S,
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_LANDING_DIR,
    ENV_VAR,
    LANDING_DIR_VAR,
    AlertSettings,
    ConfigurationError,
    DatabricksConfig,
    HeartbeatRules,
    LocalConfig,
)
from grid_assets.logging_redaction import register_secret_url


class Environment(StrEnum):
    LOCAL = "local"
    PRODUCTION = "production"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration; secret values are never part of it (they stay in the environment,
    and the resources read them through `dg.EnvVar`)."""

    environment: Environment
    landing_dir: Path
    duckdb_path: Path | None = None
    schema_prefix: str = ""
    connect_timeout_s: int | None = None
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    duckdb_lock_timeout_s: int = DEFAULT_DUCKDB_LOCK_TIMEOUT_S
    alerts: AlertSettings = field(default_factory=lambda: AlertSettings.from_environ({}))
    heartbeat: HeartbeatRules = field(default_factory=lambda: HeartbeatRules.from_environ({}))
    staging_volume: str | None = None  # production: as set, or None when derived

    @property
    def is_local(self) -> bool:
        return self.environment is Environment.LOCAL


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def resolve_environment(environ: Mapping[str, str] | None = None) -> Environment:
    """`GRID_ENV` if set; otherwise production as soon as any `DATABRICKS_*` variable is present."""
    env = _environ(environ)
    raw = env.get(ENV_VAR, "").strip()
    if raw:
        try:
            return Environment(raw)
        except ValueError:
            shown = raw if len(raw) <= 40 else raw[:40] + "..."
            raise ConfigurationError(
                f"{ENV_VAR} must be 'local' or 'production', got {shown!r}."
            ) from None
    if any(name.startswith("DATABRICKS_") for name in env):
        return Environment.PRODUCTION
    return Environment.LOCAL


def alert_settings(environ: Mapping[str, str] | None = None) -> AlertSettings:
    """The alert variables, checked; the webhook URL is registered as a secret before anything
    could echo it."""
    env = _environ(environ)
    if url := env.get(ALERT_WEBHOOK_VAR, "").strip():
        register_secret_url(url)
    return AlertSettings.from_environ(env)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the environment; raise one `ConfigurationError` naming every problem."""
    env = _environ(environ)
    environment = resolve_environment(env)
    alerts = alert_settings(env)
    heartbeat = HeartbeatRules.from_environ(env)
    landing_raw = env.get(LANDING_DIR_VAR, "").strip()
    landing_dir = Path(landing_raw).expanduser() if landing_raw else DEFAULT_LANDING_DIR

    if environment is Environment.LOCAL:
        local = LocalConfig.from_environ(env)
        return Settings(
            environment,
            landing_dir.resolve(),
            duckdb_path=local.duckdb_path.expanduser().resolve(),
            duckdb_memory_limit=local.memory_limit,
            duckdb_lock_timeout_s=local.lock_timeout_s,
            alerts=alerts,
            heartbeat=heartbeat,
        )

    try:
        databricks = DatabricksConfig.from_environ(env)
    except ConfigurationError as exc:
        why = (
            f"{ENV_VAR} is production"
            if env.get(ENV_VAR, "").strip()
            else "a DATABRICKS_* variable is set, so the environment is production"
        )
        raise ConfigurationError(
            f"{why}, but the Databricks configuration is unusable: {str(exc).rstrip('.')}. "
            "Production never falls back to a local database; set them (see README)."
        ) from None
    given_timeout = "connect_timeout_s" in databricks.model_fields_set
    return Settings(
        environment,
        landing_dir,
        schema_prefix=databricks.schema_prefix,
        connect_timeout_s=databricks.connect_timeout_s if given_timeout else None,
        alerts=alerts,
        heartbeat=heartbeat,
        staging_volume=databricks.staging_volume,
    )
