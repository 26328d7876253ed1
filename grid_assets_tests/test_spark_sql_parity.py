"""Gold, Silver and check queries compiled by the real Databricks dialect, run by a real Spark
SQL engine, and compared with the same statements run on DuckDB.

Both engines get the same rows: the pipeline runs on DuckDB, and every row the queries read is
copied into Spark tables created from the Databricks DDL. A dialect or engine difference (a
function Spark lacks, a decimal that loses scale, a division that rounds differently, a date
taken in the wrong time zone) shows up as an error or a different row.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from databricks.sqlalchemy import DatabricksDialect
from sqlalchemy import Select, Table, delete, func, literal, select
from sqlalchemy.sql.util import find_tables

from grid_assets.etl import gold as gold_etl
from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.silver import apply_new_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.base import LAYERS, Base, Instant
from grid_assets.models.silver import EventLedger
from grid_assets.queries import checks
from grid_assets.queries import gold as gold_queries
from grid_assets.queries import silver as silver_queries
from grid_assets.queries.dialect import InsertOverwrite
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.northwind import (
    find_northwind_dir,
    missing_northwind_message,
    running_in_ci,
    write_northwind_events,
)
from grid_assets_tests.silver_breaks import SILVER_BREAKS
from grid_assets_tests.spark_support import (
    comparable_rows,
    databricks_create_table,
    databricks_sql,
    delta_ddl_to_parquet,
    insert_statements,
)
from grid_sim import generate_traffic

pytest.importorskip("pyspark")

pytestmark = pytest.mark.spark

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "data" / "samples"
NOW = datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=UTC)
COMPUTED_AT = "computed_at"


def _samples_present() -> bool:
    return SAMPLES_DIR.is_dir() and any(SAMPLES_DIR.glob("*.ndjson*"))


# Northwind: real third-party orders, no cancellations. The second case is GRID-shaped traffic
# with cancellations, unknown products, late, rejected and quarantined events: the committed
# samples, or the simulator's deterministic traffic while there are none.
GRID_SHAPED = "samples" if _samples_present() else "simulated"
DATASETS = ["northwind", GRID_SHAPED]
# GRID-shaped traffic whose lakehouse then has every Silver rule broken and an event missing from
# the ledger: on clean data the checks' queries count nothing, and 0 equal to 0 proves nothing.
# Only the read queries run on it, and there none may come back zero.
SEEDED = "seeded"

GOLD_SELECTS: dict[str, Callable[[], Select]] = {
    "revenue_by_category": lambda: gold_queries.revenue_by_category(literal(NOW, Instant)),
    "daily_revenue": lambda: gold_queries.daily_revenue(literal(NOW, Instant)),
    "order_status_counts": lambda: gold_queries.order_status_counts(literal(NOW, Instant)),
    "product_revenue": lambda: gold_queries.product_revenue(literal(NOW, Instant)),
    "total_revenue": gold_queries.total_revenue,
}
FINGERPRINTS = ("bronze_fingerprint", "ledger_fingerprint")


def _same_on_both_engines(query: Select) -> Select:
    """The query without its fingerprints: each engine hashes its own way."""
    found = query.subquery("found")
    return select(*(column for column in found.c if column.name not in FINGERPRINTS))


READ_SELECTS: dict[str, Callable[[], Select]] = {
    "silver.unprocessed_events": lambda: silver_queries.unprocessed_events(0, 1000),
    "checks.last_grid_event_at": checks.last_grid_event_at,
    "checks.rejected_share": checks.rejected_share,
    "checks.reconciliation": lambda: _same_on_both_engines(checks.reconciliation()),
    "checks.unaccounted_events": checks.unaccounted_events,
    "checks.ledger_outcomes": checks.ledger_outcomes,
    "checks.unknown_product_lines": checks.unknown_product_lines,
    "checks.gold_totals": checks.gold_totals,
}
# Zero on every clean dataset by the pipeline's own guarantee, so compared on the seeded one only.
VIOLATION_SELECTS: dict[str, Callable[[], Select]] = {
    f"checks.silver_violations.{name}": (lambda name=name: checks.silver_violations()[name])
    for name in checks.silver_violations()
}
# The heartbeat check's statements take instants: sent as typed parameters, as the connector
# sends them (inlined, an instant becomes a string that `unix_timestamp` would parse by pattern).
# The window opens before the samples' first heartbeat; a zero gap limit lists every gap.
HEARTBEAT_SELECTS: dict[str, Callable[[], Select]] = {
    "checks.heartbeat_summary": lambda: checks.heartbeat_summary(
        NOW, datetime(2026, 1, 1, tzinfo=UTC), 0
    ),
    "checks.heartbeat_gaps": lambda: checks.heartbeat_gaps(
        NOW, datetime(2026, 1, 1, tzinfo=UTC), 0
    ),
}
# Results with a defined order are compared in that order; the rest sorted.
ORDERED_READS = {"silver.unprocessed_events"}


def _tables_read() -> list[Table]:
    """Every table a compared query reads: the only ones worth copying into Spark."""
    builds = [GOLD_SELECTS, READ_SELECTS, VIOLATION_SELECTS, HEARTBEAT_SELECTS]
    read = {
        table.fullname
        for build in [build for selects in builds for build in selects.values()]
        for table in find_tables(build(), check_columns=True)
        if isinstance(table, Table)
    }
    return [table for table in Base.metadata.sorted_tables if table.fullname in read]


@dataclass
class Loaded:
    """One dataset: the pipeline's lakehouse on DuckDB and the same rows in a Spark session."""

    name: str
    lakehouse: Lakehouse
    spark: Any


