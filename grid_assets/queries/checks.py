"""Read-only statements behind the asset checks; each returns numbers computed in the engine."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Select, Table, and_, bindparam, func, or_, select, true
from sqlalchemy.sql.expression import BindParameter, ColumnElement, ScalarSelect, Subquery

from grid_assets.ingest.landing import HELD_STATES
from grid_assets.models.base import Instant
from grid_assets.models.bronze import Event, IngestedFile, RejectedEvent, RejectedFile
from grid_assets.models.gold import DailyRevenue, RevenueByCategory
from grid_assets.models.silver import Cursor, EventLedger, Order, OrderItem, Product, Quarantine
from grid_assets.queries.bronze import grid_events
from grid_assets.queries.dialect import row_hash, seconds_between
from grid_assets.schemas.values import ORDER_STATUSES

EVENTS = Event.__table__
HEARTBEAT = "system.heartbeat"
# The heartbeat check lists at most this many gaps (the longest), so its metadata stays small.
HEARTBEAT_GAPS_LISTED = 20


def _heartbeats_until(now: BindParameter) -> ColumnElement[bool]:
    """Heartbeats stamped at or before `now`: one stamped in the future (a skewed clock, a bad
    event) is no sign of life now, and would otherwise hide a silence until that time."""
    return and_(EVENTS.c.event_type == HEARTBEAT, EVENTS.c.occurred_at <= now)


def _heartbeat_intervals(window_start: BindParameter, now: BindParameter) -> Subquery:
    """Every heartbeat inside the window with the one before it (`started_at`, NULL for the
    first ever) and the seconds between them, paired by a window function in the engine.

    The last heartbeat before the window is read only to start the first gap ending inside it,
    so a silence across the window's start counts, with its true start; older heartbeats are
    not read."""
    is_beat = _heartbeats_until(now)
    last_before = (
        select(func.max(EVENTS.c.occurred_at))
        .where(is_beat, EVENTS.c.occurred_at < window_start)
        .scalar_subquery()
    )
    beats = (
        select(
            func.lag(EVENTS.c.occurred_at).over(order_by=EVENTS.c.occurred_at).label("started_at"),
            EVENTS.c.occurred_at.label("ended_at"),
        )
        .where(is_beat, EVENTS.c.occurred_at >= func.coalesce(last_before, window_start))
        .subquery("beats")
    )
    return (
        select(
            beats.c.started_at,
            beats.c.ended_at,
            seconds_between(beats.c.started_at, beats.c.ended_at).label("gap_seconds"),
        )
        .where(beats.c.ended_at >= window_start)
        .subquery("in_window")
    )


def _heartbeat_params(
    now: datetime, window_start: datetime, max_gap_seconds: int
) -> tuple[BindParameter, BindParameter, BindParameter]:
    return (
        bindparam("now", now, type_=Instant),
        bindparam("window_start", window_start, type_=Instant),
        bindparam("max_gap_seconds", max_gap_seconds, type_=BigInteger),
    )


def heartbeat_summary(now: datetime, window_start: datetime, max_gap_seconds: int) -> Select:
    """One row: heartbeats inside the window (`window_start` to `now`), the longest gap between
    consecutive heartbeats ending inside it, how many gaps exceed `max_gap_seconds`, the newest
    heartbeat and the seconds from it to `now` (NULL without any heartbeat)."""
    until, start, max_gap = _heartbeat_params(now, window_start, max_gap_seconds)
    gaps = _heartbeat_intervals(start, until)
    stats = select(
        func.count().label("heartbeats"),
        func.max(gaps.c.gap_seconds).label("max_gap_seconds"),
        func.count().filter(gaps.c.gap_seconds > max_gap).label("gaps_over_limit"),
    ).subquery("stats")
    newest = (
        select(func.max(EVENTS.c.occurred_at).label("last_heartbeat_at"))
        .where(_heartbeats_until(until))
        .subquery("newest")
    )
    silence = seconds_between(newest.c.last_heartbeat_at, until)
    return select(
        stats.c.heartbeats,
        stats.c.max_gap_seconds,
        stats.c.gaps_over_limit,
        newest.c.last_heartbeat_at,
        silence.label("silence_seconds"),
    ).select_from(stats.join(newest, true()))


def heartbeat_gaps(
    now: datetime,
    window_start: datetime,
    max_gap_seconds: int,
    limit: int = HEARTBEAT_GAPS_LISTED,
) -> Select:
    """The longest gaps (at most `limit`) over `max_gap_seconds` between consecutive heartbeats,
    each ending inside the window: `started_at`, `ended_at`, `gap_seconds`, longest first."""
    until, start, max_gap = _heartbeat_params(now, window_start, max_gap_seconds)
    gaps = _heartbeat_intervals(start, until)
    return (
        select(gaps.c.started_at, gaps.c.ended_at, gaps.c.gap_seconds)
        .where(gaps.c.gap_seconds > max_gap)
        .order_by(gaps.c.gap_seconds.desc(), gaps.c.ended_at.desc())
        # Inlined, as a small constant of this code: the LIMIT then never depends on whether a
        # warehouse accepts a parameter marker there.
        .limit(bindparam("gaps_listed", int(limit), literal_execute=True))
    )


def last_grid_event_at() -> Select:
    return select(func.max(EVENTS.c.occurred_at), func.max(EVENTS.c.ingested_at)).where(
        grid_events()
    )


def rejected_share() -> Select:
    rejected = select(func.count()).select_from(RejectedEvent.__table__).scalar_subquery()
    accepted = select(func.count()).where(grid_events()).select_from(EVENTS).scalar_subquery()
    return select(rejected, accepted)


def _silver_cursor() -> ScalarSelect:
    return (
        select(func.coalesce(func.max(Cursor.__table__.c.last_ingest_seq), 0))
        .where(Cursor.__table__.c.consumer == "silver")
        .scalar_subquery()
    )


def _up_to_cursor() -> list[ColumnElement[bool]]:
    return [grid_events(), EVENTS.c.ingest_seq <= _silver_cursor()]


def _fingerprint(event_id: ColumnElement, ingest_seq: ColumnElement) -> ColumnElement:
    return func.coalesce(func.sum(row_hash(event_id, ingest_seq)), 0)


def reconciliation() -> Select:
    """Bronze GRID events up to Silver's cursor and the ledger, each in one pass without a join:
    their counts and fingerprints (the sum of a 64-bit hash of each event's id and arrival
    position), and the quarantine's rows. Equal fingerprints and counts say the ledger holds
    exactly those events (two different sets of events agree by chance about once in 2^64);
    `unaccounted_events` names the difference when they do not. The ledger's own counts come
    from `ledger_outcomes`. The fingerprint is the engine's own hash (DuckDB's `hash`,
    Databricks' `xxhash64`): compared within one engine only."""
    ledger = EventLedger.__table__
    bronze = (
        select(
            func.count().label("bronze_events"),
            _fingerprint(EVENTS.c.event_id, EVENTS.c.ingest_seq).label("bronze_fingerprint"),
        )
        .where(*_up_to_cursor())
        .subquery("bronze")
    )
    ledger_fingerprint = select(
        _fingerprint(ledger.c.event_id, ledger.c.ingest_seq)
    ).scalar_subquery()
    quarantined = select(func.count()).select_from(Quarantine.__table__).scalar_subquery()
    return select(
        _silver_cursor().label("cursor"),
        bronze.c.bronze_events,
        quarantined.label("quarantine_rows"),
        bronze.c.bronze_fingerprint,
        ledger_fingerprint.label("ledger_fingerprint"),
    )


