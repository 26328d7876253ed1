"""Alerts on failed checks and runs: which outcomes are news, what the message says, delivery.

No Dagster here. `grid_assets.defs.alerts` reads outcomes from a Dagster instance's event log
and turns them into `Observation`s; this module decides, words and delivers.

- An incident is one asset check (`check:<asset>:<check>`) or one job (`run:<job>`).
- Of the observations handed over together, only the latest of each incident counts.
- A failure opens its incident and alerts once (`check_failed`, `run_failed`) if it is
  alertable: every failed run, every failed ERROR check, failed WARN checks only when asked
  (`GRID_ALERT_ON_WARN`). While the incident is open, more failures say nothing.
- A pass (the same check passing, a run of the same job succeeding) closes an open incident with
  one `resolved` message.
- The open incidents (the "book") are kept by the caller: the sensor in its cursor, `grid run`
  in the lakehouse table `INCIDENTS` below.
- Delivery POSTs JSON with a readable `text` (what Slack and Teams incoming webhooks show) and
  the same facts as fields. Transient failures (no answer, 5xx, 429) are retried with
  exponential back-off within one time window per batch; what still fails is logged, never
  raised. The webhook URL is a secret: it is never logged, and errors never carry it.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Column, Connection, MetaData, String, Table, delete, insert, select
from sqlalchemy.schema import CreateSchema, CreateTable
from tenacity import Retrying, retry_if_exception, wait_exponential

from grid_assets.logging_redaction import redact
from grid_assets.models.base import NAMING_CONVENTION, Instant, Key

log = logging.getLogger(__name__)

Kind = Literal["check_failed", "run_failed", "resolved"]
MAX_DESCRIPTION_CHARS = 400
MAX_METADATA_ENTRIES = 8
MAX_METADATA_VALUE_CHARS = 120


@dataclass(frozen=True)
class Observation:
    """One finished check evaluation or run, as the event log recorded it."""

    incident: str
    failed: bool
    run_id: str
    at: float  # POSIX seconds
    job: str | None = None
    asset: str | None = None
    check: str | None = None
    severity: str | None = None  # a check's ERROR or WARN; None for runs
    description: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of_check(cls, asset: str, check: str, *, passed: bool, **rest: Any) -> Observation:
        return cls(f"check:{asset}:{check}", not passed, asset=asset, check=check, **rest)

    @classmethod
    def of_run(cls, job: str, *, failed: bool, **rest: Any) -> Observation:
        return cls(f"run:{job}", failed, job=job, **rest)


@dataclass(frozen=True)
class Incident:
    """An open incident: since when, first seen in which run."""

    key: str
    opened_at: float
    run_id: str
    severity: str | None = None


@dataclass(frozen=True)
class Alert:
    kind: Kind
    observation: Observation
    incident: Incident  # the incident opened, or the one resolved


def is_alertable(observation: Observation, alert_on_warn: bool) -> bool:
    return observation.severity != "WARN" or alert_on_warn


def reconcile(
    book: Mapping[str, Incident], observations: Iterable[Observation], *, alert_on_warn: bool
) -> tuple[dict[str, Incident], list[Alert]]:
    """The book after `observations` (oldest first) and the alerts they call for."""
    latest: dict[str, Observation] = {}
    for observation in observations:
        latest.pop(observation.incident, None)  # re-inserted last: alerts keep event order
        latest[observation.incident] = observation
    after = dict(book)
    alerts: list[Alert] = []
    for key, observation in latest.items():
        opened = after.get(key)
        if observation.failed and opened is None and is_alertable(observation, alert_on_warn):
            incident = Incident(key, observation.at, observation.run_id, observation.severity)
            after[key] = incident
            kind: Kind = "check_failed" if observation.check else "run_failed"
            alerts.append(Alert(kind, observation, incident))
        elif not observation.failed and opened is not None:
            del after[key]
            alerts.append(Alert("resolved", observation, opened))
    return after, alerts


# -- the book as JSON (the sensor's cursor) ------------------------------------------------------
def book_to_json(book: Mapping[str, Incident]) -> list[dict[str, Any]]:
    return [vars(incident) for _, incident in sorted(book.items())]


def book_from_json(rows: Iterable[Mapping[str, Any]]) -> dict[str, Incident]:
    return {row["key"]: Incident(**row) for row in rows}


# -- the book in the lakehouse (`grid run`, whose Dagster instance does not outlive it) ----------
# The incidents `grid run` has alerted and not yet seen resolved. One row per open incident.
INCIDENTS = Table(
    "alert_incidents",
    MetaData(naming_convention=NAMING_CONVENTION),
    Column("incident", Key, primary_key=True),
    Column("opened_at", Instant, nullable=False),
    Column("run_id", Key, nullable=False),
    Column("severity", String()),
    schema="silver",
)


def create_book(conn: Connection, schema: str) -> None:
    """Create the table (and its schema, physical name `schema`) if missing."""
    conn.execute(CreateSchema(schema, if_not_exists=True))
    conn.execute(CreateTable(INCIDENTS, if_not_exists=True))


def read_book(conn: Connection) -> dict[str, Incident]:
    rows = conn.execute(select(INCIDENTS)).mappings()
    return {
        row["incident"]: Incident(
            row["incident"], _instant(row["opened_at"]).timestamp(), row["run_id"], row["severity"]
        )
        for row in rows
    }


def write_book(
    conn: Connection, before: Mapping[str, Incident], after: Mapping[str, Incident]
) -> None:
    """Delete the incidents closed and insert those opened (idempotent: keys are rechecked)."""
    changed = sorted({*before, *after} - (before.keys() & after.keys()))
    if not changed:
        return
    conn.execute(delete(INCIDENTS).where(INCIDENTS.c.incident.in_(changed)))
    opened = [after[key] for key in changed if key in after]
    if opened:
        rows = [
            {
                "incident": i.key,
                "opened_at": datetime.fromtimestamp(i.opened_at, UTC),
                "run_id": i.run_id,
                "severity": i.severity,
            }
            for i in opened
        ]
        conn.execute(insert(INCIDENTS).values(rows))


def _instant(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# -- the message ----------------------------------------------------------------------------------
def _clip(text: str, limit: int) -> str:
    text = " ".join(redact(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def build_payload(alert: Alert, ui_base_url: str | None) -> dict[str, Any]:
    """The JSON body: `text` for people (one paragraph), the same facts as fields for programs.

    `ui_base_url` is None when the run is in no UI (`grid run`'s throwaway instance)."""
    seen = alert.observation
    run_url = f"{ui_base_url.rstrip('/')}/runs/{seen.run_id}" if ui_base_url else None
    description = _clip(seen.description, MAX_DESCRIPTION_CHARS) if seen.description else None
    metadata = {
        _clip(name, 60): _clip(value, MAX_METADATA_VALUE_CHARS)
        for name, value in list(seen.metadata.items())[:MAX_METADATA_ENTRIES]
    }
    severity = seen.severity or alert.incident.severity or ("ERROR" if seen.check is None else None)
    what = f"check {seen.check} on {seen.asset}" if seen.check else f"job {seen.job}"
    run = f"run {seen.run_id[:8]}" + (f" of {seen.job}" if seen.check and seen.job else "")
    if alert.kind == "resolved":
        text = (
            f"GRID resolved: {what} {'passes' if seen.check else 'succeeds'} again in {run}, "
            f"after failing since {_when(alert.incident.opened_at)} "
            f"(run {alert.incident.run_id[:8]})."
        )
    else:
        text = f"GRID alert: {what} failed ({severity}) in {run}"
        text += f": {description.rstrip('.')}." if description else "."
        if metadata:
            text += " " + ", ".join(f"{k}={v}" for k, v in metadata.items()) + "."
    if run_url:
        text += f" Run: {run_url}"
    return {
        "text": text,
        "kind": alert.kind,
        "incident": seen.incident,
        "asset": seen.asset,
        "check": seen.check,
        "job": seen.job,
        "severity": severity,
        "description": description,
        "metadata": metadata,
        "run_id": seen.run_id,
        "run_url": run_url,
        "occurred_at": datetime.fromtimestamp(seen.at, UTC).isoformat(),
        "failing_since": datetime.fromtimestamp(alert.incident.opened_at, UTC).isoformat(),
    }


# -- delivery -------------------------------------------------------------------------------------
class DeliveryFailed(Exception):
    """One POST failed. Carries only a status or an error class name, never the URL."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.transient = transient


@dataclass(frozen=True)
class Webhook:
    """Where alerts are POSTed, and how long a batch of them may take to get there."""

    url: str = field(repr=False)
    request_timeout_s: float = 5.0
    # Back-off doubles from 0.5 s to 8 s between attempts, all within this window per batch.
    retry_window_s: float = 30.0


def post_json(url: str, payload: Mapping[str, Any], timeout_s: float) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "grid-lakehouse-alerts"},
    )
    # `from None` throughout: urllib's own exceptions hold the URL (HTTPError.url, .filename).
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
        raise DeliveryFailed(f"HTTP {status}", transient=status >= 500 or status == 429) from None
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, BaseException) else exc
        raise DeliveryFailed(type(reason).__name__, transient=True) from None
    except (TimeoutError, OSError, ValueError) as exc:
        raise DeliveryFailed(type(exc).__name__, transient=True) from None


def deliver(
    alerts: Sequence[Alert],
    webhook: Webhook | None,
    ui_base_url: str | None,
    logger: logging.Logger = log,
) -> list[bool]:
    """Log every alert, POST each to `webhook` if there is one; which were delivered.

    Never raises: a message still undelivered when the batch's retry window has passed (or
    refused outright with a 4xx) is logged at error level and dropped. The whole batch takes at
    most the window plus half a second."""
    deadline = time.monotonic() + (webhook.retry_window_s if webhook else 0.0)
    delivered: list[bool] = []
    for alert in alerts:
        payload = build_payload(alert, ui_base_url)
        logger.warning("%s", payload["text"])
        if webhook is None:
            delivered.append(False)
        elif time.monotonic() >= deadline:
            logger.error(
                "Alert %s (%s) not delivered to the webhook: the %g s retry window is over",
                payload["kind"],
                payload["incident"],
                webhook.retry_window_s,
            )
            delivered.append(False)
        else:
            delivered.append(_post_with_retries(webhook, payload, deadline, logger))
    if webhook is None and alerts:
        logger.info("GRID_ALERT_WEBHOOK_URL is not set: %d alert(s) logged only", len(alerts))
    return delivered


def _post_with_retries(
    webhook: Webhook, payload: Mapping[str, Any], deadline: float, logger: logging.Logger
) -> bool:
    started = time.monotonic()
    retrying = Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, DeliveryFailed) and e.transient),
        wait=wait_exponential(multiplier=0.5, min=0.5, max=8),
        # Stop before a sleep that would end past the window; the first attempt always runs.
        stop=lambda state: time.monotonic() + state.upcoming_sleep >= deadline,
        sleep=time.sleep,
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                remaining = deadline - time.monotonic()
                post_json(webhook.url, payload, max(0.5, min(webhook.request_timeout_s, remaining)))
    except DeliveryFailed as exc:
        logger.error(
            "Alert %s (%s) not delivered to the webhook after %d attempt(s) in %.1f s: %s",
            payload["kind"],
            payload["incident"],
            retrying.statistics.get("attempt_number", 1),
            time.monotonic() - started,
            exc,
        )
        return False
    attempts = retrying.statistics.get("attempt_number", 1)
    if attempts > 1:
        logger.info("Alert %s delivered after %d attempts", payload["incident"], attempts)
    return True
