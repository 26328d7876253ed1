"""Bronze checks: is GRID still alive (heartbeat gaps, freshness), is the grain whole, and how
much input is bad."""

from datetime import UTC, datetime

import dagster as dg

from grid_assets.defs.constants import EVENTS_KEY, REJECTED_FILES_KEY, REJECTED_KEY
from grid_assets.defs.resources import HeartbeatPolicy
from grid_assets.models.bronze import Event
from grid_assets.queries import checks as q
from grid_assets.resources.lakehouse import LakehouseResource

FRESHNESS_MAX_LAG_S = 6 * 3600
REJECTED_MAX_SHARE = 0.05


@dg.asset_check(
    asset=EVENTS_KEY,
    description="GRID is alive: in the trailing window (GRID_HEARTBEAT_WINDOW_H, 24 h by "
    "default) no gap between consecutive system.heartbeat events is longer than "
    "GRID_HEARTBEAT_MAX_GAP_S, and the newest heartbeat is at most GRID_HEARTBEAT_MAX_SILENCE_S "
    "old (both an hour by default; measured on occurred_at against the wall clock, in the "
    "engine). An error, not blocking: the events that did arrive are still processed.",
)
def heartbeat_gaps(
    lakehouse: LakehouseResource, heartbeat_policy: HeartbeatPolicy
) -> dg.AssetCheckResult:
    policy = heartbeat_policy
    now = datetime.now(UTC)
    window_start = policy.window_start(now)
    with lakehouse.get_lakehouse().connect() as conn:
        summary = conn.execute(q.heartbeat_summary(now, window_start, policy.max_gap_seconds)).one()
        gaps = conn.execute(q.heartbeat_gaps(now, window_start, policy.max_gap_seconds)).all()
    # NULL without any heartbeat; negative if the newest one is stamped in the future.
    silence = None if summary.silence_seconds is None else int(summary.silence_seconds)
    problems = []
    if silence is None:
        problems.append("no system.heartbeat event was ever recorded")
    elif silence > policy.max_silence_seconds:
        problems.append(
            f"no heartbeat for {silence} s (allowed {policy.max_silence_seconds} s; "
            f"last at {summary.last_heartbeat_at})"
        )
    if summary.gaps_over_limit:
        problems.append(
            f"{int(summary.gaps_over_limit)} gap(s) over {policy.max_gap_seconds} s in the last "
            f"{policy.window_hours} h, the longest {int(summary.max_gap_seconds)} s"
        )
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "heartbeats_in_window": int(summary.heartbeats),
            "window_start": str(window_start),
            "max_gap_seconds": int(summary.max_gap_seconds or 0),
            "gaps_over_limit": int(summary.gaps_over_limit),
            "allowed_gap_seconds": policy.max_gap_seconds,
            "gaps": dg.MetadataValue.json(
                [
                    {"start": str(start), "end": str(end), "seconds": int(seconds)}
                    for start, end, seconds in gaps
                ]
            ),
            "last_heartbeat_at": str(summary.last_heartbeat_at),
            "silence_seconds": -1 if silence is None else silence,
            "allowed_silence_seconds": policy.max_silence_seconds,
        },
        description="GRID heartbeat: " + "; ".join(problems) if problems else None,
    )


@dg.asset_check(
    asset=EVENTS_KEY,
    description="The newest GRID event arrived within the last six "
    "hours (wall clock): the event heartbeat has not stopped.",
)
def events_freshness(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.get_lakehouse().connect() as conn:
        last_occurred, last_ingested = conn.execute(q.last_grid_event_at()).one()
    lag = None if last_ingested is None else (datetime.now(UTC) - last_occurred).total_seconds()
    passed = lag is not None and lag <= FRESHNESS_MAX_LAG_S
    return dg.AssetCheckResult(
        passed=bool(passed),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "last_event_occurred_at": str(last_occurred),
            "last_event_ingested_at": str(last_ingested),
            "lag_seconds": -1 if lag is None else int(lag),
            "allowed_lag_seconds": FRESHNESS_MAX_LAG_S,
        },
    )


@dg.asset_check(
    asset=EVENTS_KEY,
    blocking=True,
    description="Grain: one row per event_id. No engine enforces it (keys are informational on "
    "Databricks and not indexed on DuckDB); the anti-join append does, and this proves it.",
)
def event_ids_unique(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.get_lakehouse().connect() as conn:
        extra_rows = int(conn.execute(q.duplicate_keys(Event.__table__)).scalar_one())
    return dg.AssetCheckResult(passed=extra_rows == 0, metadata={"duplicate_rows": extra_rows})


@dg.asset_check(asset=REJECTED_KEY, description="Rejected lines stay under 5% of accepted events.")
def rejected_share(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.get_lakehouse().connect() as conn:
        rejected, accepted = conn.execute(q.rejected_share()).one()
    share = rejected / max(1, rejected + accepted)
    return dg.AssetCheckResult(
        passed=share <= REJECTED_MAX_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected": int(rejected), "accepted": int(accepted), "share": float(share)},
    )


@dg.asset_check(
    asset=REJECTED_FILES_KEY,
    description="Every landing file can be read to its end: none is stopped by a read error "
    "(a truncated or corrupt gzip, a directory, FIFO or broken link named like an event file) "
    "or held because it shrank or was rewritten.",
)
def landing_files_readable(lakehouse: LakehouseResource) -> dg.AssetCheckResult:
    with lakehouse.get_lakehouse().connect() as conn:
        held = conn.execute(q.held_landing_files()).all()
    return dg.AssetCheckResult(
        passed=not held,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "held_files": len(held),
            "files": dg.MetadataValue.json(
                [
                    {"file": f, "state": state, "reason": reason, "lines_read": int(lines)}
                    for f, state, reason, lines in held
                ]
            ),
        },
        description=None
        if not held
        else "Landing files not read to their end: "
        + ", ".join(f"{f} ({reason})" for f, _, reason, _ in held[:5]),
    )


bronze_checks = [
    heartbeat_gaps,
    events_freshness,
    event_ids_unique,
    rejected_share,
    landing_files_readable,
]
