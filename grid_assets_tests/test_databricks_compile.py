"""What the Databricks dialect (and DuckDB's) compile the models and the hand-written constructs
to, checked as text: no warehouse needed.

The Spark SQL tier (`test_spark_sql_parity.py`) runs what Spark can run; MERGE needs Delta, so the
upserts are pinned here as reviewed SQL instead.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import duckdb_engine
import pytest
from databricks.sqlalchemy import DatabricksDialect
from sqlalchemy import Column, DateTime, MetaData, Numeric, Table, Text, column, literal
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateTable, SetColumnComment
from sqlalchemy.sql import ClauseElement

import grid_assets.lakehouse.duckdb  # noqa: F401  (registers DuckDB's column DDL hook)
from grid_assets.models import metadata
from grid_assets.models.base import Amount, Instant, JsonText, Money
from grid_assets.models.gold import OrderStatusCounts
from grid_assets.models.silver import Order, Product
from grid_assets.queries import checks as check_queries
from grid_assets.queries import gold as gold_queries
from grid_assets.queries import silver as silver_queries
from grid_assets.queries.dialect import InsertOverwrite, int_div, utc_date

DATABRICKS = DatabricksDialect()
DUCKDB = duckdb_engine.Dialect()
TABLES = metadata.sorted_tables
NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)

# The contract's columns (CONTRACT.md section 3) and the Databricks type each must have.
CONTRACT_TYPES = {
    "bronze.events.occurred_at": "TIMESTAMP",
    "bronze.events.ingested_at": "TIMESTAMP",
    "bronze.events.payload": "STRING",
    "bronze.rejected_events.raw_line": "STRING",
    "silver.quarantine.reasons": "STRING",
    "silver.products.unit_price": "DECIMAL(18, 6)",
    "silver.products.updated_at": "TIMESTAMP",
    "silver.orders.placed_at": "TIMESTAMP",
    "silver.orders.updated_at": "TIMESTAMP",
    "silver.order_items.unit_price": "DECIMAL(18, 6)",
    "silver.order_items.discount": "DECIMAL(18, 6)",
    "gold.revenue_by_category.currency": "STRING",
    "gold.revenue_by_category.revenue": "DECIMAL(18, 2)",
    "gold.daily_revenue.order_date": "DATE",
    "gold.daily_revenue.currency": "STRING",
    "gold.daily_revenue.revenue": "DECIMAL(18, 2)",
    "gold.daily_revenue.average_order_value": "DECIMAL(18, 2)",
}

# Every model column has a comment; the dialect writes it inline, escaped with a backslash.
_COLUMN_LINE = re.compile(
    r"^\s+(?P<name>\w+) (?P<type>.+?)(?: NOT NULL)?"
    r"(?: COMMENT '(?P<comment>(?:[^'\\]|\\.)*)')?,?\s*$"
)


def normalized(sql: str) -> str:
    return " ".join(sql.split())


def databricks_ddl(table: Table) -> str:
    return str(CreateTable(table).compile(dialect=DATABRICKS))


def ddl_columns(table: Table) -> dict[str, re.Match[str]]:
    """Column name -> its line of the CREATE TABLE, parsed."""
    columns = {}
    for line in databricks_ddl(table).splitlines():
        match = _COLUMN_LINE.match(line)
        if match and match["name"] != "CONSTRAINT":
            columns[match["name"]] = match
    assert set(columns) == {c.name for c in table.c}, databricks_ddl(table)
    return columns


def ddl_column_types(table: Table) -> dict[str, str]:
    """Column name -> compiled type, from the column lines of the CREATE TABLE."""
    return {name: match["type"] for name, match in ddl_columns(table).items()}


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.fullname)
def test_create_table_is_delta_with_instants_as_timestamp(table: Table) -> None:
    ddl = databricks_ddl(table)
    types = ddl_column_types(table)

    assert re.search(r"\)\s*USING DELTA\b", ddl), ddl
    assert "TIMESTAMP_NTZ" not in ddl
    for col in table.c:
        compiled = types[col.name]
        if isinstance(col.type, DateTime):
            # Instants: TIMESTAMP is an instant in Databricks; TIMESTAMP_NTZ is a wall-clock time.
            assert col.type is Instant and compiled == "TIMESTAMP", col.name
        if col.name.endswith("_at"):
            assert col.type is Instant, f"{col.name} is named as an instant"
        if isinstance(col.type, Numeric):
            assert col.type is Money or col.type is Amount, f"{col.name}: money is Money or Amount"
            expected = "DECIMAL(18, 6)" if col.type is Money else "DECIMAL(18, 2)"
            assert compiled == expected, col.name
        if isinstance(col.type, Text):
            assert col.type is JsonText and compiled == "STRING", col.name


@pytest.mark.parametrize("table", TABLES, ids=lambda table: table.fullname)
def test_every_column_carries_its_model_comment_on_databricks(table: Table) -> None:
    """The descriptions the Dagster UI shows are the models' comments, and Databricks keeps the
    same text as column COMMENTs in Unity Catalog."""
    for name, match in ddl_columns(table).items():
        comment = table.c[name].comment
        assert comment and match["comment"] is not None, name
        assert re.sub(r"\\(.)", r"\1", match["comment"]) == comment, name


def test_column_comments_compile_inline_on_databricks_and_as_statements_on_duckdb() -> None:
    table = OrderStatusCounts.__table__
    assert normalized(databricks_ddl(table)) == normalized(
        """
        CREATE TABLE gold.order_status_counts (
          status STRING NOT NULL COMMENT 'Order status: placed, paid, shipped or cancelled.',
          order_count BIGINT NOT NULL COMMENT 'Orders whose current status this is.',
          computed_at TIMESTAMP NOT NULL
            COMMENT 'When this table was last rebuilt from Silver, in UTC.',
          CONSTRAINT pk_order_status_counts PRIMARY KEY (status)
        ) USING DELTA
        TBLPROPERTIES('delta.feature.allowColumnDefaults' = 'enabled')
        """
    )
    # A quote inside a comment is escaped the dialect's way.
    assert "COMMENT 'Order id; the table\\'s key.'" in databricks_ddl(Order.__table__)
    # DuckDB's CREATE TABLE has no inline comments (nor the key: see models/base.py);
    # create_all follows it with one COMMENT ON COLUMN per column.
    assert normalized(str(CreateTable(table).compile(dialect=DUCKDB))) == normalized(
        """
        CREATE TABLE gold.order_status_counts (
          status VARCHAR NOT NULL, order_count BIGINT NOT NULL,
          computed_at TIMESTAMP WITH TIME ZONE NOT NULL
        )
        """
    )
    assert DUCKDB.supports_comments and not DUCKDB.inline_comments
    assert str(SetColumnComment(table.c.status).compile(dialect=DUCKDB)) == (
        "COMMENT ON COLUMN gold.order_status_counts.status IS "
        "'Order status: placed, paid, shipped or cancelled.'"
    )


def test_column_compressions_reach_duckdbs_ddl_only() -> None:
    """A column's `duckdb_compression` reaches DuckDB's DDL, nothing else's: Bronze's payloads
    in zstd, Silver's columns of event ids stored plain, every other column left to DuckDB."""
    events, ledger = metadata.tables["bronze.events"], metadata.tables["silver.event_ledger"]
    duckdb_ddl = normalized(str(CreateTable(events).compile(dialect=DUCKDB)))
    assert "payload TEXT NOT NULL USING COMPRESSION zstd," in duckdb_ddl
    assert duckdb_ddl.count("USING COMPRESSION") == 1
    ledger_ddl = normalized(str(CreateTable(ledger).compile(dialect=DUCKDB)))
    assert "event_id VARCHAR NOT NULL USING COMPRESSION uncompressed," in ledger_ddl
    assert ledger_ddl.count("USING COMPRESSION") == 1
    for table in TABLES:
        assert "COMPRESSION" not in databricks_ddl(table), table.fullname
    compressed = {
        f"{t.fullname}.{c.name}": c.info["duckdb_compression"]
        for t in TABLES
        for c in t.c
        if c.info.get("duckdb_compression")
    }
    assert compressed == {
        "bronze.events.payload": "zstd",
        "silver.event_ledger.event_id": "uncompressed",
        "silver.orders.status_event_id": "uncompressed",
        "silver.orders.placed_event_id": "uncompressed",
        "silver.order_items.event_id": "uncompressed",
    }


