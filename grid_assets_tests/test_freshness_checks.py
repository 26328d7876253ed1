"""GRID's silence is noticed: heartbeat_gaps and events_freshness against the wall clock, their
settings, and the checks-only job and schedule that evaluate them every 15 minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from pydantic import ValidationError
from sqlalchemy import func, insert, select

from grid_assets.config import (
    DEFAULT_HEARTBEAT_MAX_GAP_S,
    DEFAULT_HEARTBEAT_MAX_SILENCE_S,
    HEARTBEAT_MAX_GAP_VAR,
    HEARTBEAT_MAX_SILENCE_VAR,
    HEARTBEAT_WINDOW_VAR,
    ConfigurationError,
    HeartbeatRules,
)
from grid_assets.definitions import build_definitions
from grid_assets.defs.bronze.checks import events_freshness, heartbeat_gaps
from grid_assets.defs.bronze.schedules import freshness_checks_schedule
from grid_assets.defs.gold.assets import gold_assets
from grid_assets.defs.resources import HeartbeatPolicy, heartbeat_policy
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.bronze import Event
from grid_assets.queries.checks import HEARTBEAT_GAPS_LISTED
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.settings import load_settings
from grid_assets_tests.conftest import local_settings, run_medallion, write_events

EVENTS = Event.__table__
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def insert_events(lakehouse: Lakehouse, event_type: str, times: list[datetime]) -> None:
    """Rows straight into bronze.events, numbered after what is there."""
    with lakehouse.begin() as conn:
        seq = conn.execute(select(func.coalesce(func.max(EVENTS.c.ingest_seq), 0))).scalar_one()
        conn.execute(
            insert(EVENTS),
            [
                {
                    "event_id": f"{event_type}-{seq + i}",
                    "ingest_seq": seq + i,
                    "event_type": event_type,
                    "occurred_at": at,
                    "ingested_at": at,
                    "source": "grid-monitor",
                    "payload": "{}",
                    "envelope_hash": f"h{seq + i}",
                }
                for i, at in enumerate(times, start=1)
            ],
        )


def beats(start: datetime, end: datetime, every: timedelta = 10 * MINUTE) -> list[datetime]:
    """Heartbeats from `start` to `end`, both included, `every` apart."""
    times = []
    while start <= end:
        times.append(start)
        start += every
    return times


def resource_for(lakehouse: Lakehouse) -> LakehouseResource:
    return LakehouseResource(duckdb_path=str(lakehouse.engine.url.database))


def check(lakehouse: Lakehouse, **policy: int) -> dg.AssetCheckResult:
    return heartbeat_gaps(
        lakehouse=resource_for(lakehouse), heartbeat_policy=HeartbeatPolicy(**policy)
    )


def meta(result: dg.AssetCheckResult, name: str):
    return result.metadata[name].value


# --- heartbeat_gaps ----------------------------------------------------------------------------


def test_a_gap_inside_the_window_fails_as_an_error_and_is_listed(lakehouse: Lakehouse) -> None:
    now = utc_now()
    stopped, resumed = now - 10 * HOUR, now - 8 * HOUR
    insert_events(lakehouse, "system.heartbeat", beats(now - 30 * HOUR, stopped))
    insert_events(lakehouse, "system.heartbeat", beats(resumed, now - 5 * MINUTE))

    result = check(lakehouse)

    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert meta(result, "gaps") == [{"start": str(stopped), "end": str(resumed), "seconds": 7200}]
    assert meta(result, "gaps_over_limit") == 1
    assert meta(result, "max_gap_seconds") == 7200
    assert meta(result, "allowed_gap_seconds") == DEFAULT_HEARTBEAT_MAX_GAP_S
    assert meta(result, "silence_seconds") < DEFAULT_HEARTBEAT_MAX_SILENCE_S
    assert result.description and "1 gap(s) over 3600 s" in result.description
    # A longer allowed gap lets the same history pass: the gap alone failed it.
    assert check(lakehouse, max_gap_seconds=7200).passed


def test_the_check_is_not_blocking() -> None:
    [spec] = heartbeat_gaps.check_specs
    assert spec.name == "heartbeat_gaps" and not spec.blocking


def test_a_gap_older_than_the_window_no_longer_fails(lakehouse: Lakehouse) -> None:
    now = utc_now()
    insert_events(lakehouse, "system.heartbeat", beats(now - 40 * HOUR, now - 35 * HOUR))
    insert_events(lakehouse, "system.heartbeat", beats(now - 30 * HOUR, now - 5 * MINUTE))

    result = check(lakehouse)

    assert result.passed, result.description
    assert meta(result, "gaps") == [] and meta(result, "gaps_over_limit") == 0
    assert meta(result, "max_gap_seconds") == 600
    # Every ten minutes for 24 h; the one at exactly now - 24 h drops out as the clock moves on.
    assert meta(result, "heartbeats_in_window") in {24 * 6, 24 * 6 - 1}
    # The same five-hour gap inside a two-day window still fails.
    wider = check(lakehouse, window_hours=48)
    assert not wider.passed and meta(wider, "gaps")[0]["seconds"] == 5 * 3600


def test_a_gap_across_the_window_start_counts_with_its_true_start(lakehouse: Lakehouse) -> None:
    now = utc_now()
    insert_events(lakehouse, "system.heartbeat", [now - 26 * HOUR])
    insert_events(lakehouse, "system.heartbeat", beats(now - 20 * HOUR, now - 5 * MINUTE))

    result = check(lakehouse)

    assert not result.passed
    assert meta(result, "gaps") == [
        {"start": str(now - 26 * HOUR), "end": str(now - 20 * HOUR), "seconds": 6 * 3600}
    ]


def test_silence_past_the_threshold_fails(lakehouse: Lakehouse) -> None:
    now = utc_now()
    insert_events(lakehouse, "system.heartbeat", beats(now - 20 * HOUR, now - 2 * HOUR))

    result = check(lakehouse)

    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert meta(result, "gaps_over_limit") == 0  # no gap between heartbeats: only the silence
    assert 7200 <= meta(result, "silence_seconds") < 7200 + 60
    assert meta(result, "last_heartbeat_at") == str(now - 2 * HOUR)
    assert result.description and "no heartbeat for" in result.description
    assert check(lakehouse, max_silence_seconds=3 * 3600).passed


def test_a_heartbeat_stamped_in_the_future_does_not_hide_a_silence(lakehouse: Lakehouse) -> None:
    now = utc_now()
    insert_events(lakehouse, "system.heartbeat", beats(now - 10 * HOUR, now - 2 * HOUR))
    insert_events(lakehouse, "system.heartbeat", [now + 48 * HOUR])  # a skewed clock

    result = check(lakehouse)

    assert not result.passed
    assert meta(result, "last_heartbeat_at") == str(now - 2 * HOUR)
    assert meta(result, "gaps_over_limit") == 0


def test_no_heartbeat_at_all_fails(lakehouse: Lakehouse) -> None:
    insert_events(lakehouse, "order.paid", [utc_now() - MINUTE])

    result = check(lakehouse)

    assert not result.passed
    assert meta(result, "heartbeats_in_window") == 0 and meta(result, "silence_seconds") == -1
    assert result.description and "no system.heartbeat event" in result.description


def test_the_metadata_lists_the_longest_gaps_only(lakehouse: Lakehouse) -> None:
    now = utc_now()
    lengths = [3601 + 60 * i for i in range(HEARTBEAT_GAPS_LISTED + 5)]
    times = [now - MINUTE]
    for seconds in lengths:
        times.append(times[-1] - timedelta(seconds=seconds))
    insert_events(lakehouse, "system.heartbeat", sorted(times))

    result = check(lakehouse, window_hours=48)

    assert meta(result, "gaps_over_limit") == len(lengths)
    listed = [gap["seconds"] for gap in meta(result, "gaps")]
    assert listed == sorted(lengths, reverse=True)[:HEARTBEAT_GAPS_LISTED]


def test_a_silent_grid_does_not_stop_the_pipeline(tmp_path: Path) -> None:
    """Non-blocking: with GRID silent for days, the events that did arrive still reach Gold."""
    landing = tmp_path / "landing"
    write_events(
        landing / "a.ndjson",
        [
            {
                "event_id": "hb-1",
                "event_type": "system.heartbeat",
                "occurred_at": "2026-01-05T02:00:00Z",
                "payload": {},
            },
            {
                "event_id": "p-1",
                "event_type": "product.created",
                "occurred_at": "2026-01-05T02:01:00Z",
                "payload": {"product_id": "p1", "category": "tools", "unit_price": "2.50"},
            },
            {
                "event_id": "o-1",
                "event_type": "order.placed",
                "occurred_at": "2026-01-05T02:02:00Z",
                "payload": {
                    "order_id": "o1",
                    "items": [{"product_id": "p1", "quantity": 2, "unit_price": "2.50"}],
                },
            },
        ],
    )

    result = run_medallion(landing, tmp_path / "grid.duckdb")

    assert result.success
    [heartbeat] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "heartbeat_gaps"
    ]
    assert not heartbeat.passed and heartbeat.severity == dg.AssetCheckSeverity.ERROR
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "gold/revenue_by_category" in materialized and "gold/daily_revenue" in materialized


# --- events_freshness --------------------------------------------------------------------------


def test_events_freshness_fails_on_stale_grid_events(lakehouse: Lakehouse) -> None:
    resource = resource_for(lakehouse)
    now = utc_now()
    insert_events(lakehouse, "order.paid", [now - 7 * HOUR])
    # The pipeline's own events say nothing about GRID.
    insert_events(lakehouse, "pipeline.table_written", [now - MINUTE])

    stale = events_freshness(lakehouse=resource)
    assert not stale.passed
    assert 7 * 3600 <= meta(stale, "lag_seconds") < 7 * 3600 + 60
    assert meta(stale, "last_event_occurred_at") == str(now - 7 * HOUR)

    insert_events(lakehouse, "order.paid", [now - HOUR])
    assert events_freshness(lakehouse=resource).passed


# --- settings ----------------------------------------------------------------------------------


def test_heartbeat_rules_default_to_an_hour_in_a_day() -> None:
    settings = load_settings({})
    assert settings.heartbeat == HeartbeatRules(max_gap_s=3600, window_h=24, max_silence_s=3600)
    # The same hour in a day reaches the check's resource, and is the resource's own default
    # (a check invoked without settings, as in the tests above).
    hour_in_a_day = HeartbeatPolicy(max_gap_seconds=3600, window_hours=24, max_silence_seconds=3600)
    assert heartbeat_policy(settings) == hour_in_a_day == HeartbeatPolicy()
    defs = build_definitions(settings)
    assert defs.resources is not None and defs.resources["heartbeat_policy"] == hour_in_a_day


def test_heartbeat_rules_come_from_the_environment_to_the_resource() -> None:
    settings = load_settings(
        {
            HEARTBEAT_MAX_GAP_VAR: " 900 ",
            HEARTBEAT_WINDOW_VAR: "6",
            HEARTBEAT_MAX_SILENCE_VAR: "600",
        }
    )
    assert settings.heartbeat == HeartbeatRules(max_gap_s=900, window_h=6, max_silence_s=600)
    policy = heartbeat_policy(settings)
    assert (policy.max_gap_seconds, policy.window_hours, policy.max_silence_seconds) == (
        900,
        6,
        600,
    )
    defs = build_definitions(settings)
    assert defs.resources is not None and defs.resources["heartbeat_policy"] == policy
    # Production reads the same rules.
    production = load_settings(
        {
            "GRID_ENV": "production",
            "DATABRICKS_SERVER_HOSTNAME": "adb-1.2.azuredatabricks.net",
            "DATABRICKS_HTTP_PATH": "/sql/1.0/warehouses/abc",
            "DATABRICKS_TOKEN": "dapi" + "0" * 32,
            "DATABRICKS_CATALOG": "main",
            HEARTBEAT_WINDOW_VAR: "12",
        }
    )
    assert production.heartbeat.window_h == 12


@pytest.mark.parametrize(
    ("var", "value"),
    [
        (HEARTBEAT_MAX_GAP_VAR, "0"),
        (HEARTBEAT_MAX_GAP_VAR, "1h"),
        (HEARTBEAT_MAX_GAP_VAR, "86401"),
        (HEARTBEAT_MAX_GAP_VAR, "9" * 5000),
        (HEARTBEAT_WINDOW_VAR, "721"),
        (HEARTBEAT_WINDOW_VAR, "1.5"),
        (HEARTBEAT_WINDOW_VAR, "-2"),
        (HEARTBEAT_MAX_SILENCE_VAR, "\u0663"),
        (HEARTBEAT_MAX_SILENCE_VAR, "ten minutes"),
    ],
)
def test_a_malformed_heartbeat_variable_stops_the_load(var: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=var):
        load_settings({var: value})


def test_every_malformed_heartbeat_variable_is_named_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(HEARTBEAT_WINDOW_VAR, "a day")
    monkeypatch.setenv(HEARTBEAT_MAX_SILENCE_VAR, "0")
    from grid_assets.definitions import defs

    with pytest.raises(ConfigurationError) as caught:
        defs()  # the code location's loader, as `dagster dev` calls it
    message = str(caught.value)
    assert HEARTBEAT_WINDOW_VAR in message and "hours in 1..720" in message
    assert HEARTBEAT_MAX_SILENCE_VAR in message and "seconds in 1..86400" in message
    assert HEARTBEAT_MAX_GAP_VAR not in message


def test_the_resource_refuses_rules_outside_the_bounds() -> None:
    with pytest.raises(ValidationError, match="max_gap_seconds"):
        HeartbeatPolicy(max_gap_seconds=0)
    with pytest.raises(ValidationError, match="window_hours"):
        HeartbeatPolicy(window_hours=721)


# --- the checks-only job and its schedule -------------------------------------------------------


def test_the_freshness_job_evaluates_the_checks_and_materializes_nothing(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    now = utc_now()
    insert_events(lakehouse, "system.heartbeat", beats(now - 30 * HOUR, now - 3 * HOUR))
    insert_events(lakehouse, "order.paid", [now - HOUR])
    with lakehouse.connect() as conn:
        rows_before = conn.execute(select(func.count()).select_from(EVENTS)).scalar_one()
    lakehouse.engine.dispose()  # the run opens the file itself
    db = Path(str(lakehouse.engine.url.database))
    defs = build_definitions(local_settings(tmp_path / "landing", db))
    job = defs.resolve_job_def("freshness_checks_job")

    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)

    # A failing heartbeat check is an error, not a failed run: nothing downstream depends on it.
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"heartbeat_gaps", "events_freshness"}
    assert not evaluations["heartbeat_gaps"].passed
    assert evaluations["heartbeat_gaps"].severity == dg.AssetCheckSeverity.ERROR
    assert evaluations["events_freshness"].passed
    assert result.get_asset_materialization_events() == []
    assert not [
        e
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ]
    assert set(job.asset_layer.executable_asset_keys) == set()
    with lakehouse.connect() as conn:
        assert conn.execute(select(func.count()).select_from(EVENTS)).scalar_one() == rows_before


def test_the_schedule_runs_the_checks_every_15_minutes() -> None:
    assert freshness_checks_schedule.cron_schedule == "*/15 * * * *"
    assert freshness_checks_schedule.execution_timezone == "UTC"
    assert freshness_checks_schedule.job_name == "freshness_checks_job"
    assert freshness_checks_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    [request] = freshness_checks_schedule.evaluate_tick(dg.build_schedule_context()).run_requests
    assert request.job_name in (None, "freshness_checks_job")


# --- Gold freshness ------------------------------------------------------------------------------


def test_gold_assets_carry_the_nightly_freshness_policy() -> None:
    nightly = dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=26), warn_window=timedelta(hours=25)
    )
    specs = [spec for asset in gold_assets for spec in asset.specs]
    assert len(specs) == 4
    assert all(spec.freshness_policy == nightly for spec in specs), specs
