"""Gold assets: analytical tables recomputed inside the engine from Silver."""

from datetime import timedelta

import dagster as dg
from sqlalchemy import literal

from grid_assets.defs.constants import LAKEHOUSE_WRITER_POOL, silver_key
from grid_assets.defs.metadata import column_lineage, materialized_metadata, table_spec
from grid_assets.etl.gold import GOLD_TABLES, rebuild
from grid_assets.models.base import Base, Instant
from grid_assets.resources.lakehouse import LakehouseResource

# Gold reads products, orders and order lines; it also waits for the ledger, so that Silver
# failing to reconcile with Bronze (`events_reconcile`, blocking) stops Gold like a broken rule.
GOLD_DEPS = [
    silver_key("products"),
    silver_key("orders"),
    silver_key("order_items"),
    silver_key("event_ledger"),
]
# Gold is rebuilt by the nightly run (02:00 UTC, bronze/schedules.py), which takes minutes (README,
# Performance): a Gold table warns when its latest build is over 25 h old (tonight's build not
# done an hour after it was due) and fails past 26 h.
GOLD_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=26), warn_window=timedelta(hours=25)
)


def _model_for(name: str) -> type:
    return next(
        m.class_
        for m in Base.registry.mappers
        if m.class_.__tablename__ == name and m.local_table.schema == "gold"
    )


def _gold_asset(name: str) -> dg.AssetsDefinition:
    table, build = GOLD_TABLES[name]
    # Read off the very SELECT the rebuild runs; computed_at is bound per run and has no source.
    lineage = column_lineage(build(literal(None, Instant)))

    @dg.multi_asset(
        name=f"gold_{name}",
        specs=[
            table_spec(_model_for(name), deps=GOLD_DEPS, lineage=lineage).replace_attributes(
                freshness_policy=GOLD_FRESHNESS
            )
        ],
        pool=LAKEHOUSE_WRITER_POOL,
    )
    def _asset(
        context: dg.AssetExecutionContext, lakehouse: LakehouseResource
    ) -> dg.MaterializeResult:
        lh = lakehouse.get_lakehouse()
        lh.create_tables()
        rows = rebuild(lh, name, run_id=context.run.run_id)
        return dg.MaterializeResult(metadata=materialized_metadata(table, rows, lineage))

    return _asset


gold_assets = [_gold_asset(name) for name in GOLD_TABLES]