def unaccounted_events() -> Select:
    """Bronze GRID events up to Silver's cursor that the ledger lacks (an anti-join on
    `event_id`: ~2 s at 3x10^6 events, so run only when the fingerprints disagree)."""
    ledger = EventLedger.__table__
    in_ledger = select(ledger.c.event_id).where(ledger.c.event_id == EVENTS.c.event_id).exists()
    return select(func.count()).where(*_up_to_cursor(), ~in_ledger)


def ledger_outcomes() -> Select:
    ledger = EventLedger.__table__
    return select(ledger.c.outcome, func.count()).group_by(ledger.c.outcome)


def duplicate_keys(table: Table) -> Select:
    """Rows beyond one per primary key: the table's grain broken. Databricks does not enforce
    primary keys, so the pipeline's own guarantee is checked instead."""
    keys = [c for c in table.primary_key.columns]
    per_key = select(func.count().label("n")).select_from(table).group_by(*keys).subquery("per_key")
    return select(func.coalesce(func.sum(per_key.c.n - 1), 0))


def silver_violations() -> dict[str, Select]:
    """Rule violations that must never reach Silver, each counted in the engine."""
    products, orders, items = Product.__table__, Order.__table__, OrderItem.__table__
    return {
        "products_duplicate_keys": duplicate_keys(products),
        "orders_duplicate_keys": duplicate_keys(orders),
        "order_items_duplicate_keys": duplicate_keys(items),
        "products_bad_price_or_key": select(func.count())
        .select_from(products)
        .where(
            or_(
                products.c.unit_price < 0,
                products.c.product_id.is_(None),
                products.c.category.is_(None),
            )
        ),
        "orders_bad_status": select(func.count())
        .select_from(orders)
        .where(~orders.c.status.in_(ORDER_STATUSES)),
        "order_items_bad_values": select(func.count())
        .select_from(items)
        .where(
            or_(
                items.c.quantity <= 0,
                items.c.unit_price < 0,
                items.c.discount < 0,
                items.c.discount >= 1,
            )
        ),
        "order_items_without_order": select(func.count())
        .select_from(items)
        .where(
            ~select(orders.c.order_id)
            .where(
                and_(
                    orders.c.order_id == items.c.order_id,
                    orders.c.placed_event_id == items.c.event_id,
                )
            )
            .exists()
        ),
    }


