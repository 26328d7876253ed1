"""Tier 2: every check can fail. After a good run on the samples, the tables are tampered
with directly, and each check, invoked on them, fails with the severity and the metadata it
documents (and passes on the untouched copy first, where the samples allow)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Connection, delete, func, insert, select, update

from grid_assets.defs.bronze.checks import (
    event_ids_unique,
    events_freshness,
    landing_files_readable,
    rejected_share,
)
from grid_assets.defs.gold.checks import gold_reconciles
from grid_assets.defs.silver.checks import (
    events_reconcile,
    lines_with_unknown_product,
    silver_rules_hold,
)
from grid_assets.models.bronze import Event, IngestedFile, RejectedEvent, RejectedFile
from grid_assets.models.gold import DailyRevenue, RevenueByCategory
from grid_assets.models.silver import EventLedger, Order, OrderItem, Product, Quarantine
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.conftest import SAMPLES_DIR, run_medallion
from grid_assets_tests.silver_breaks import SILVER_BREAKS, first

EVENTS, LEDGER, QUARANTINE = Event.__table__, EventLedger.__table__, Quarantine.__table__
PRODUCTS, ORDERS, ITEMS = Product.__table__, Order.__table__, OrderItem.__table__
BY_CATEGORY, DAILY = RevenueByCategory.__table__, DailyRevenue.__table__
GRID_EVENTS = ~EVENTS.c.event_type.startswith("pipeline.")
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


@pytest.fixture(scope="module")
def good_lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("good")
    shutil.copytree(SAMPLES_DIR, tmp / "landing")
    result = run_medallion(tmp / "landing", tmp / "grid.duckdb")
    assert result.success
    return tmp / "grid.duckdb"


@pytest.fixture
def lakehouse(good_lakehouse: Path, tmp_path: Path) -> LakehouseResource:
    """A copy of the good lakehouse, free to tamper with."""
    copy = tmp_path / "tampered.duckdb"
    shutil.copy(good_lakehouse, copy)
    return LakehouseResource(duckdb_path=str(copy))


def tamper(resource: LakehouseResource, change: Callable[[Connection], object]) -> None:
    with resource.get_lakehouse().begin() as conn:
        change(conn)


def scalar(resource: LakehouseResource, query) -> object:
    with resource.get_lakehouse().connect() as conn:
        return conn.execute(query).scalar_one()


def value(result: dg.AssetCheckResult, key: str) -> object:
    return result.metadata[key].value


def is_blocking(check: dg.AssetChecksDefinition) -> bool:
    return all(spec.blocking for spec in check.check_specs)


def _reconciled(lakehouse: LakehouseResource, name: str) -> dg.AssetCheckResult:
    """One of the two Gold reconciliations, which one check step evaluates together."""
    results = {r.check_name: r for r in gold_reconciles(lakehouse=lakehouse)}  # type: ignore[union-attr]
    assert set(results) == {"category_revenue_reconciles", "daily_revenue_reconciles"}
    return results[name]


# -- Bronze --------------------------------------------------------------------------------


def test_event_ids_unique_fails_on_a_duplicated_event(lakehouse: LakehouseResource) -> None:
    assert event_ids_unique(lakehouse=lakehouse).passed
    first = select(func.min(EVENTS.c.event_id)).where(GRID_EVENTS).scalar_subquery()
    tamper(
        lakehouse,
        lambda c: c.execute(
            insert(EVENTS).from_select(
                [col.name for col in EVENTS.c], select(EVENTS).where(EVENTS.c.event_id == first)
            )
        ),
    )
    result = event_ids_unique(lakehouse=lakehouse)
    assert not result.passed and result.severity == ERROR and is_blocking(event_ids_unique)
    assert value(result, "duplicate_rows") == 1


def test_events_freshness_warns_when_the_newest_event_is_too_old(
    lakehouse: LakehouseResource,
) -> None:
    allowed = int(value(events_freshness(lakehouse=lakehouse), "allowed_lag_seconds"))
    newest = select(func.max(EVENTS.c.ingest_seq)).where(GRID_EVENTS).scalar_subquery()

    def newest_occurred(ago: timedelta) -> Callable[[Connection], object]:
        at = datetime.now(UTC) - ago
        return lambda c: c.execute(
            update(EVENTS).where(EVENTS.c.ingest_seq == newest).values(occurred_at=at)
        )

    tamper(lakehouse, newest_occurred(timedelta(seconds=allowed // 2)))
    fresh = events_freshness(lakehouse=lakehouse)
    assert fresh.passed and 0 < value(fresh, "lag_seconds") <= allowed

    tamper(lakehouse, newest_occurred(timedelta(seconds=allowed + 3600)))
    stale = events_freshness(lakehouse=lakehouse)
    assert not stale.passed and stale.severity == WARN and not is_blocking(events_freshness)
    assert allowed + 3600 <= value(stale, "lag_seconds") < allowed + 3700
    assert value(stale, "allowed_lag_seconds") == allowed

    tamper(lakehouse, lambda c: c.execute(delete(EVENTS)))  # no GRID event at all
    empty = events_freshness(lakehouse=lakehouse)
    assert not empty.passed and value(empty, "lag_seconds") == -1


def test_rejected_share_warns_above_five_percent(lakehouse: LakehouseResource) -> None:
    assert rejected_share(lakehouse=lakehouse).passed
    tamper(lakehouse, lambda c: c.execute(delete(EVENTS).where(EVENTS.c.ingest_seq > 100)))
    result = rejected_share(lakehouse=lakehouse)
    rejected = scalar(lakehouse, select(func.count()).select_from(RejectedEvent.__table__))
    accepted = scalar(lakehouse, select(func.count()).select_from(EVENTS).where(GRID_EVENTS))
    assert not result.passed and result.severity == WARN and not is_blocking(rejected_share)
    assert (value(result, "rejected"), value(result, "accepted")) == (rejected, accepted)
    assert value(result, "share") == pytest.approx(rejected / (rejected + accepted))
    assert value(result, "share") > 0.05


def test_landing_files_readable_warns_and_lists_every_held_file(
    lakehouse: LakehouseResource,
) -> None:
    files, rejected_files = IngestedFile.__table__, RejectedFile.__table__
    assert landing_files_readable(lakehouse=lakehouse).passed

    def hold(c: Connection) -> None:
        for name, state in (
            ("events-0002.ndjson.gz", "unreadable"),
            ("events-0003.ndjson", "rewritten"),
        ):
            c.execute(update(files).where(files.c.source_file == name).values(state=state))
        c.execute(
            insert(rejected_files).values(
                source_file="events-0002.ndjson.gz",
                reason="truncated_gzip",
                size_bytes=10,
                bytes_read=5,
                lines_read=7,
                rejected_at=datetime.now(UTC),
            )
        )

    tamper(lakehouse, hold)
    lines = dict(_rows(lakehouse, select(files.c.source_file, files.c.lines_read)))
    result = landing_files_readable(lakehouse=lakehouse)
    assert not result.passed and result.severity == WARN and not is_blocking(landing_files_readable)
    assert value(result, "held_files") == 2
    assert value(result, "files") == [
        {
            "file": "events-0002.ndjson.gz",
            "state": "unreadable",
            "reason": "truncated_gzip",
            "lines_read": lines["events-0002.ndjson.gz"],
        },
        {
            "file": "events-0003.ndjson",
            "state": "rewritten",
            "reason": None,
            "lines_read": lines["events-0003.ndjson"],
        },
    ]
    assert "events-0002.ndjson.gz (truncated_gzip)" in str(result.description)


def _rows(resource: LakehouseResource, query) -> list:
    with resource.get_lakehouse().connect() as conn:
        return list(conn.execute(query).all())


# -- Silver --------------------------------------------------------------------------------


def test_events_reconcile_fails_on_an_event_missing_from_the_ledger(
    lakehouse: LakehouseResource,
) -> None:
    assert events_reconcile(lakehouse=lakehouse).passed
    applied = select(func.min(LEDGER.c.event_id)).where(LEDGER.c.outcome == "applied")
    tamper(
        lakehouse,
        lambda c: c.execute(delete(LEDGER).where(LEDGER.c.event_id == applied.scalar_subquery())),
    )
    result = events_reconcile(lakehouse=lakehouse)
    assert not result.passed and result.severity == ERROR and is_blocking(events_reconcile)
    assert value(result, "unaccounted") == 1
    assert value(result, "ledger_rows") == value(result, "bronze_events") - 1


def test_events_reconcile_fails_when_quarantine_and_ledger_disagree(
    lakehouse: LakehouseResource,
) -> None:
    tamper(
        lakehouse,
        lambda c: c.execute(
            delete(QUARANTINE).where(
                QUARANTINE.c.event_id == select(func.min(QUARANTINE.c.event_id)).scalar_subquery()
            )
        ),
    )
    result = events_reconcile(lakehouse=lakehouse)
    assert not result.passed and result.severity == ERROR
    assert value(result, "unaccounted") == 0
    assert value(result, "quarantine_rows") == value(result, "ledger_quarantined") - 1
    outcomes = value(result, "outcomes")
    assert isinstance(outcomes, dict) and outcomes["quarantined"] == value(
        result, "ledger_quarantined"
    )


@pytest.mark.parametrize("broken", sorted(SILVER_BREAKS))
def test_silver_rules_hold_fails_on_each_broken_rule(
    lakehouse: LakehouseResource, broken: str
) -> None:
    ok = silver_rules_hold(lakehouse=lakehouse)
    assert ok.passed and set(ok.metadata) == set(SILVER_BREAKS)
    tamper(lakehouse, SILVER_BREAKS[broken])
    result = silver_rules_hold(lakehouse=lakehouse)
    assert not result.passed and result.severity == ERROR and is_blocking(silver_rules_hold)
    counts = {k: value(result, k) for k in result.metadata}
    assert counts == {k: int(k == broken) for k in SILVER_BREAKS}


def test_lines_with_unknown_product_warns_and_counts_them(lakehouse: LakehouseResource) -> None:
    unknown = (
        ~select(PRODUCTS.c.product_id).where(PRODUCTS.c.product_id == ITEMS.c.product_id).exists()
    )
    tamper(lakehouse, lambda c: c.execute(delete(ITEMS).where(unknown)))  # the samples have a few
    assert lines_with_unknown_product(lakehouse=lakehouse).passed

    sold = select(func.min(ITEMS.c.product_id)).scalar_subquery()
    lines = scalar(
        lakehouse, select(func.count()).select_from(ITEMS).where(ITEMS.c.product_id == sold)
    )
    tamper(lakehouse, lambda c: c.execute(delete(PRODUCTS).where(PRODUCTS.c.product_id == sold)))
    result = lines_with_unknown_product(lakehouse=lakehouse)
    assert not result.passed and result.severity == WARN
    assert not is_blocking(lines_with_unknown_product)
    assert value(result, "lines") == lines and lines > 0


# -- Gold ----------------------------------------------------------------------------------


def _usd(result: dg.AssetCheckResult) -> dict:
    currencies = value(result, "currencies")
    assert isinstance(currencies, dict)
    return currencies["USD"]


def test_category_revenue_reconciles_fails_on_drifting_revenue(
    lakehouse: LakehouseResource,
) -> None:
    ok = _reconciled(lakehouse, "category_revenue_reconciles")
    assert ok.passed and value(ok, "drifting_currencies") == []
    category = first(BY_CATEGORY, "category")
    tamper(
        lakehouse,
        lambda c: c.execute(
            update(BY_CATEGORY)
            .where(BY_CATEGORY.c.category == category)
            .values(revenue=BY_CATEGORY.c.revenue + 1)
        ),
    )
    result = _reconciled(lakehouse, "category_revenue_reconciles")
    assert not result.passed and result.severity == ERROR
    assert is_blocking(gold_reconciles)
    assert value(result, "drifting_currencies") == ["USD"]
    before, after = _usd(ok), _usd(result)
    assert Decimal(after["gold_revenue_sum"]) == Decimal(before["gold_revenue_sum"]) + 1
    assert after["silver_revenue_total"] == before["silver_revenue_total"]
    assert Decimal(after["drift"]) > Decimal("0.005") * 9


def test_category_revenue_reconciles_fails_on_units_or_a_wrong_currency(
    lakehouse: LakehouseResource,
) -> None:
    category = first(BY_CATEGORY, "category")
    tamper(
        lakehouse,
        lambda c: c.execute(
            update(BY_CATEGORY)
            .where(BY_CATEGORY.c.category == category)
            .values(units=BY_CATEGORY.c.units + 1)
        ),
    )
    units = _reconciled(lakehouse, "category_revenue_reconciles")
    assert not units.passed and value(units, "drifting_currencies") == ["USD"]
    assert _usd(units)["gold_units_sum"] == _usd(units)["silver_units_total"] + 1

    # One category's revenue booked under another currency: both currencies drift, though the
    # total across currencies is unchanged.
    tamper(
        lakehouse,
        lambda c: c.execute(
            update(BY_CATEGORY).where(BY_CATEGORY.c.category == category).values(currency="EUR")
        ),
    )
    moved = _reconciled(lakehouse, "category_revenue_reconciles")
    assert not moved.passed and value(moved, "drifting_currencies") == ["EUR", "USD"]
    eur = value(moved, "currencies")["EUR"]
    assert eur["silver_revenue_total"] == "0" and Decimal(eur["gold_revenue_sum"]) > 0


def test_daily_revenue_reconciles_fails_on_order_counts_or_revenue(
    lakehouse: LakehouseResource,
) -> None:
    ok = _reconciled(lakehouse, "daily_revenue_reconciles")
    assert ok.passed and value(ok, "drifting_currencies") == []
    day = first(DAILY, "order_date")
    tamper(
        lakehouse,
        lambda c: c.execute(
            update(DAILY)
            .where(DAILY.c.order_date == day)
            .values(order_count=DAILY.c.order_count + 1)
        ),
    )
    counted = _reconciled(lakehouse, "daily_revenue_reconciles")
    assert not counted.passed and counted.severity == ERROR
    assert is_blocking(gold_reconciles)
    assert value(counted, "drifting_currencies") == ["USD"]
    assert _usd(counted)["daily_order_count"] == _usd(counted)["silver_orders"] + 1

    tamper(
        lakehouse,
        lambda c: c.execute(
            update(DAILY)
            .where(DAILY.c.order_date == day)
            .values(order_count=DAILY.c.order_count - 1, revenue=DAILY.c.revenue - 1)
        ),
    )
    revenue = _reconciled(lakehouse, "daily_revenue_reconciles")
    assert not revenue.passed and value(revenue, "drifting_currencies") == ["USD"]
    before, after = _usd(ok), _usd(revenue)
    assert Decimal(after["gold_revenue_sum"]) == Decimal(before["gold_revenue_sum"]) - 1
    assert after["daily_order_count"] == after["silver_orders"]
