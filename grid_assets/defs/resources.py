"""Resources bound once for the whole code location."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
from pydantic import Field

from grid_assets.config import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_HEARTBEAT_MAX_GAP_S,
    DEFAULT_HEARTBEAT_MAX_SILENCE_S,
    DEFAULT_HEARTBEAT_WINDOW_H,
    DEFAULT_LANDING_DIR,
    HeartbeatHours,
    HeartbeatSeconds,
)
from grid_assets.defs.alerts import alert_webhook_resource
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.settings import Settings


class LandingFolder(dg.ConfigurableResource):
    """The folder GRID drops raw NDJSON event files into (`GRID_LANDING_DIR`)."""

    path: str = str(DEFAULT_LANDING_DIR)


class HeartbeatPolicy(dg.ConfigurableResource):
    """When GRID counts as silent, for the `heartbeat_gaps` check: the one place that holds the
    rules (`GRID_HEARTBEAT_MAX_GAP_S`, `GRID_HEARTBEAT_WINDOW_H`, `GRID_HEARTBEAT_MAX_SILENCE_S`;
    their bounds are the types of `grid_assets.config`, checked when the code location loads)."""

    max_gap_seconds: HeartbeatSeconds = Field(
        default=DEFAULT_HEARTBEAT_MAX_GAP_S,
        description="Longest gap allowed between consecutive heartbeats inside the window.",
    )
    window_hours: HeartbeatHours = Field(
        default=DEFAULT_HEARTBEAT_WINDOW_H,
        description="The trailing window, counted back from now, whose gaps count.",
    )
    max_silence_seconds: HeartbeatSeconds = Field(
        default=DEFAULT_HEARTBEAT_MAX_SILENCE_S,
        description="Longest silence allowed between the newest heartbeat and now.",
    )

    def window_start(self, now: datetime) -> datetime:
        return now - timedelta(hours=self.window_hours)


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
    timeout = settings.connect_timeout_s or DEFAULT_CONNECT_TIMEOUT_S
    return LakehouseResource(
        environment="production",
        server_hostname=dg.EnvVar("DATABRICKS_SERVER_HOSTNAME"),
        http_path=dg.EnvVar("DATABRICKS_HTTP_PATH"),
        access_token=dg.EnvVar("DATABRICKS_TOKEN"),
        catalog=dg.EnvVar("DATABRICKS_CATALOG"),
        schema_prefix=settings.schema_prefix,
        connect_timeout_seconds=timeout,
        staging_volume=settings.staging_volume,
    )


def heartbeat_policy(settings: Settings) -> HeartbeatPolicy:
    rules = settings.heartbeat
    return HeartbeatPolicy(
        max_gap_seconds=rules.max_gap_s,
        window_hours=rules.window_h,
        max_silence_seconds=rules.max_silence_s,
    )


def resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "lakehouse": lakehouse_resource(settings),
        "landing": LandingFolder(path=str(settings.landing_dir)),
        "alert_webhook": alert_webhook_resource(settings),
        "heartbeat_policy": heartbeat_policy(settings),
    }
