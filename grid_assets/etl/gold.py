"""Gold: recompute each analytical table inside the engine and swap it in atomically."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Select, Table, literal

from grid_assets.etl import pipeline_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.base import Instant
from grid_assets.models.gold import (
    DailyRevenue,
    OrderStatusCounts,
    ProductRevenue,
    RevenueByCategory,
)
from grid_assets.queries import gold as q

GOLD_TABLES: dict[str, tuple[Table, Callable[..., Select]]] = {
    "revenue_by_category": (RevenueByCategory.__table__, q.revenue_by_category),
    "daily_revenue": (DailyRevenue.__table__, q.daily_revenue),
    "order_status_counts": (OrderStatusCounts.__table__, q.order_status_counts),
    "product_revenue": (ProductRevenue.__table__, q.product_revenue),
}


def rebuild(lakehouse: Lakehouse, name: str, run_id: str | None = None) -> int:
    """Replace `gold.<name>` with a fresh aggregate of Silver; returns its row count."""
    table, build = GOLD_TABLES[name]
    now = datetime.now(UTC)
    with lakehouse.begin() as conn:
        lakehouse.replace(conn, table, build(literal(now, Instant)))
        rows = lakehouse.count(conn, table)
        pipeline_events.table_written(conn, f"gold.{name}", rows, run_id, now)
    return rows
