"""The one place that decides where the lakehouse lives: local DuckDB or a Databricks warehouse.

Nothing here reads the environment at import time; callers ask for `load_settings()` when the code
location is built, so a misconfigured production deploy fails at load with one clear message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LANDING_DIR = PROJECT_ROOT / "data" / "landing"
DEFAULT_DUCKDB_PATH = PROJECT_ROOT / "data" / "lakehouse" / "grid.duckdb"

REQUIRED_DATABRICKS_VARS = (
    "DATABRICKS_SERVER_HOSTNAME",
    "DATABRICKS_HTTP_PATH",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CATALOG",
)
# Catalog and schema names end up inside DDL, so only plain identifiers are accepted.
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_]{0,64}$")


class ConfigurationError(RuntimeError):
    """The environment cannot describe a working lakehouse; raised before anything connects."""


class Environment(StrEnum):
    LOCAL = "local"
    PRODUCTION = "production"


@dataclass(frozen=True)
class Settings:
    """Resolved configuration; secret values are never part of it (they stay in the environment)."""

    environment: Environment
    landing_dir: Path
    duckdb_path: Path | None = None
    schema_prefix: str = ""
    databricks_vars: tuple[str, ...] = field(default=())

    @property
    def is_local(self) -> bool:
        return self.environment is Environment.LOCAL


def resolve_environment(environ: Mapping[str, str] | None = None) -> Environment:
    """`GRID_ENV` if set; otherwise production as soon as any `DATABRICKS_*` variable is present."""
    env = os.environ if environ is None else environ
    raw = env.get("GRID_ENV", "").strip()
    if raw:
        try:
            return Environment(raw.lower())
        except ValueError:
            raise ConfigurationError(
                f"GRID_ENV must be 'local' or 'production', got {raw!r}."
            ) from None
    if any(name.startswith("DATABRICKS_") for name in env):
        return Environment.PRODUCTION
    return Environment.LOCAL


def missing_databricks_vars(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    return [name for name in REQUIRED_DATABRICKS_VARS if not env.get(name, "").strip()]


def validate_identifier(value: str, what: str, pattern: re.Pattern[str] = IDENTIFIER_PATTERN) -> str:
    if not pattern.fullmatch(value):
        raise ConfigurationError(
            f"{what} must match {pattern.pattern} (letters, digits, underscores); got {value!r}."
        )
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the environment; raise one `ConfigurationError` naming every problem."""
    env = os.environ if environ is None else environ
    environment = resolve_environment(env)
    landing_raw = env.get("GRID_LANDING_DIR", "").strip()
    landing_dir = Path(landing_raw).expanduser() if landing_raw else DEFAULT_LANDING_DIR

    if environment is Environment.LOCAL:
        db_raw = env.get("GRID_DUCKDB_PATH", "").strip()
        duckdb_path = Path(db_raw).expanduser() if db_raw else DEFAULT_DUCKDB_PATH
        return Settings(environment, landing_dir.resolve(), duckdb_path=duckdb_path.resolve())

    missing = missing_databricks_vars(env)
    if missing:
        raise ConfigurationError(
            "GRID_ENV is production but these required variables are missing or empty: "
            + ", ".join(missing)
            + ". Production never falls back to a local database; set them (see README)."
        )
    validate_identifier(env["DATABRICKS_CATALOG"].strip(), "DATABRICKS_CATALOG")
    prefix = env.get("DATABRICKS_SCHEMA_PREFIX", "").strip()
    validate_identifier(prefix, "DATABRICKS_SCHEMA_PREFIX", PREFIX_PATTERN)
    return Settings(
        environment,
        landing_dir,
        schema_prefix=prefix,
        databricks_vars=REQUIRED_DATABRICKS_VARS,
    )