def unknown_product_lines() -> Select:
    products, items = Product.__table__, OrderItem.__table__
    return (
        select(func.count())
        .select_from(items)
        .where(
            ~select(products.c.product_id)
            .where(products.c.product_id == items.c.product_id)
            .exists()
        )
    )


def gold_totals() -> Select:
    """Gold's sums per currency, each table summed in the engine: one row per currency found in
    either table (a currency only one of them holds gets zeros from the other)."""
    by_category, daily = RevenueByCategory.__table__, DailyRevenue.__table__
    per_category = (
        select(
            by_category.c.currency,
            func.sum(by_category.c.revenue).label("category_revenue"),
            func.count().label("categories"),
            func.sum(by_category.c.units).label("category_units"),
        )
        .group_by(by_category.c.currency)
        .subquery("per_category")
    )
    per_day = (
        select(
            daily.c.currency,
            func.sum(daily.c.revenue).label("daily_revenue"),
            func.count().label("days"),
            func.sum(daily.c.order_count).label("daily_order_count"),
        )
        .group_by(daily.c.currency)
        .subquery("per_day")
    )
    currency = func.coalesce(per_category.c.currency, per_day.c.currency)
    return (
        select(
            currency.label("currency"),
            func.coalesce(per_category.c.category_revenue, 0).label("category_revenue"),
            func.coalesce(per_category.c.categories, 0).label("categories"),
            func.coalesce(per_category.c.category_units, 0).label("category_units"),
            func.coalesce(per_day.c.daily_revenue, 0).label("daily_revenue"),
            func.coalesce(per_day.c.days, 0).label("days"),
            func.coalesce(per_day.c.daily_order_count, 0).label("daily_order_count"),
        )
        .select_from(
            per_category.join(per_day, per_category.c.currency == per_day.c.currency, full=True)
        )
        .order_by(currency)
    )


def held_landing_files() -> Select:
    """Landing files Bronze cannot read on from (unreadable or rewritten), with the reason last
    recorded for each."""
    files = IngestedFile.__table__
    rejected = RejectedFile.__table__
    latest = (
        select(
            rejected.c.source_file,
            rejected.c.reason,
            func.row_number()
            .over(partition_by=rejected.c.source_file, order_by=rejected.c.rejected_at.desc())
            .label("rn"),
        )
    ).subquery("latest")
    return (
        select(files.c.source_file, files.c.state, latest.c.reason, files.c.lines_read)
        .select_from(files)
        .outerjoin(latest, and_(latest.c.source_file == files.c.source_file, latest.c.rn == 1))
        .where(files.c.state.in_(HELD_STATES))
        .order_by(files.c.source_file)
    )