def _landing(dataset: str, folder: Path) -> Path | None:
    if dataset == "samples":
        return SAMPLES_DIR
    if dataset == "simulated":
        generate_traffic(folder, n_events=3000, seed=7)
        return folder
    source = find_northwind_dir()
    if source is None:
        return None
    write_northwind_events(source, folder)
    return folder


def _run_pipeline(landing: Path, db_path: Path) -> Lakehouse:
    lakehouse = LakehouseResource(duckdb_path=str(db_path)).get_lakehouse()
    lakehouse.create_tables()
    ingest_landing(lakehouse, landing)
    apply_new_events(lakehouse)
    for name in gold_etl.GOLD_TABLES:
        gold_etl.rebuild(lakehouse, name)
    return lakehouse


def _seeded_pipeline(landing: Path, work: Path) -> Lakehouse:
    """The first file of a GRID-shaped landing folder through the pipeline (a quarter of the
    traffic, so that copying it into Spark stays quick), then every Silver rule broken and one
    applied event dropped from the ledger (a Bronze event Silver cannot account for)."""
    first = min(landing.glob("*.ndjson*"))
    (work / "landing").mkdir()
    shutil.copy(first, work / "landing" / first.name)
    lakehouse = _run_pipeline(work / "landing", work / "grid.duckdb")
    ledger = EventLedger.__table__
    applied = select(func.min(ledger.c.event_id)).where(ledger.c.outcome == "applied")
    with lakehouse.begin() as conn:
        for break_rule in SILVER_BREAKS.values():
            break_rule(conn)
        conn.execute(delete(ledger).where(ledger.c.event_id == applied.scalar_subquery()))
    return lakehouse


@pytest.fixture(scope="module")
def pipelines(
    spark_starting: Future, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Lakehouse | None]]:
    """Every dataset through Bronze, Silver and Gold on its own DuckDB file."""
    built: dict[str, Lakehouse | None] = {}
    landings: dict[str, Path | None] = {}
    for dataset in DATASETS:
        work = tmp_path_factory.mktemp(f"pipeline-{dataset}")
        landing = landings[dataset] = _landing(dataset, work / "landing")
        built[dataset] = None if landing is None else _run_pipeline(landing, work / "grid.duckdb")
    grid_shaped = landings[GRID_SHAPED]
    assert grid_shaped is not None
    built[SEEDED] = _seeded_pipeline(grid_shaped, tmp_path_factory.mktemp(f"pipeline-{SEEDED}"))
    yield built
    for lakehouse in built.values():
        if lakehouse is not None:
            lakehouse.engine.dispose()


