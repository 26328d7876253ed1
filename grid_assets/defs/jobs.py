"""Jobs over the asset graph (each includes its assets' checks)."""

from __future__ import annotations

import dagster as dg

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
