"""Tier 4: what the UI shows about each asset (owners, kinds, tags, column descriptions, Gold's
column lineage) comes from the models and the SQL, and is complete."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import column, func, select

from grid_assets.definitions import build_definitions
from grid_assets.models import metadata
from grid_assets.models.gold import OrderStatusCounts
from grid_assets.models.silver import Order, OrderItem
from grid_assets.queries.lineage import column_sources
from grid_assets_tests.conftest import SAMPLES_DIR, local_settings, run_medallion

PII_COLUMNS = {
    "bronze/events": {"payload"},
    "bronze/rejected_events": {"raw_line"},
    "silver/orders": {"customer_id"},
}


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("metadata")
    defs = build_definitions(local_settings(tmp / "landing", tmp / "db.duckdb"))
    return defs.resolve_asset_graph()


def nodes(graph):
    return [graph.get(key) for key in graph.get_all_asset_keys()]


def schema_of(node) -> dg.TableSchema:
    schema = node.metadata["dagster/column_schema"]
    assert isinstance(schema, dg.TableSchema)
    return schema


def test_every_asset_is_owned_kinded_and_tagged_by_layer(graph) -> None:
    for node in nodes(graph):
        name = node.key.to_user_string()
        layer = node.key.path[0]
        assert node.owners == ["team:data-platform"], name
        kinds = {tag.removeprefix("dagster/kind/") for tag in node.tags if "kind/" in tag}
        expected = {"duckdb", "databricks", "table"} | ({"pandera"} if layer == "silver" else set())
        assert kinds == expected, name
        assert node.tags["layer"] == layer == node.group_name, name
        assert (node.tags.get("pii") == "true") == (name in PII_COLUMNS), name


def test_every_column_has_the_description_its_model_gives(graph) -> None:
    tables = {table.fullname: table for table in metadata.sorted_tables}
    for node in nodes(graph):
        table = tables[".".join(node.key.path)]
        columns = schema_of(node).columns
        assert [c.name for c in columns] == [c.name for c in table.columns]
        for col in columns:
            assert col.description and col.description.strip(), (node.key, col.name)
            assert col.description == table.c[col.name].comment
            pii = col.name in PII_COLUMNS.get(node.key.to_user_string(), set())
            assert (col.tags.get("pii") == "true") == pii, (node.key, col.name)


def lineage_of(node) -> dict[str, set[str]]:
    lineage = node.metadata["dagster/column_lineage"]
    assert isinstance(lineage, dg.TableColumnLineage)
    return {
        name: {f"{dep.asset_key.to_user_string()}.{dep.column_name}" for dep in deps}
        for name, deps in lineage.deps_by_column.items()
    }


def test_gold_column_lineage_points_at_existing_silver_columns(graph) -> None:
    silver_columns = {
        f"{node.key.to_user_string()}.{col.name}"
        for node in nodes(graph)
        if node.group_name == "silver"
        for col in schema_of(node).columns
    }
    gold = [node for node in nodes(graph) if node.group_name == "gold"]
    assert len(gold) == 4
    for node in gold:
        lineage = lineage_of(node)
        # Every column but the rebuild's own timestamp is computed from Silver.
        assert set(lineage) == {c.name for c in schema_of(node).columns} - {"computed_at"}
        for name, deps in lineage.items():
            assert deps and deps <= silver_columns, (node.key, name, deps - silver_columns)
        upstream = {dep.rsplit(".", 1)[0] for deps in lineage.values() for dep in deps}
        assert upstream <= {key.to_user_string() for key in graph.get(node.key).parent_keys}


def test_revenue_by_category_lineage_is_what_its_sql_computes(graph) -> None:
    lineage = lineage_of(graph.get(dg.AssetKey(["gold", "revenue_by_category"])))
    items = "silver/order_items"
    assert lineage == {
        "revenue": {f"{items}.quantity", f"{items}.unit_price", f"{items}.discount"},
        "currency": {"silver/orders.currency"},
        "category": {"silver/products.category"},
        "order_count": {f"{items}.order_id"},
        "units": {f"{items}.quantity"},
    }
    daily = lineage_of(graph.get(dg.AssetKey(["gold", "daily_revenue"])))
    assert daily["order_date"] == {"silver/orders.placed_at"}
    assert daily["average_order_value"] == daily["revenue"] | daily["order_count"]
    ranked = lineage_of(graph.get(dg.AssetKey(["gold", "product_revenue"])))
    assert ranked["revenue_rank"] == (
        ranked["revenue"] | ranked["currency"] | {f"{items}.product_id"}
    )


def test_column_sources_follows_subqueries_aliases_and_counts() -> None:
    orders = Order.__table__.alias("o")
    inner = select(orders.c.status, orders.c.currency.label("cur")).subquery("s")
    assert [c.name for c in column_sources(select(inner.c.cur))["cur"]] == ["currency"]
    # count(*) counts the rows of what it reads: it depends on that table's key.
    counted = select(func.count().label("n")).select_from(OrderItem.__table__)
    assert {c.name for c in column_sources(counted)["n"]} == {"order_id", "line_number"}
    status = OrderStatusCounts.__table__.c.status
    assert column_sources(select(status))["status"] == [status]


def test_column_sources_refuses_what_it_cannot_trace() -> None:
    with pytest.raises(ValueError, match="belongs to no table"):
        column_sources(select(column("loose")))
    counted = select(func.count().label("n")).select_from(
        select(Order.__table__.c.order_id).subquery()
    )
    with pytest.raises(ValueError, match=r"count\(\*\)"):
        column_sources(counted)


def test_materialized_gold_metadata_repeats_the_lineage(tmp_path: Path) -> None:
    """A materialization carries the same lineage and descriptions as the definition."""
    result = run_medallion(SAMPLES_DIR, tmp_path / "db.duckdb")
    assert result.success
    key = dg.AssetKey(["gold", "revenue_by_category"])
    [event] = result.asset_materializations_for_node("gold_revenue_by_category")
    assert event.asset_key == key
    lineage = event.metadata["dagster/column_lineage"]
    assert isinstance(lineage, dg.TableColumnLineageMetadataValue)
    assert set(lineage.column_lineage.deps_by_column) == {
        "category",
        "currency",
        "revenue",
        "order_count",
        "units",
    }
    columns = event.metadata["dagster/column_schema"].schema.columns  # type: ignore[attr-defined]
    assert all(c.description for c in columns)