@pytest.fixture(scope="module", params=DATASETS)
def loaded(
    request: pytest.FixtureRequest, spark_starting: Future, pipelines: dict[str, Lakehouse | None]
) -> Iterator[Loaded]:
    """Spark tables for every lakehouse table, from the Databricks DDL, holding the rows the
    compared queries read (the other tables stay empty until a test writes them)."""
    dataset: str = request.param
    lakehouse = pipelines[dataset]
    if lakehouse is None:
        if running_in_ci():
            pytest.fail(missing_northwind_message())
        pytest.skip(missing_northwind_message())
    spark = spark_starting.result()
    for layer in LAYERS:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer}")
    for table in Base.metadata.sorted_tables:
        spark.sql(delta_ddl_to_parquet(databricks_create_table(table)))
    for table in _tables_read():
        with lakehouse.connect() as conn:
            rows = [dict(row._mapping) for row in conn.execute(select(table))]
        for statement in insert_statements(table, rows):
            spark.sql(statement)
    yield Loaded(dataset, lakehouse, spark)
    for table in Base.metadata.sorted_tables:
        spark.sql(f"DROP TABLE IF EXISTS {table.fullname}")


def _on_duckdb(lakehouse: Lakehouse, query: Select) -> tuple[list[str], list[tuple]]:
    with lakehouse.connect() as conn:
        result = conn.execute(query)
        return list(result.keys()), [tuple(row) for row in result]


def _on_spark(spark: Any, sql: str, args: dict[str, Any] | None = None) -> tuple[list[str], list]:
    frame = spark.sql(sql, args=args)
    return list(frame.columns), [tuple(row) for row in frame.collect()]


def _comparable(columns: list[str], rows: list[tuple], sort: bool = True) -> list[tuple]:
    """Rows as comparable values, without `computed_at`: each Gold build stamps its own."""
    keep = [i for i, name in enumerate(columns) if name != COMPUTED_AT]
    return comparable_rows([tuple(row[i] for i in keep) for row in rows], sort=sort)


def test_every_compared_table_holds_rows(loaded: Loaded) -> None:
    # Parity over empty tables would prove nothing. Northwind has no quarantine or rejections,
    # so only the tables every dataset fills are required here.
    with loaded.lakehouse.connect() as conn:
        for name in ("bronze.events", "silver.products", "silver.orders", "silver.order_items"):
            table = Base.metadata.tables[name]
            assert conn.execute(select(table).limit(1)).first() is not None, name


@pytest.mark.parametrize("name", list(GOLD_SELECTS))
def test_gold_select_matches_duckdb(loaded: Loaded, name: str) -> None:
    query = GOLD_SELECTS[name]()
    duck_columns, duck_rows = _on_duckdb(loaded.lakehouse, query)
    spark_columns, spark_rows = _on_spark(loaded.spark, databricks_sql(query))

    assert duck_rows
    assert spark_columns == duck_columns
    assert _comparable(spark_columns, spark_rows) == _comparable(duck_columns, duck_rows)


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Kiritimati"])
def test_order_dates_ignore_the_session_time_zone(loaded: Loaded, zone: str) -> None:
    """A Databricks session's time zone is a warehouse setting; `order_date` stays the UTC date
    of the placement whatever it is (here UTC-8/-7 and UTC+14)."""
    query = GOLD_SELECTS["daily_revenue"]()
    duck_columns, duck_rows = _on_duckdb(loaded.lakehouse, query)
    loaded.spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        spark_columns, spark_rows = _on_spark(loaded.spark, databricks_sql(query))
    finally:
        loaded.spark.conf.set("spark.sql.session.timeZone", "UTC")
    assert _comparable(spark_columns, spark_rows) == _comparable(duck_columns, duck_rows)


def _compare_read(loaded: Loaded, name: str, query: Select) -> list[tuple]:
    """The query's rows on DuckDB, once Spark has returned the same."""
    duck_columns, duck_rows = _on_duckdb(loaded.lakehouse, query)
    spark_columns, spark_rows = _on_spark(loaded.spark, databricks_sql(query))
    in_order = name in ORDERED_READS
    assert _comparable(spark_columns, spark_rows, sort=not in_order) == _comparable(
        duck_columns, duck_rows, sort=not in_order
    )
    return duck_rows


def _nothing_zero(rows: list[tuple]) -> bool:
    return bool(rows) and all(value is not None and value != 0 for row in rows for value in row)


