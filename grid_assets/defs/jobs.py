"""Jobs over the asset graph (each includes its assets' checks)."""

from __future__ import annotations

import dagster as dg

from grid_assets.defs.bronze.checks import events_freshness, heartbeat_gaps

medallion_job = dg.define_asset_job(
    "medallion_job",
    selection=dg.AssetSelection.all(),
    description="Bronze ingestion, Silver state and Gold aggregates, with every check.",
)
silver_gold_job = dg.define_asset_job(
    "silver_gold_job",
    selection=dg.AssetSelection.groups("silver", "gold"),
    description="Apply Bronze events not yet in Silver and refresh Gold.",
)
freshness_checks_job = dg.define_asset_job(
    "freshness_checks_job",
    # Checks only: evaluating them reads Bronze and materializes nothing.
    selection=dg.AssetSelection.checks(heartbeat_gaps, events_freshness),
    description="Is GRID still talking: the heartbeat and freshness checks of bronze/events, "
    "evaluated on what Bronze holds, without ingesting or materializing anything.",
)
