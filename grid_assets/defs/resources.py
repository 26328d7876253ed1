"""Resources bound once for the whole code location."""

from __future__ import annotations

import dagster as dg

from grid_assets.defs.alerts import alert_webhook_resource
from grid_assets.resources import engines
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.settings import DEFAULT_LANDING_DIR, Settings


class LandingFolder(dg.ConfigurableResource):
    """The folder GRID drops raw NDJSON event files into (`GRID_LANDING_DIR`)."""

    path: str = str(DEFAULT_LANDING_DIR)


def lakehouse_resource(settings: Settings) -> LakehouseResource:
    if settings.is_local:
        return LakehouseResource(
            environment="local",
            duckdb_path=str(settings.duckdb_path),
            duckdb_memory_limit=settings.duckdb_memory_limit,
            lock_timeout_seconds=settings.duckdb_lock_timeout_s,
        )
    # EnvVar keeps the values out of the resource config the UI shows (it displays
    # {"env": "DATABRICKS_TOKEN"}), and each step process reads them from its own environment.
    # load_settings() has already checked that every one is set and non-empty.
    timeout = settings.connect_timeout_s or engines.DEFAULT_CONNECT_TIMEOUT_S
    return LakehouseResource(
        environment="production",
        server_hostname=dg.EnvVar("DATABRICKS_SERVER_HOSTNAME"),
        http_path=dg.EnvVar("DATABRICKS_HTTP_PATH"),
        access_token=dg.EnvVar("DATABRICKS_TOKEN"),
        catalog=dg.EnvVar("DATABRICKS_CATALOG"),
        schema_prefix=settings.schema_prefix,
        connect_timeout_seconds=timeout,
    )


def resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "lakehouse": lakehouse_resource(settings),
        "landing": LandingFolder(path=str(settings.landing_dir)),
        "alert_webhook": alert_webhook_resource(settings),
    }