def test_contract_columns_compile_to_their_databricks_types() -> None:
    tables = {table.fullname: ddl_column_types(table) for table in TABLES}
    actual = {
        name: tables[name.rsplit(".", 1)[0]].get(name.rsplit(".", 1)[1]) for name in CONTRACT_TYPES
    }
    assert actual == CONTRACT_TYPES


# --- MERGE -----------------------------------------------------------------------------------


def stage_like(model: type, name: str) -> Table:
    """A schemaless scratch table with the model's columns, as `Lakehouse.staged` builds."""
    return Table(name, MetaData(), *(Column(c.name, c.type) for c in model.__table__.c))


# `{rn}` is the bound `1` of `rn = 1`: the only place the two dialects' SQL differs.
MERGE_PRODUCTS_SQL = """
MERGE INTO silver.products AS t
USING (SELECT ranked.product_id AS product_id, ranked.name AS name, ranked.category AS category,
    ranked.unit_price AS unit_price, ranked.currency AS currency, ranked.active AS active,
    ranked.updated_at AS updated_at, ranked.event_id AS event_id
  FROM (SELECT stage_products.product_id AS product_id, stage_products.name AS name,
      stage_products.category AS category, stage_products.unit_price AS unit_price,
      stage_products.currency AS currency, stage_products.active AS active,
      stage_products.updated_at AS updated_at, stage_products.event_id AS event_id,
      row_number() OVER (PARTITION BY stage_products.product_id
        ORDER BY stage_products.updated_at DESC, stage_products.event_id DESC) AS rn
    FROM stage_products) AS ranked
  WHERE ranked.rn = {rn}) AS s
ON t.product_id = s.product_id
WHEN MATCHED AND (t.updated_at IS NULL OR s.updated_at > t.updated_at
  OR s.updated_at = t.updated_at AND s.event_id > t.event_id)
THEN UPDATE SET name = s.name, category = s.category, unit_price = s.unit_price,
  currency = s.currency, active = s.active, updated_at = s.updated_at, event_id = s.event_id
WHEN NOT MATCHED THEN INSERT
  (product_id, name, category, unit_price, currency, active, updated_at, event_id)
  VALUES (s.product_id, s.name, s.category, s.unit_price, s.currency, s.active, s.updated_at,
    s.event_id)
"""

