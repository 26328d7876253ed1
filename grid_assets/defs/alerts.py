"""Alerts from the Dagster instance: `alerts_sensor`, `AlertWebhook`, and `grid run`'s alerts.

Both read the same records of the instance's event log: each check's latest finished execution
record (its ASSET_CHECK_EVALUATION event; on the default SQLite storage these are indexed across
runs, unlike a plain event query by storage id) and the RUN_FAILURE / RUN_SUCCESS status changes.
What is news and what the message says is decided by `grid_assets.alerts`.

Where the open incidents are kept:
- the sensor keeps them in its cursor, in the Dagster instance, next to its position in the event
  log: both commit together when a tick ends, so a restart neither repeats nor loses an alert;
  the instance is there whenever the sensor runs, even when the lakehouse is what failed; and
  the sensor never has to wake the warehouse or wait for DuckDB's file lock;
- `grid run` runs on a throwaway instance, so its incidents go to the lakehouse it ran on
  (`silver.alert_incidents`), the only state that outlives it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping

import dagster as dg

# Not re-exported by `dagster`: the statuses of an execution record whose evaluation is stored.
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
)
from pydantic import Field

from grid_assets.alerts import (
    Observation,
    Webhook,
    book_from_json,
    book_to_json,
    create_book,
    deliver,
    read_book,
    reconcile,
    write_book,
)
from grid_assets.config import ALERT_WEBHOOK_VAR, DEFAULT_UI_BASE_URL, HttpUrl, check
from grid_assets.logging_redaction import redact, register_secret_url
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.settings import Settings

log = logging.getLogger(__name__)
RUN_EVENTS = (dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_SUCCESS)
RUN_PAGE = 500
MAX_RUN_PAGES = 20  # per tick and event type: a first tick on a long history catches up at once
BOOK_LOCK_WAIT_S = 30  # `grid run`'s wait for DuckDB's file lock before alerting without a book


class AlertWebhook(dg.ConfigurableResource):
    """Where alerts go (`GRID_ALERT_WEBHOOK_URL`, bound as an EnvVar: the UI shows its name only)
    and what they say: WARN checks too or not (`GRID_ALERT_ON_WARN`), the UI runs link to
    (`GRID_UI_BASE_URL`). Without a URL, alerts are only logged."""

    # repr=False: a resolved resource in a log line or an error never shows the URL.
    url: str | None = Field(default=None, repr=False, description=f"EnvVar('{ALERT_WEBHOOK_VAR}')")
    alert_on_warn: bool = False
    ui_base_url: str = DEFAULT_UI_BASE_URL
    request_timeout_seconds: float = 5.0
    retry_window_seconds: float = 30.0

    def webhook(self) -> Webhook | None:
        url = (self.url or "").strip()
        if not url:
            return None
        register_secret_url(url)
        check(HttpUrl, url, ALERT_WEBHOOK_VAR)  # its message never echoes the value
        return Webhook(url, self.request_timeout_seconds, self.retry_window_seconds)


def alert_webhook_resource(settings: Settings) -> AlertWebhook:
    alerts = settings.alerts
    # An EnvVar only when the variable is set: an unset EnvVar fails when the resource resolves.
    return AlertWebhook(
        url=dg.EnvVar(ALERT_WEBHOOK_VAR) if alerts.webhook_set else None,
        alert_on_warn=alerts.on_warn,
        ui_base_url=alerts.ui_base_url,
    )


# -- reading the event log ------------------------------------------------------------------------
def _check_name(key: dg.AssetCheckKey) -> str:
    return f"{key.asset_key.to_user_string()}:{key.name}"


def _metadata_text(metadata: Mapping[str, object]) -> dict[str, str]:
    return {name: str(getattr(value, "value", value)) for name, value in metadata.items()}


def check_observations(
    instance: dg.DagsterInstance,
    check_specs: Mapping[dg.AssetCheckKey, str | None],
    seen: Mapping[str, int],
) -> tuple[list[Observation], dict[str, int]]:
    """Each check's latest finished evaluation, if not seen before, and the new positions.

    `check_specs` maps every check to watch to its description (used when a result has none);
    `seen` maps a check to the id of the execution record last handled."""
    observations: list[Observation] = []
    positions = dict(seen)
    for key, description in check_specs.items():
        # The latest *finished* execution: a later one still planned (or skipped because a
        # blocking check upstream failed) must not hide it.
        records = instance.event_log_storage.get_asset_check_execution_history(
            key, limit=1, status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES
        )
        name = _check_name(key)
        if not records or records[0].id <= seen.get(name, -1):
            continue
        record = records[0]
        evaluation = record.evaluation
        if evaluation is None or record.event is None:
            continue
        positions[name] = record.id
        observations.append(
            Observation.of_check(
                key.asset_key.to_user_string(),
                key.name,
                passed=evaluation.passed,
                run_id=record.run_id,
                at=record.event.timestamp,
                job=record.event.job_name,
                severity=evaluation.severity.value,
                description=evaluation.description or description,
                metadata=_metadata_text(evaluation.metadata),
            )
        )
    return observations, positions


def run_observations(
    instance: dg.DagsterInstance, after: Mapping[str, int]
) -> tuple[list[Observation], dict[str, int]]:
    """Runs that failed or succeeded after the storage ids in `after` (per event type)."""
    found: list[tuple[int, Observation]] = []
    positions = dict(after)
    for event_type in RUN_EVENTS:
        for _ in range(MAX_RUN_PAGES):
            result = instance.fetch_run_status_changes(
                dg.RunStatusChangeRecordsFilter(
                    event_type=event_type,  # type: ignore[arg-type]
                    after_storage_id=positions.get(event_type.name),
                ),
                limit=RUN_PAGE,
                ascending=True,
            )
            for record in result.records:
                entry = record.event_log_entry
                failed = event_type is dg.DagsterEventType.RUN_FAILURE
                message = entry.dagster_event.message if entry.dagster_event else None
                observation = Observation.of_run(
                    entry.job_name or "unknown job",
                    failed=failed,
                    run_id=entry.run_id,
                    at=entry.timestamp,
                    description=message if failed else None,
                )
                found.append((record.storage_id, observation))
                positions[event_type.name] = record.storage_id
            if len(result.records) < RUN_PAGE:
                break
    return [observation for _, observation in sorted(found, key=lambda f: f[0])], positions


def _checks_of(graph) -> dict[dg.AssetCheckKey, str | None]:
    """Every check of `graph` (an asset graph) with its definition's description."""
    return {key: graph.get_check_spec(key).description for key in graph.asset_check_keys}


