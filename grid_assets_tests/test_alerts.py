"""Alerts: payload, once per incident, resolution, delivery with retries, secrecy, the sensor on
a real instance and `grid run`; every webhook is an HTTP server on 127.0.0.1 run by the test."""

from __future__ import annotations

import json
import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import delete, insert, select
from typer.testing import CliRunner

from grid_assets.alerts import (
    INCIDENTS,
    Alert,
    DeliveryFailed,
    Incident,
    Observation,
    Webhook,
    build_payload,
    deliver,
    post_json,
    reconcile,
)
from grid_assets.cli import app
from grid_assets.config import ConfigurationError
from grid_assets.definitions import build_definitions
from grid_assets.defs.alerts import AlertWebhook, SensorCursor, alerts_sensor
from grid_assets.logging_redaction import MASK, redact
from grid_assets.models.silver import EventLedger
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.settings import alert_settings, load_settings
from grid_assets_tests.conftest import write_events

RECONCILE = "check:silver/event_ledger:events_reconcile"
MEDALLION = "run:medallion_job"
LEDGER = EventLedger.__table__


# -- webhooks on 127.0.0.1 -------------------------------------------------------------------------
@dataclass
class Hook:
    url: str
    received: list[dict] = field(default_factory=list)

    def by_incident(self, incident: str) -> list[dict]:
        return [body for body in self.received if body["incident"] == incident]


def secret_path() -> str:
    # Shaped like a Slack incoming webhook: the credential is the path.
    return f"/services/T0GRID/B0ALERT/{secrets.token_hex(12)}"


