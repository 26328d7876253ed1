"""The code location: assembles each layer's definitions and binds resources once.

Settings are read here, when the location loads, so a production deploy with missing secrets
fails at load with one message naming every missing variable (never their values).
"""

from __future__ import annotations

import dagster as dg

from grid_assets.defs.alerts import alerts_sensor
from grid_assets.defs.bronze.assets import bronze_ingest
from grid_assets.defs.bronze.checks import bronze_checks
from grid_assets.defs.bronze.schedules import freshness_checks_schedule, nightly_medallion_schedule
from grid_assets.defs.bronze.sensors import bronze_sensors
from grid_assets.defs.gold.assets import gold_assets
from grid_assets.defs.gold.checks import gold_checks
from grid_assets.defs.jobs import freshness_checks_job, medallion_job, silver_gold_job
from grid_assets.defs.resources import resources
from grid_assets.defs.silver.assets import silver_apply_events
from grid_assets.defs.silver.checks import silver_checks
from grid_assets.defs.silver.sensors import silver_sensors
from grid_assets.logging_redaction import install_redaction
from grid_assets.settings import Settings, load_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    layers = dg.Definitions.merge(
        dg.Definitions(assets=[bronze_ingest], asset_checks=bronze_checks, sensors=bronze_sensors),
        dg.Definitions(
            assets=[silver_apply_events], asset_checks=silver_checks, sensors=silver_sensors
        ),
        dg.Definitions(assets=gold_assets, asset_checks=gold_checks),
    )
    return dg.Definitions.merge(
        layers,
        dg.Definitions(
            jobs=[medallion_job, silver_gold_job, freshness_checks_job],
            schedules=[nightly_medallion_schedule, freshness_checks_schedule],
            sensors=[alerts_sensor],
            resources=resources(settings),
            # The embedded file admits one writer process at a time: run steps in one process.
            executor=dg.in_process_executor if settings.is_local else dg.multiprocess_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    install_redaction()
    return build_definitions(load_settings())