_ORDER_COLUMNS = (
    "{src}.order_id AS order_id, {src}.customer_id AS customer_id, {src}.status AS status, "
    "{src}.currency AS currency, {src}.placed_at AS placed_at, {src}.updated_at AS updated_at, "
    "{src}.status_event_id AS status_event_id, {src}.placed_event_id AS placed_event_id"
)
_INSERT_ORDER = """
WHEN NOT MATCHED THEN INSERT
  (order_id, customer_id, status, currency, placed_at, updated_at, status_event_id,
    placed_event_id)
  VALUES (s.order_id, s.customer_id, s.status, s.currency, s.placed_at, s.updated_at,
    s.status_event_id, s.placed_event_id)
"""

_STATUS_NEWER = """(t.updated_at IS NULL OR s.updated_at > t.updated_at
  OR s.updated_at = t.updated_at AND s.status_event_id > t.status_event_id)"""
_PLACEMENT_NEWER = """s.placed_event_id IS NOT NULL AND (t.placed_at IS NULL
  OR s.placed_at > t.placed_at
  OR s.placed_at = t.placed_at AND s.placed_event_id > t.placed_event_id)"""
_SET_STATUS = "status = s.status, updated_at = s.updated_at, status_event_id = s.status_event_id"
_SET_PLACEMENT = (
    "customer_id = s.customer_id, currency = s.currency, placed_at = s.placed_at, "
    "placed_event_id = s.placed_event_id"
)