@contextmanager
def webhook_server(statuses: tuple[int, ...] = ()) -> Iterator[Hook]:
    """Answers each POST with the next of `statuses`, then 200; records every JSON body."""
    answers = list(statuses)
    hook = Hook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            assert self.headers["Content-Type"] == "application/json"
            status = answers.pop(0) if answers else 200
            if status == 200:
                hook.received.append(json.loads(body))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:  # the server's own log names the path
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}{secret_path()}"
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def silent_server() -> Iterator[str]:
    """A socket that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}{secret_path()}"
    finally:
        sock.close()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests go straight to 127.0.0.1, never through a proxy of the machine's environment;
    no alert variable of the developer's shell leaks in."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("GRID_ALERT_WEBHOOK_URL", "GRID_ALERT_ON_WARN", "GRID_UI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def assert_secret_kept(url: str, *texts: str) -> None:
    path = url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    for text in texts:
        assert url not in text and path not in text


# -- pure: the message and the incident rules ------------------------------------------------------
def failed_check(at: float, run_id: str = "run-one-0001", **rest) -> Observation:
    values = {
        "passed": False,
        "run_id": run_id,
        "at": at,
        "job": "medallion_job",
        "severity": "ERROR",
        "description": "Bronze events and the ledger disagree",
        "metadata": {"unaccounted": "3", "ledger_rows": "0"},
        **rest,
    }
    return Observation.of_check("silver/event_ledger", "events_reconcile", **values)


def test_payload_is_readable_text_and_structured_fields() -> None:
    alert = Alert("check_failed", failed_check(1_800_000_000.0), Incident(RECONCILE, 1.8e9, "r"))
    payload = build_payload(alert, "http://dagster.example:3000/")
    assert payload["text"] == (
        "GRID alert: check events_reconcile on silver/event_ledger failed (ERROR) in run "
        "run-one- of medallion_job: Bronze events and the ledger disagree. unaccounted=3, "
        "ledger_rows=0. Run: http://dagster.example:3000/runs/run-one-0001"
    )
    assert "\n" not in payload["text"]
    assert {k: v for k, v in payload.items() if k != "text"} == {
        "kind": "check_failed",
        "incident": RECONCILE,
        "asset": "silver/event_ledger",
        "check": "events_reconcile",
        "job": "medallion_job",
        "severity": "ERROR",
        "description": "Bronze events and the ledger disagree",
        "metadata": {"unaccounted": "3", "ledger_rows": "0"},
        "run_id": "run-one-0001",
        "run_url": "http://dagster.example:3000/runs/run-one-0001",
        "occurred_at": "2027-01-15T08:00:00+00:00",
        "failing_since": "2027-01-15T08:00:00+00:00",
    }
    json.dumps(payload)  # what is POSTed


def test_one_alert_per_incident_then_one_resolved() -> None:
    book, alerts = reconcile({}, [failed_check(1.0)], alert_on_warn=False)
    assert [(a.kind, a.observation.incident) for a in alerts] == [("check_failed", RECONCILE)]
    # The 15-minute schedule evaluates it again, and again: still the same incident.
    for at in (2.0, 3.0):
        book, alerts = reconcile(book, [failed_check(at, run_id=f"run-{at}")], alert_on_warn=False)
        assert alerts == [] and book[RECONCILE].opened_at == 1.0
    passed = failed_check(4.0, run_id="run-four-0004", passed=True, description=None)
    book, alerts = reconcile(book, [passed], alert_on_warn=False)
    assert book == {} and [a.kind for a in alerts] == ["resolved"]
    text = build_payload(alerts[0], None)["text"]
    assert text.startswith("GRID resolved: check events_reconcile on silver/event_ledger passes")
    assert "run-four" in text and "(run run-one-)" in text and "Run:" not in text
    assert reconcile(book, [passed], alert_on_warn=False) == ({}, [])


def test_only_the_latest_observation_of_an_incident_counts() -> None:
    flapped = [failed_check(1.0), failed_check(2.0, passed=True)]
    assert reconcile({}, flapped, alert_on_warn=False) == ({}, [])
    book, alerts = reconcile({}, list(reversed(flapped)), alert_on_warn=False)
    assert list(book) == [RECONCILE] and len(alerts) == 1


def test_warn_checks_alert_only_when_asked() -> None:
    warn = failed_check(1.0, severity="WARN")
    assert reconcile({}, [warn], alert_on_warn=False) == ({}, [])
    _, alerts = reconcile({}, [warn], alert_on_warn=True)
    assert [a.kind for a in alerts] == ["check_failed"]
    assert build_payload(alerts[0], None)["severity"] == "WARN"


def test_failed_runs_alert_and_a_successful_run_of_the_job_resolves() -> None:
    failed = Observation.of_run(
        "medallion_job", failed=True, run_id="abcdef12-3", at=1.0, description="Steps failed."
    )
    book, alerts = reconcile({}, [failed], alert_on_warn=False)
    payload = build_payload(alerts[0], "http://127.0.0.1:3000")
    assert payload["kind"] == "run_failed" and payload["job"] == "medallion_job"
    assert payload["text"] == (
        "GRID alert: job medallion_job failed (ERROR) in run abcdef12: Steps failed. "
        "Run: http://127.0.0.1:3000/runs/abcdef12-3"
    )
    succeeded = Observation.of_run("medallion_job", failed=False, run_id="r2", at=2.0)
    book, alerts = reconcile(book, [succeeded], alert_on_warn=False)
    assert book == {} and build_payload(alerts[0], None)["kind"] == "resolved"


def test_the_lakehouse_book_compiles_for_databricks() -> None:
    from databricks.sqlalchemy import DatabricksDialect
    from sqlalchemy.schema import CreateTable

    dialect = DatabricksDialect()
    ddl = str(CreateTable(INCIDENTS, if_not_exists=True).compile(dialect=dialect))
    assert "CREATE TABLE IF NOT EXISTS silver.alert_incidents" in ddl
    assert "opened_at TIMESTAMP NOT NULL" in ddl and "USING DELTA" in ddl
    rows = [{"incident": RECONCILE, "opened_at": 1, "run_id": "r", "severity": "ERROR"}]
    assert "INSERT INTO silver.alert_incidents" in str(
        insert(INCIDENTS).values(rows).compile(dialect=dialect)
    )


# -- delivery --------------------------------------------------------------------------------------
def an_alert() -> Alert:
    return Alert("check_failed", failed_check(1.0), Incident(RECONCILE, 1.0, "run-one-0001"))


def test_delivery_posts_the_payload(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with webhook_server() as hook:
        assert deliver([an_alert()], Webhook(hook.url), "http://127.0.0.1:3000") == [True]
    assert hook.received == [build_payload(an_alert(), "http://127.0.0.1:3000")]
    assert_secret_kept(hook.url, caplog.text)


def test_a_500_is_retried_and_delivered(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with webhook_server(statuses=(500,)) as hook:
        started = time.monotonic()
        assert deliver([an_alert()], Webhook(hook.url, retry_window_s=10), None) == [True]
        assert time.monotonic() - started < 5
    assert [body["incident"] for body in hook.received] == [RECONCILE]
    assert "delivered after 2 attempts" in caplog.text
    assert_secret_kept(hook.url, caplog.text)


def test_a_4xx_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    with webhook_server(statuses=(404, 200)) as hook:
        assert deliver([an_alert()], Webhook(hook.url), None) == [False]
        assert hook.received == []
    assert "after 1 attempt(s)" in caplog.text and "HTTP 404" in caplog.text
    assert_secret_kept(hook.url, caplog.text)


def test_a_server_that_never_answers_costs_a_bounded_time(caplog: pytest.LogCaptureFixture) -> None:
    with silent_server() as url:
        webhook = Webhook(url, request_timeout_s=0.5, retry_window_s=2.0)
        started = time.monotonic()
        # The alerts share the batch's window: once it is over, the rest are not attempted.
        assert deliver([an_alert()] * 3, webhook, None) == [False, False, False]
        elapsed = time.monotonic() - started
        with pytest.raises(DeliveryFailed) as caught:
            post_json(url, {"text": "x"}, 0.2)
    assert 1.5 <= elapsed < 3.0, elapsed
    assert caplog.text.count("not delivered to the webhook") == 3
    assert "TimeoutError" in caplog.text and "retry window is over" in caplog.text
    assert_secret_kept(url, caplog.text, str(caught.value), repr(caught.value))
    # Nothing chained is shown with it (urllib's own errors hold the URL).
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_without_a_url_alerts_are_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert deliver([an_alert()], None, None) == [False]
    assert "GRID alert: check events_reconcile" in caplog.text
    assert "GRID_ALERT_WEBHOOK_URL is not set" in caplog.text


# -- configuration ---------------------------------------------------------------------------------
def test_alert_settings_are_checked_at_load_and_the_url_is_masked() -> None:
    url = f"https://hooks.example.com{secret_path()}"
    settings = alert_settings({"GRID_ALERT_WEBHOOK_URL": url, "GRID_ALERT_ON_WARN": "Yes"})
    assert (settings.webhook_set, settings.on_warn) == (True, True)
    assert settings.ui_base_url == "http://127.0.0.1:3000"
    assert url not in repr(settings)
    assert redact(f"POST {url} failed") == f"POST {MASK} failed"
    assert redact(f"url: {url.split('.com')[1]}") == f"url: {MASK}"
    assert load_settings({"GRID_UI_BASE_URL": "https://dagster.example/"}).alerts.ui_base_url == (
        "https://dagster.example"
    )

    bad_url = "ftp://hooks.example.com" + secret_path()
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            {
                "GRID_ALERT_WEBHOOK_URL": bad_url,
                "GRID_ALERT_ON_WARN": "maybe",
                "GRID_UI_BASE_URL": "x",
            }
        )
    text = str(caught.value)
    assert "GRID_ALERT_WEBHOOK_URL must be an http:// or https:// URL" in text
    assert "GRID_ALERT_ON_WARN must be true or false" in text and "GRID_UI_BASE_URL" in text
    assert bad_url not in text and bad_url.split(".com")[1] not in text


def test_the_ui_config_view_shows_the_variable_name_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dagster._core.remote_representation.external_data import RepositorySnap

    url = f"https://hooks.example.com{secret_path()}"
    monkeypatch.setenv("GRID_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("GRID_DUCKDB_PATH", str(tmp_path / "db.duckdb"))
    defs = build_definitions(load_settings())
    snapshot = RepositorySnap.from_def(defs.get_repository_def())
    resource = next(r for r in snapshot.resources if r.name == "alert_webhook")
    assert resource.configured_values["url"].name == "GRID_ALERT_WEBHOOK_URL"  # type: ignore[union-attr]
    assert url not in dg.serialize_value(snapshot)
    with defs.resources["alert_webhook"].process_config_and_initialize_cm() as resolved:  # type: ignore[union-attr]
        assert resolved.url == url and url not in repr(resolved) and url not in str(resolved)
    sensor = next(s for s in defs.sensors or [] if s.name == "alerts_sensor")
    assert sensor.default_status is dg.DefaultSensorStatus.RUNNING


# -- the sensor on a real instance, and `grid run` -------------------------------------------------
def small_landing(root: Path) -> Path:
    landing = root / "landing"
    write_events(
        landing / "events.ndjson",
        [
            {
                "event_id": "p1",
                "event_type": "product.created",
                "occurred_at": "2026-01-01T00:00:00Z",
                "payload": {"product_id": "P1", "category": "home", "unit_price": "10.00"},
            },
            {
                "event_id": "o1",
                "event_type": "order.placed",
                "occurred_at": "2026-01-01T01:00:00Z",
                "payload": {
                    "order_id": "O1",
                    "items": [{"product_id": "P1", "quantity": 2, "unit_price": "10.00"}],
                },
            },
        ],
    )
    return landing


class Ledger:
    """Loses Silver's ledger (the blocking `events_reconcile` then fails every run) and restores
    it (the check passes again), as `test_cli_run.py` breaks a reconciliation."""

    def __init__(self, db: Path) -> None:
        self.lakehouse = LakehouseResource(duckdb_path=str(db)).get_lakehouse()
        self.rows: list[dict] = []

    def lose(self) -> None:
        with self.lakehouse.begin() as conn:
            self.rows = [dict(r) for r in conn.execute(select(LEDGER)).mappings()]
            conn.execute(delete(LEDGER))
        assert self.rows

    def restore(self) -> None:
        with self.lakehouse.begin() as conn:
            conn.execute(insert(LEDGER).values(self.rows))

    def open_incidents(self) -> set[str]:
        with self.lakehouse.connect() as conn:
            return set(conn.execute(select(INCIDENTS.c.incident)).scalars())


def test_alerts_sensor_after_real_runs(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    db = tmp_path / "grid.duckdb"
    monkeypatch.setenv("GRID_LANDING_DIR", str(small_landing(tmp_path)))
    monkeypatch.setenv("GRID_DUCKDB_PATH", str(db))
    monkeypatch.setenv("GRID_UI_BASE_URL", "http://dagster.example:3000")
    ledger = Ledger(db)
    with webhook_server() as hook, dg.instance_for_test() as instance:
        monkeypatch.setenv("GRID_ALERT_WEBHOOK_URL", hook.url)
        defs = build_definitions(load_settings())
        job = defs.resolve_job_def("medallion_job")

        def run() -> dg.ExecuteInProcessResult:
            return job.execute_in_process(instance=instance, raise_on_error=False)

        def evaluate(cursor: str | None, webhook: object = None) -> str:
            # As the daemon does: the code location's resource (its EnvVar resolved here).
            resources = {"alert_webhook": webhook or (defs.resources or {})["alert_webhook"]}
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, definitions=defs, resources=resources
            )
            result = alerts_sensor(context)
            assert isinstance(result, dg.SensorResult) and result.cursor
            return result.cursor

        assert run().success
        cursor = evaluate(None)
        assert hook.by_incident(RECONCILE) == [] and hook.by_incident(MEDALLION) == []

        ledger.lose()
        failed = run()
        assert not failed.success

        # A webhook that never answers: the tick still ends, within its bound, and logs.
        with silent_server() as silent:
            started = time.monotonic()
            lost = evaluate(
                cursor,
                AlertWebhook(url=silent, request_timeout_seconds=0.3, retry_window_seconds=1.0),
            )
            assert time.monotonic() - started < 10
        out, err = capfd.readouterr()  # the tick's log (context.log) goes to Dagster's handler
        assert "not delivered to the webhook" in err and "TimeoutError" in err
        logged = [out, err]
        assert {RECONCILE, MEDALLION} <= {i["key"] for i in SensorCursor.parse(lost).book}

        cursor = evaluate(cursor)  # the same tick again, now delivered
        (check_alert,) = hook.by_incident(RECONCILE)
        (run_alert,) = hook.by_incident(MEDALLION)
        link = f"http://dagster.example:3000/runs/{failed.run_id}"
        assert check_alert["kind"] == "check_failed" and check_alert["severity"] == "ERROR"
        assert check_alert["run_id"] == failed.run_id and check_alert["run_url"] == link
        assert check_alert["metadata"]["ledger_rows"] == "0"
        assert link in check_alert["text"] and "events_reconcile" in check_alert["text"]
        assert run_alert["kind"] == "run_failed" and run_alert["run_url"] == link
        assert instance.get_run_by_id(failed.run_id) is not None

        # Still failing on the next evaluation (a later run): no second alert.
        assert not run().success
        cursor = evaluate(cursor)
        assert len(hook.by_incident(RECONCILE)) == 1 and len(hook.by_incident(MEDALLION)) == 1
        # The cursor is the state: a restarted daemon evaluating it again sends nothing new.
        assert evaluate(cursor) and len(hook.received) == len(
            {b["incident"] for b in hook.received}
        )

        ledger.restore()
        fixed = run()
        assert fixed.success
        cursor = evaluate(cursor)
        assert [b["kind"] for b in hook.by_incident(RECONCILE)] == ["check_failed", "resolved"]
        assert [b["kind"] for b in hook.by_incident(MEDALLION)] == ["run_failed", "resolved"]
        resolved = hook.by_incident(RECONCILE)[-1]
        assert resolved["run_id"] == fixed.run_id and failed.run_id[:8] in resolved["text"]
        assert RECONCILE not in {i["key"] for i in SensorCursor.parse(cursor).book}
        assert_secret_kept(silent, *logged)
    assert_secret_kept(hook.url, caplog.text, cursor, *capfd.readouterr())


def test_grid_run_alerts_for_its_own_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    db = tmp_path / "grid.duckdb"
    ledger = Ledger(db)
    runner = CliRunner()
    with webhook_server() as hook:
        env = {
            "GRID_ENV": "local",
            "GRID_LANDING_DIR": str(small_landing(tmp_path)),
            "GRID_DUCKDB_PATH": str(db),
            "GRID_ALERT_WEBHOOK_URL": hook.url,
        }

        def grid_run(expected_exit: int) -> str:
            result = runner.invoke(app, ["run", "--no-show-gold"], env=env)
            assert result.exit_code == expected_exit, result.output
            return result.output

        outputs = [grid_run(0)]
        assert hook.by_incident(RECONCILE) == [] and hook.by_incident(MEDALLION) == []
        ledger.lose()
        outputs.append(grid_run(1))
        (check_alert,) = hook.by_incident(RECONCILE)
        (run_alert,) = hook.by_incident(MEDALLION)
        assert check_alert["kind"] == "check_failed" and run_alert["kind"] == "run_failed"
        # Its instance is thrown away on exit: no UI holds the run, so no link.
        assert check_alert["run_url"] is None and check_alert["run_id"] == run_alert["run_id"]
        assert {RECONCILE, MEDALLION} <= ledger.open_incidents()

        outputs.append(grid_run(1))  # the next night: the same incident, no new alert
        assert len(hook.by_incident(RECONCILE)) == 1 and len(hook.by_incident(MEDALLION)) == 1

        ledger.restore()
        outputs.append(grid_run(0))
        assert [b["kind"] for b in hook.by_incident(RECONCILE)] == ["check_failed", "resolved"]
        assert [b["kind"] for b in hook.by_incident(MEDALLION)] == ["run_failed", "resolved"]
        assert not {RECONCILE, MEDALLION} & ledger.open_incidents()
    assert_secret_kept(hook.url, caplog.text, *outputs)
