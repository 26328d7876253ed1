"""The benchmark's pure-SQL reference does the pipeline's work: same state, same Gold.

`grid_bench/reference.sql` is what `grid bench` measures `grid run` against, so it must produce
the same tables, not a lighter subset. Run both on the committed samples and compare.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import Engine, create_engine, text

from grid_assets_tests.conftest import run_medallion
from grid_bench.throughput import REFERENCE_WORKER, REFERENCES

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLES = REPO_ROOT / "data" / "samples"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    db = tmp_path_factory.mktemp("reference") / "reference.duckdb"
    script = REFERENCES["reference"]
    subprocess.run(
        [sys.executable, "-c", REFERENCE_WORKER, str(SAMPLES), str(db), str(script)],
        check=True,
        timeout=120,
    )
    return duckdb.connect(str(db), read_only=True)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    db = tmp_path_factory.mktemp("pipeline") / "grid.duckdb"
    result = run_medallion(SAMPLES, db)
    assert result.success
    return create_engine(f"duckdb:///{db}")


def _rows(engine: Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(text(sql)))


SAME = {
    "GRID events": (
        "SELECT event_id, event_type FROM bronze.events WHERE event_type NOT LIKE 'pipeline.%'",
        "SELECT event_id, event_type FROM events",
    ),
    "products": (
        "SELECT product_id, category, unit_price FROM silver.products",
        "SELECT product_id, category, unit_price FROM products",
    ),
    "orders": (
        "SELECT order_id, status, placed_at FROM silver.orders",
        "SELECT order_id, status, placed_at FROM orders",
    ),
    "order lines": (
        "SELECT order_id, line_number, product_id, quantity, unit_price, discount "
        "FROM silver.order_items",
        "SELECT order_id, line_number, product_id, quantity, unit_price, discount FROM order_items",
    ),
    # Gold is compared without its `currency` column: the reference SQL predates currencies in
    # Gold's grain, and the samples are single-currency (`test_samples_are_single_currency`), so
    # each reference row is the pipeline's USD row.
    "revenue by category": (
        "SELECT category, revenue, order_count, units FROM gold.revenue_by_category",
        "SELECT category, revenue, order_count, units FROM revenue_by_category",
    ),
    "daily revenue": (
        "SELECT order_date, revenue, order_count, units FROM gold.daily_revenue",
        "SELECT order_date, revenue, order_count, units FROM daily_revenue",
    ),
    "order status counts": (
        "SELECT status, order_count FROM gold.order_status_counts",
        "SELECT status, order_count FROM order_status_counts",
    ),
    "product revenue": (
        "SELECT product_id, revenue, units FROM gold.product_revenue",
        "SELECT product_id, revenue, units FROM product_revenue",
    ),
}


def test_samples_are_single_currency(pipeline: Engine) -> None:
    """What makes comparing Gold without `currency` sound: one currency, so one row per key."""
    for table in ("revenue_by_category", "daily_revenue", "product_revenue"):
        assert _rows(pipeline, f"SELECT DISTINCT currency FROM gold.{table}") == [("USD",)], table


@pytest.mark.parametrize("name", list(SAME))
def test_reference_builds_the_same_table(
    name: str, pipeline: Engine, reference: duckdb.DuckDBPyConnection
) -> None:
    ours, theirs = SAME[name]
    expected = _rows(pipeline, ours)
    assert expected, name
    assert sorted(tuple(r) for r in reference.execute(theirs).fetchall()) == expected


def test_reference_keeps_bad_input_too(
    pipeline: Engine, reference: duckdb.DuckDBPyConnection
) -> None:
    """Rejected lines, quarantine and ledger are built, at the pipeline's order of size (the
    reference's rules are coarser: e.g. it tells conflicts by minified text, not JSON value)."""

    def count(sql: str) -> int:
        return reference.execute(sql).fetchall()[0][0]

    ledger = _rows(pipeline, "SELECT count(*) FROM silver.event_ledger")[0][0]
    assert count("SELECT count(*) FROM event_ledger") == ledger
    for ours, theirs in (
        ("bronze.rejected_events", "rejected_events"),
        ("silver.quarantine", "quarantine"),
    ):
        expected = _rows(pipeline, f"SELECT count(*) FROM {ours}")[0][0]
        assert 0.5 * expected <= count(f"SELECT count(*) FROM {theirs}") <= 2 * expected