def _sorted(observations: Iterable[Observation]) -> list[Observation]:
    return sorted(observations, key=lambda o: o.at)


# -- the sensor -----------------------------------------------------------------------------------
@dataclasses.dataclass
class SensorCursor:
    checks: dict[str, int]
    runs: dict[str, int]
    book: list[dict]

    @classmethod
    def parse(cls, cursor: str | None) -> SensorCursor:
        state = json.loads(cursor) if cursor else {}
        return cls(state.get("checks", {}), state.get("runs", {}), state.get("open", []))

    def dump(self) -> str:
        return json.dumps(
            {"checks": self.checks, "runs": self.runs, "open": self.book}, sort_keys=True
        )


@dg.sensor(
    name="alerts_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "POSTs an alert to GRID_ALERT_WEBHOOK_URL (or only logs it, without one) when a check "
        "fails (ERROR; WARN with GRID_ALERT_ON_WARN) or a run fails: once per incident, and "
        "once more when it is resolved. Its cursor holds the open incidents."
    ),
)
def alerts_sensor(context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook):
    cursor = SensorCursor.parse(context.cursor)
    repository = context.repository_def
    checks = _checks_of(repository.asset_graph) if repository is not None else {}
    check_seen, cursor.checks = check_observations(context.instance, checks, cursor.checks)
    runs_seen, cursor.runs = run_observations(context.instance, cursor.runs)
    book, alerts = reconcile(
        book_from_json(cursor.book),
        _sorted([*check_seen, *runs_seen]),
        alert_on_warn=alert_webhook.alert_on_warn,
    )
    cursor.book = book_to_json(book)
    delivered = deliver(alerts, alert_webhook.webhook(), alert_webhook.ui_base_url, context.log)
    summary = (
        f"{len(check_seen)} check result(s) and {len(runs_seen)} run(s) read; "
        f"{len(alerts)} alert(s), {sum(delivered)} delivered; {len(book)} incident(s) open"
    )
    return dg.SensorResult(skip_reason=summary, cursor=cursor.dump())


# -- `grid run` -----------------------------------------------------------------------------------
def send_run_alerts(instance: dg.DagsterInstance, defs: dg.Definitions) -> None:
    """`grid run`'s alerts for the runs on its (throwaway) `instance`, kept in the lakehouse's
    book. Never raises: an alert that cannot be prepared or sent is logged."""
    try:
        _send_run_alerts(instance, defs)
    except Exception as exc:  # alerts never change what the run reports or its exit status
        log.error(
            "Alerts for this run could not be sent: %s: %s", type(exc).__name__, redact(str(exc))
        )


def _send_run_alerts(instance: dg.DagsterInstance, defs: dg.Definitions) -> None:
    resources: Mapping[str, object] = defs.resources or {}
    # EnvVar fields resolved on the run's instance (each `process_config_and_initialize`
    # would build a throwaway instance of its own).
    with dg.build_resources(
        {name: resources[name] for name in ("alert_webhook", "lakehouse")}, instance=instance
    ) as built:
        alerting, lakehouse_resource = built.alert_webhook, built.lakehouse
    assert isinstance(alerting, AlertWebhook)
    assert isinstance(lakehouse_resource, LakehouseResource)
    checks, _ = check_observations(instance, _checks_of(defs.resolve_asset_graph()), {})
    runs, _ = run_observations(instance, {})
    observations = _sorted([*checks, *runs])
    lakehouse = lakehouse_resource.get_lakehouse(lock_timeout_seconds=BOOK_LOCK_WAIT_S)
    try:
        with lakehouse.begin() as conn:
            create_book(conn, lakehouse.schema_map["silver"])
            before = read_book(conn)
    except Exception as exc:
        # Alert anyway (failures only: without the book nothing is known to be resolved).
        log.warning(
            "The alert book in the lakehouse is not readable (%s: %s): alerting without it",
            type(exc).__name__,
            redact(str(exc)),
        )
        _, alerts = reconcile({}, observations, alert_on_warn=alerting.alert_on_warn)
        deliver(alerts, alerting.webhook(), None)
        return
    after, alerts = reconcile(before, observations, alert_on_warn=alerting.alert_on_warn)
    # The run is in no UI (its instance is gone when `grid run` exits): no link.
    base_url = None if instance.is_ephemeral else alerting.ui_base_url
    deliver(alerts, alerting.webhook(), base_url)
    with lakehouse.begin() as conn:
        write_book(conn, before, after)
