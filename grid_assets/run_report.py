"""What one `grid run` did, as plain JSON-ready data: the object `grid run --json` prints.

Assets with their row counts, every check evaluated with its result, severity and metadata,
the checks that never ran (their asset failed or was skipped), failed steps with their errors,
and the run's id and status. Metadata values become JSON values (numbers, text, lists,
objects); what JSON cannot hold (a Decimal, a path, NaN) becomes its text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a run is summarized: a configuration error answers at once
    import dagster as dg

# Static and bulky (every column of the table); the UI shows them, a run summary needs neither.
OMITTED_METADATA = frozenset({"dagster/column_schema", "dagster/column_lineage"})


def plain(value: Any) -> Any:
    """A metadata value (or anything inside one) as a JSON value."""
    import dagster as dg

    if isinstance(value, dg.MetadataValue):
        value = value.value
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if type(value) in (list, tuple, set, frozenset):  # not Dagster's records, tuples inside
        return [plain(v) for v in value]
    return str(value)


def _metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {k: plain(v) for k, v in metadata.items() if k not in OMITTED_METADATA}


def is_failed_blocking(evaluation: dg.AssetCheckEvaluation) -> bool:
    """Only a failed blocking check fails `grid run`; a failed check that does not block (an
    ERROR `heartbeat_gaps`: GRID is silent) is reported, not turned into an exit status."""
    import dagster as dg

    return (
        not evaluation.passed
        and evaluation.severity == dg.AssetCheckSeverity.ERROR
        and bool(evaluation.blocking)
    )


def timings(instance: dg.DagsterInstance, run_id: str) -> dict[str, Any]:
    """When the run started and ended (Unix seconds, the event log's clock) and how long each
    step took, as `asset` or `check` (a step that evaluated checks and materialized nothing):
    what a run costs beyond its data, Dagster's own start-up being the time before `started_at`."""
    steps: dict[str, dict[str, Any]] = {}
    started: dict[str, float] = {}
    kinds: dict[str, set[str]] = {}
    logs = instance.all_logs(run_id)
    for entry in logs:
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        key, kind = event.step_key, event.event_type_value
        kinds.setdefault(key, set()).add(kind)
        if kind == "STEP_START":
            started[key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and key in started:
            steps[key] = {"seconds": round(entry.timestamp - started[key], 3)}
    for key, step in steps.items():
        checked = "ASSET_CHECK_EVALUATION" in kinds[key]
        step["kind"] = "check" if checked and "ASSET_MATERIALIZATION" not in kinds[key] else "asset"
    return {
        "started_at": logs[0].timestamp if logs else None,
        "ended_at": logs[-1].timestamp if logs else None,
        "steps": steps,
    }


def _is_dagster(cls_name: str | None) -> bool:
    return (cls_name or "").startswith("Dagster")


def _step_failures(result: dg.ExecuteInProcessResult) -> list[tuple[str, dg.DagsterEvent]]:
    return [
        (e.step_key, e) for e in result.all_events if e.is_step_failure and e.step_key is not None
    ]


def failed_steps(result: dg.ExecuteInProcessResult) -> list[str]:
    return [step for step, _ in _step_failures(result)]


def step_errors(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Each failed step's error as `Class: first line of its message`, secrets masked: the error
    the step's own code raised, not Dagster's wrapper around it (a step failure without an error
    record has no entry)."""
    from grid_assets.logging_redaction import redact

    errors = {}
    for step, event in _step_failures(result):
        error = event.step_failure_data.error
        while error is not None and error.cause is not None and _is_dagster(error.cls_name):
            error = error.cause
        if error is None:
            continue
        name = error.cls_name or "Error"
        message = (error.message or "").strip()
        # Dagster's message starts with the class's dotted path: `pkg.mod.Class: text`.
        head, _, rest = message.partition(": ")
        if head.split(".")[-1] == name:
            message = rest
        first = message.splitlines()[0] if message else ""
        errors[step] = redact(f"{name}: {first}" if first else name)
    return errors


def summarize(
    result: dg.ExecuteInProcessResult, job: dg.JobDefinition, instance: dg.DagsterInstance
) -> dict[str, Any]:
    assets = []
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        rows = materialization.metadata.get("dagster/row_count")
        assets.append(
            {
                "asset": materialization.asset_key.to_user_string(),
                "rows": plain(rows),
                "metadata": _metadata(materialization.metadata),
            }
        )
    checks = []
    evaluated = set()
    for evaluation in result.get_asset_check_evaluations():
        evaluated.add(evaluation.asset_check_key)
        checks.append(
            {
                "asset": evaluation.asset_key.to_user_string(),
                "name": evaluation.check_name,
                "passed": bool(evaluation.passed),
                "severity": evaluation.severity.value,
                "blocking": bool(evaluation.blocking),
                "description": evaluation.description,
                "metadata": _metadata(evaluation.metadata),
            }
        )
    planned = job.asset_layer.asset_graph.asset_check_keys
    not_evaluated = [
        {"asset": key.asset_key.to_user_string(), "name": key.name}
        for key in sorted(planned - evaluated, key=lambda k: (k.asset_key.to_user_string(), k.name))
    ]
    failed_blocking = [
        f"{e.asset_key.to_user_string()}:{e.check_name}"
        for e in result.get_asset_check_evaluations()
        if is_failed_blocking(e)
    ]
    return {
        "run_id": result.run_id,
        "status": result.dagster_run.status.value,
        "success": result.success and not failed_blocking,
        "assets": assets,
        "checks": checks,
        "checks_not_evaluated": not_evaluated,
        "failed_steps": failed_steps(result),
        "step_errors": step_errors(result),
        "failed_blocking_checks": failed_blocking,
        "timings": timings(instance, result.run_id),
    }


def not_run(status: str, error: str) -> dict[str, Any]:
    """The same shape when no run started (bad configuration, unreachable lakehouse)."""
    return {
        "run_id": None,
        "status": status,
        "success": False,
        "error": error,
        "assets": [],
        "checks": [],
        "checks_not_evaluated": [],
        "failed_steps": [],
        "step_errors": {},
        "failed_blocking_checks": [],
    }
