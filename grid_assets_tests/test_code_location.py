"""Tier 4: the code location loads with every job, schedule, sensor and check expected."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from grid_assets.definitions import build_definitions
from grid_assets_tests.conftest import local_settings


def test_definitions_validate_and_expose_the_graph(tmp_path: Path) -> None:
    defs = build_definitions(local_settings(tmp_path / "landing", tmp_path / "db.duckdb"))
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == {
        "bronze/events",
        "bronze/rejected_events",
        "bronze/rejected_files",
        "silver/products",
        "silver/orders",
        "silver/order_items",
        "silver/quarantine",
        "silver/event_ledger",
        "gold/revenue_by_category",
        "gold/daily_revenue",
        "gold/order_status_counts",
        "gold/product_revenue",
    }
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name == key.path[0]
        assert node.description and node.description.rstrip().endswith(".")
        assert "One row per" in node.description, key
        assert node.metadata["dagster/table_name"] == ".".join(key.path)
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    # Exactly these: a check added or lost shows up here (each has a test that makes it fail).
    assert checks == {
        ("bronze/events", "heartbeat_gaps"),
        ("bronze/events", "events_freshness"),
        ("bronze/events", "event_ids_unique"),
        ("bronze/rejected_events", "rejected_share"),
        ("bronze/rejected_files", "landing_files_readable"),
        ("silver/event_ledger", "events_reconcile"),
        ("silver/order_items", "silver_rules_hold"),
        ("silver/order_items", "lines_with_unknown_product"),
        ("gold/revenue_by_category", "category_revenue_reconciles"),
        ("gold/daily_revenue", "daily_revenue_reconciles"),
    }
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "medallion_job",
        "silver_gold_job",
        "freshness_checks_job",
    }
    assert {s.name for s in defs.schedules or []} == {
        "nightly_medallion_schedule",
        "freshness_checks_schedule",
    }
    assert {s.name for s in defs.sensors or []} == {
        "landing_files_sensor",
        "new_events_sensor",
        "alerts_sensor",
    }
    assert set(defs.resources or {}) == {
        "lakehouse",
        "landing",
        "heartbeat_policy",
        "alert_webhook",
    }


def test_medallion_job_includes_every_check(tmp_path: Path) -> None:
    defs = build_definitions(local_settings(tmp_path / "landing", tmp_path / "db.duckdb"))
    job = defs.resolve_job_def("medallion_job")
    graph = defs.resolve_asset_graph()
    assert set(job.asset_layer.asset_graph.asset_check_keys) == set(graph.asset_check_keys)


def test_alerts_sensor_runs_by_default_and_only_logs_without_a_webhook(tmp_path: Path) -> None:
    defs = build_definitions(local_settings(tmp_path / "landing", tmp_path / "db.duckdb"))
    sensor = next(s for s in defs.sensors or [] if s.name == "alerts_sensor")
    assert sensor.default_status is dg.DefaultSensorStatus.RUNNING
    assert not sensor.targets  # it reads the event log; it starts no run
    assert (defs.resources or {})["alert_webhook"].url is None  # type: ignore[union-attr]


def test_freshness_checks_job_holds_the_two_silence_checks_and_no_asset(tmp_path: Path) -> None:
    defs = build_definitions(local_settings(tmp_path / "landing", tmp_path / "db.duckdb"))
    job = defs.resolve_job_def("freshness_checks_job")
    checks = {key.name for key in job.asset_layer.asset_graph.asset_check_keys}
    assert checks == {"heartbeat_gaps", "events_freshness"}
    assert not job.asset_layer.executable_asset_keys
    assert {node.name for node in job.graph.node_defs} == {
        "bronze__events_heartbeat_gaps",
        "bronze__events_events_freshness",
    }
    schedule = defs.resolve_schedule_def("freshness_checks_schedule")
    assert schedule.job_name == "freshness_checks_job"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