@pytest.mark.parametrize("name", list(READ_SELECTS))
@pytest.mark.parametrize("loaded", [*DATASETS, SEEDED], indirect=True)
def test_read_query_matches_duckdb(loaded: Loaded, name: str) -> None:
    rows = _compare_read(loaded, name, READ_SELECTS[name]())
    assert rows
    if loaded.name == SEEDED:
        # Every count and instant is there to compare: no unaccounted event, unknown product
        # line or rejection counted 0 (or NULL) on both engines alike.
        assert _nothing_zero(rows), rows[:3]


@pytest.mark.parametrize("loaded", [*DATASETS, SEEDED], indirect=True)
def test_reconciliation_fingerprints_agree_within_each_engine(loaded: Loaded) -> None:
    """Bronze's and the ledger's fingerprints are equal on each engine when Silver accounts for
    every event, and differ on both when an applied event is missing from the ledger."""
    found = checks.reconciliation().subquery("found")
    query = select(*(found.c[name] for name in FINGERPRINTS))
    _, duck_rows = _on_duckdb(loaded.lakehouse, query)
    _, spark_rows = _on_spark(loaded.spark, databricks_sql(query))
    for bronze, ledger in (duck_rows[0], spark_rows[0]):
        assert bronze != 0
        assert (bronze == ledger) == (loaded.name != SEEDED), (loaded.name, bronze, ledger)


@pytest.mark.parametrize("name", list(VIOLATION_SELECTS))
@pytest.mark.parametrize("loaded", [SEEDED], indirect=True)
def test_violation_count_matches_duckdb(loaded: Loaded, name: str) -> None:
    rows = _compare_read(loaded, name, VIOLATION_SELECTS[name]())
    assert _nothing_zero(rows), rows


@pytest.mark.parametrize("name", list(HEARTBEAT_SELECTS))
def test_heartbeat_query_with_bound_parameters_matches_duckdb(loaded: Loaded, name: str) -> None:
    query = HEARTBEAT_SELECTS[name]()
    compiled = query.compile(
        dialect=DatabricksDialect(), compile_kwargs={"render_postcompile": True}
    )
    sql = str(compiled)
    args = {key: value for key, value in compiled.params.items() if f":`{key}`" in sql}
    duck_columns, duck_rows = _on_duckdb(loaded.lakehouse, query)
    spark_columns, spark_rows = _on_spark(loaded.spark, sql, args=args)

    if loaded.name != "northwind":  # Northwind's orders come without heartbeats
        assert duck_rows and all(value is not None for value in duck_rows[0])
    assert spark_columns == duck_columns
    assert _comparable(spark_columns, spark_rows, sort=False) == _comparable(
        duck_columns, duck_rows, sort=False
    )


@pytest.mark.parametrize("table", _tables_read(), ids=lambda table: table.fullname)
def test_copied_table_reads_back_unchanged(loaded: Loaded, table: Table) -> None:
    """The typed literals lost nothing: every instant, decimal scale and escaped string."""
    duck_columns, duck_rows = _on_duckdb(loaded.lakehouse, select(table))
    spark_columns, spark_rows = _on_spark(loaded.spark, databricks_sql(select(table)))
    assert _comparable(spark_columns, spark_rows) == _comparable(duck_columns, duck_rows)


@pytest.mark.parametrize("name", list(gold_etl.GOLD_TABLES))
def test_gold_insert_overwrite_with_bound_parameters(loaded: Loaded, name: str) -> None:
    """The production write path, `Lakehouse.replace` on Databricks: INSERT OVERWRITE compiled by
    the Databricks dialect, every value (`computed_at` included) sent as a named parameter the
    way the connector sends it, into a table created from the Databricks DDL."""
    table, build = gold_etl.GOLD_TABLES[name]
    query = build(literal(NOW, Instant))
    columns = [c.name for c in query.selected_columns]
    compiled = InsertOverwrite(table, columns, query).compile(dialect=DatabricksDialect())
    assert NOW in compiled.params.values(), compiled.params
    loaded.spark.sql(str(compiled), args=dict(compiled.params))

    duck_columns, duck_rows = _on_duckdb(loaded.lakehouse, select(table))
    spark_columns, spark_rows = _on_spark(loaded.spark, databricks_sql(select(table)))
    assert spark_columns == duck_columns
    stamps = {row[spark_columns.index(COMPUTED_AT)].astimezone(UTC) for row in spark_rows}
    assert stamps == {NOW}
    assert _comparable(spark_columns, spark_rows) == _comparable(duck_columns, duck_rows)