MERGE_ORDERS_SQL = (
    f"""
MERGE INTO silver.orders AS t
USING (SELECT latest.order_id AS order_id, latest.status AS status,
    latest.updated_at AS updated_at, latest.status_event_id AS status_event_id,
    placement.customer_id AS customer_id, placement.currency AS currency,
    placement.placed_at AS placed_at, placement.placed_event_id AS placed_event_id
  FROM (SELECT {_ORDER_COLUMNS.format(src="ranked")}
    FROM (SELECT {_ORDER_COLUMNS.format(src="stage_orders")},
        row_number() OVER (PARTITION BY stage_orders.order_id
          ORDER BY stage_orders.updated_at DESC, stage_orders.status_event_id DESC) AS rn
      FROM stage_orders) AS ranked
    WHERE ranked.rn = {{rn}}) AS latest
  LEFT OUTER JOIN (SELECT {_ORDER_COLUMNS.format(src="ranked")}
    FROM (SELECT {_ORDER_COLUMNS.format(src="placed")},
        row_number() OVER (PARTITION BY placed.order_id
          ORDER BY placed.placed_at DESC, placed.placed_event_id DESC) AS rn
      FROM (SELECT {_ORDER_COLUMNS.format(src="stage_orders")}
        FROM stage_orders
        WHERE stage_orders.placed_event_id IS NOT NULL) AS placed) AS ranked
    WHERE ranked.rn = {{rn2}}) AS placement
  ON placement.order_id = latest.order_id) AS s
ON t.order_id = s.order_id
WHEN MATCHED AND ({_STATUS_NEWER} AND {_PLACEMENT_NEWER})
THEN UPDATE SET {_SET_STATUS}, {_SET_PLACEMENT}
WHEN MATCHED AND {_STATUS_NEWER} THEN UPDATE SET {_SET_STATUS}
WHEN MATCHED AND ({_PLACEMENT_NEWER}) THEN UPDATE SET {_SET_PLACEMENT}
"""
    + _INSERT_ORDER
)

MERGES = {
    "merge_products": (
        lambda: silver_queries.merge_products(stage_like(Product, "stage_products")),
        MERGE_PRODUCTS_SQL,
    ),
    "merge_orders": (
        lambda: silver_queries.merge_orders(stage_like(Order, "stage_orders")),
        MERGE_ORDERS_SQL,
    ),
}
PARAM_MARKERS: dict[str, tuple[Dialect, str]] = {
    "databricks": (DATABRICKS, ":`rn_1`"),
    "duckdb": (DUCKDB, "%(rn_1)s"),
}


@pytest.mark.parametrize("dialect_name", list(PARAM_MARKERS))
@pytest.mark.parametrize("merge_name", list(MERGES))
def test_merge_compiles_to_the_reviewed_sql(merge_name: str, dialect_name: str) -> None:
    build, expected = MERGES[merge_name]
    dialect, rn_marker = PARAM_MARKERS[dialect_name]
    compiled = build().compile(dialect=dialect)

    # One row_number() filter per ranked source: `rn_1`, and `rn_2` for the orders' second.
    rn2_marker = rn_marker.replace("rn_1", "rn_2")
    assert normalized(str(compiled)) == normalized(expected.format(rn=rn_marker, rn2=rn2_marker))
    assert compiled.params == {"rn_1": 1, **({"rn_2": 1} if "{rn2}" in expected else {})}


# --- INSERT OVERWRITE and per-dialect functions ----------------------------------------------


def test_insert_overwrite_compiles_for_databricks_with_computed_at_bound() -> None:
    table = OrderStatusCounts.__table__
    query = gold_queries.order_status_counts(literal(NOW, Instant))
    statement = InsertOverwrite(table, ["status", "order_count", "computed_at"], query)
    compiled = statement.compile(dialect=DATABRICKS)

    assert normalized(str(compiled)) == normalized(
        """
        INSERT OVERWRITE gold.order_status_counts (status, order_count, computed_at)
        SELECT silver.orders.status, count(*) AS order_count, :`param_1` AS computed_at
        FROM silver.orders GROUP BY silver.orders.status
        """
    )
    # A parameter, not a string literal: ANSI store assignment refuses STRING -> TIMESTAMP.
    assert compiled.params == {"param_1": NOW}


def compile_inline(element: ClauseElement, dialect: Dialect) -> str:
    return normalized(str(element.compile(dialect=dialect, compile_kwargs={"literal_binds": True})))


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [(DATABRICKS, "((a) DIV (b))"), (DUCKDB, "((a) // (b))")],
    ids=["databricks", "duckdb"],
)
def test_int_div_is_integer_division_on_each_engine(dialect: Dialect, expected: str) -> None:
    assert compile_inline(int_div(column("a"), column("b")), dialect) == expected


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (DATABRICKS, "date_from_unix_date(CAST(floor(unix_seconds(placed_at) / 86400) AS INT))"),
        (DUCKDB, "CAST(placed_at AS DATE)"),
    ],
    ids=["databricks", "duckdb"],
)
def test_utc_date_does_not_follow_the_databricks_session_zone(
    dialect: Dialect, expected: str
) -> None:
    assert compile_inline(utc_date(column("placed_at")), dialect) == expected


# --- the heartbeat check's statements --------------------------------------------------------

