"""Silver assets: current state of products, orders and order lines, plus what was quarantined."""

import dagster as dg
from pydantic import Field

from grid_assets.defs.constants import EVENTS_KEY, LAKEHOUSE_WRITER_POOL, silver_key
from grid_assets.defs.metadata import materialized_metadata, row_counts, table_spec
from grid_assets.etl.silver import apply_new_events, reset
from grid_assets.models.silver import EventLedger, Order, OrderItem, Product, Quarantine
from grid_assets.resources.lakehouse import LakehouseResource

SILVER_MODELS = {
    "products": Product,
    "orders": Order,
    "order_items": OrderItem,
    "quarantine": Quarantine,
    "event_ledger": EventLedger,
}


class SilverApplyConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="Rebuild Silver from all of Bronze: reset Silver's cursor and empty its "
        "tables in one unit of work, then apply every event (Gold follows from Silver).",
    )


@dg.multi_asset(
    name="silver_apply_events",
    pool=LAKEHOUSE_WRITER_POOL,
    specs=[
        table_spec(model, deps=[EVENTS_KEY], kinds=["pandera"]) for model in SILVER_MODELS.values()
    ],
)
def silver_apply_events(
    context: dg.AssetExecutionContext, config: SilverApplyConfig, lakehouse: LakehouseResource
):
    """Validate and apply every Bronze event not applied yet, latest-wins by occurred_at."""
    lh = lakehouse.get_lakehouse()
    lh.create_tables()
    if config.full_refresh:
        reset(lh, run_id=context.run.run_id)
        context.log.info("Silver emptied and its cursor reset: rebuilding from all of Bronze")
    result = apply_new_events(lh, run_id=context.run.run_id)
    context.log.info(f"Silver: read {result.events_read} events: {result.outcomes}")
    rows = row_counts(lh, [model.__table__ for model in SILVER_MODELS.values()])
    for name, model in SILVER_MODELS.items():
        yield dg.MaterializeResult(
            asset_key=silver_key(name),
            metadata=materialized_metadata(
                model.__table__,
                rows[model.__table__],
                events_read=result.events_read,
                rows_staged=result.rows_staged.get(f"silver.{name}", 0),
                outcomes=dg.MetadataValue.json(result.outcomes),
                cursor_ingest_seq=result.cursor,
            ),
        )
