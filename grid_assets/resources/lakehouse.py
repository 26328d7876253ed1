"""The Dagster resource that builds the lakehouse (`grid_assets.lakehouse`) from configuration."""

from __future__ import annotations

import uuid

import dagster as dg
from pydantic import Field, PrivateAttr

from grid_assets.config import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_DUCKDB_LOCK_TIMEOUT_S,
    DEFAULT_DUCKDB_MEMORY_LIMIT,
    DEFAULT_DUCKDB_PATH,
    DatabricksConfig,
    LocalConfig,
)
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.databricks import databricks_lakehouse
from grid_assets.lakehouse.duckdb import local_lakehouse


class LakehouseResource(dg.ConfigurableResource):
    """Where Bronze, Silver and Gold live: an embedded DuckDB file (`local`) or a Databricks SQL
    warehouse (`production`). The engine is created once per process and shared by every asset,
    check and sensor in it; secrets come from environment variables and are never logged.

    Every field is checked by the rule of its variable in `grid_assets.config`, the same rules
    the code location applied when it loaded."""

    environment: str = "local"
    duckdb_path: str = str(DEFAULT_DUCKDB_PATH)
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT
    # Local only: how long to wait for DuckDB's file lock (GRID_DUCKDB_LOCK_TIMEOUT_S).
    lock_timeout_seconds: int = DEFAULT_DUCKDB_LOCK_TIMEOUT_S
    server_hostname: str | None = None
    http_path: str | None = None
    # repr=False: the resolved resource's repr (in a log line or an error) never shows the token.
    access_token: str | None = Field(
        default=None, repr=False, description="Databricks token, as EnvVar('DATABRICKS_TOKEN')."
    )
    catalog: str | None = None
    schema_prefix: str = ""
    connect_timeout_seconds: int = DEFAULT_CONNECT_TIMEOUT_S
    # Production: the volume bulk writes travel through (DATABRICKS_STAGING_VOLUME); None
    # derives /Volumes/<catalog>/<prefix>bronze/grid_staging, created with the schemas.
    staging_volume: str | None = None
    _run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Staged file names carry the run id, so a retried step finds its own batches.
        self._run_id = context.run.run_id if context.run is not None else None

    def local_config(self, lock_timeout_seconds: int | None = None) -> LocalConfig:
        return LocalConfig.checked(
            duckdb_path=self.duckdb_path,
            memory_limit=self.duckdb_memory_limit,
            lock_timeout_s=lock_timeout_seconds or self.lock_timeout_seconds,
        )

    def databricks_config(self) -> DatabricksConfig:
        """The production fields through `config.DatabricksConfig`: one `ConfigurationError`
        names every missing or malformed variable (they are bound as `dg.EnvVar`s, so each
        step process reads its own environment)."""
        given = {
            "server_hostname": self.server_hostname,
            "http_path": self.http_path,
            "access_token": self.access_token,
            "catalog": self.catalog,
            "schema_prefix": self.schema_prefix,
            "connect_timeout_s": self.connect_timeout_seconds,
            "staging_volume": self.staging_volume,
        }
        return DatabricksConfig.checked(
            **{k: v for k, v in given.items() if not (isinstance(v, str) and not v.strip())}
        )

    def get_lakehouse(self, lock_timeout_seconds: int | None = None) -> Lakehouse:
        """The lakehouse; `lock_timeout_seconds` overrides the DuckDB lock wait for a caller
        that would rather give up sooner (it has no effect on Databricks)."""
        if self.environment == "local":
            return local_lakehouse(self.local_config(lock_timeout_seconds))
        run_id = self._run_id or f"adhoc-{uuid.uuid4().hex[:12]}"
        return databricks_lakehouse(self.databricks_config(), run_id)