# `{seconds(a, b)}` and `{p[name]}` are where the dialects differ: seconds between two instants
# and the parameter markers. Everything else, window function included, is the same SQL.
_HEARTBEAT_INTERVALS_SQL = """(SELECT beats.started_at AS started_at, beats.ended_at AS ended_at,
    {gap} AS gap_seconds
  FROM (SELECT lag(bronze.events.occurred_at) OVER (ORDER BY bronze.events.occurred_at)
        AS started_at, bronze.events.occurred_at AS ended_at
    FROM bronze.events
    WHERE bronze.events.event_type = {p[event_type_1]} AND bronze.events.occurred_at <= {p[now]}
      AND bronze.events.occurred_at >= coalesce((SELECT max(bronze.events.occurred_at) AS max_1
        FROM bronze.events
         WHERE bronze.events.event_type = {p[event_type_1]}
           AND bronze.events.occurred_at <= {p[now]}
           AND bronze.events.occurred_at < {p[window_start]}),
        {p[window_start]})) AS beats
  WHERE beats.ended_at >= {p[window_start]}) AS in_window"""
HEARTBEAT_SUMMARY_SQL = (
    """
SELECT stats.heartbeats, stats.max_gap_seconds, stats.gaps_over_limit,
  newest.last_heartbeat_at, {silence} AS silence_seconds
FROM (SELECT count(*) AS heartbeats, max(in_window.gap_seconds) AS max_gap_seconds,
    count(*) FILTER (WHERE in_window.gap_seconds > {p[max_gap_seconds]}) AS gaps_over_limit
  FROM """
    + _HEARTBEAT_INTERVALS_SQL
    + """) AS stats
JOIN (SELECT max(bronze.events.occurred_at) AS last_heartbeat_at FROM bronze.events
  WHERE bronze.events.event_type = {p[event_type_2]} AND bronze.events.occurred_at <= {p[now]})
  AS newest ON true
"""
)
HEARTBEAT_GAPS_SQL = (
    """
SELECT in_window.started_at, in_window.ended_at, in_window.gap_seconds
FROM """
    + _HEARTBEAT_INTERVALS_SQL
    + """
WHERE in_window.gap_seconds > {p[max_gap_seconds]}
ORDER BY in_window.gap_seconds DESC, in_window.ended_at DESC
LIMIT 20
"""
)
HEARTBEAT_DIALECTS: dict[str, tuple[Dialect, str, str, str]] = {
    # marker, seconds from the previous heartbeat to this one, silence up to now
    "databricks": (
        DATABRICKS,
        ":`{}`",
        "(unix_timestamp(beats.ended_at) - unix_timestamp(beats.started_at))",
        "(unix_timestamp(:`now`) - unix_timestamp(newest.last_heartbeat_at))",
    ),
    "duckdb": (
        DUCKDB,
        "%({})s",
        "date_diff('second', beats.started_at, beats.ended_at)",
        "date_diff('second', newest.last_heartbeat_at, %(now)s)",
    ),
}


@pytest.mark.parametrize("dialect_name", list(HEARTBEAT_DIALECTS))
def test_heartbeat_statements_compile_to_the_reviewed_sql(dialect_name: str) -> None:
    dialect, marker, gap, silence = HEARTBEAT_DIALECTS[dialect_name]
    markers = {
        name: marker.format(name)
        for name in ("event_type_1", "event_type_2", "now", "window_start", "max_gap_seconds")
    }
    window_start = NOW - timedelta(hours=24)
    summary = check_queries.heartbeat_summary(NOW, window_start, 3600).compile(dialect=dialect)
    gaps = check_queries.heartbeat_gaps(NOW, window_start, 3600).compile(
        dialect=dialect, compile_kwargs={"render_postcompile": True}
    )

    assert normalized(str(summary)) == normalized(
        HEARTBEAT_SUMMARY_SQL.format(p=markers, gap=gap, silence=silence)
    )
    assert normalized(str(gaps)) == normalized(HEARTBEAT_GAPS_SQL.format(p=markers, gap=gap))
    # Instants and thresholds travel as parameters; the LIMIT is the code's own constant.
    assert summary.params == {
        "now": NOW,
        "window_start": window_start,
        "max_gap_seconds": 3600,
        "event_type_1": "system.heartbeat",
        "event_type_2": "system.heartbeat",
    }
    assert {k: gaps.params[k] for k in ("now", "window_start", "max_gap_seconds")} == {
        "now": NOW,
        "window_start": window_start,
        "max_gap_seconds": 3600,
    }
