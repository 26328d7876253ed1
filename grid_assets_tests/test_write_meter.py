"""`write_meter`, which the live Databricks tests report with, checked offline.

The same `metered_run` the live tests call runs on the committed samples against the recording
warehouse and the in-memory volume, whose own records are the truth the meter must match: every
statement counted once and charged to the step that sent it, every staged file to its layer.
`step_seconds`, which times the live `grid run`'s steps from its log, is checked against the
durations Dagster itself records.
"""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest
from dagster_shared.utils.timing import format_duration
from sqlalchemy import text

from grid_assets.lakehouse.duckdb import duckdb_engine
from grid_assets_tests.write_meter import (
    STEPS,
    WriteMeter,
    metered_run,
    recording_lakehouse,
    render_step_seconds,
    step_seconds,
)

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "data" / "samples"
STAGED = re.compile(r"parquet\.`[^`]*/(\w+)-[\w]+-\d+\.parquet`")


def test_every_statement_and_staged_file_is_charged_to_its_step() -> None:
    recording = recording_lakehouse()
    meter = metered_run(recording.lakehouse, SAMPLES_DIR, recording.run_id)
    recording.lakehouse.engine.dispose()

    assert [s.step for s in meter.steps] == list(STEPS)
    # The pool's pre-ping is the only bare SELECT 1 on this path; it is counted apart.
    recorded = recording.warehouse.statements
    statements = [s for s in recorded if s != "SELECT 1"]
    assert meter.total().statements == len(statements) > 0
    assert meter.total().pings == len(recorded) - len(statements) > 0
    # Each step's share of the warehouse's record, in order.
    shares: dict[str, list[str]] = {}
    start = 0
    for cost in meter.steps:
        shares[cost.step] = statements[start : start + cost.statements]
        start += cost.statements

    def verbs(step: str) -> set[str]:
        return {" ".join(s.split()[:2]) for s in shares[step]}

    assert {"CREATE TABLE", "CREATE VOLUME"} <= verbs("ddl")
    assert not {v for v in verbs("ddl") if v.split()[0] in ("INSERT", "MERGE", "DELETE")}
    assert "MERGE INTO" in verbs("silver") and "MERGE INTO" not in verbs("gold")
    assert "INSERT OVERWRITE" in verbs("gold")
    assert not {"INSERT OVERWRITE"} & (verbs("ddl") | verbs("bronze") | verbs("silver"))
    for step in STEPS:
        layers = {m for s in shares[step] for m in STAGED.findall(s)}
        assert layers <= ({step} if step in ("bronze", "silver") else set()), (step, layers)

    # Files and bytes: what the volume received, by the layer in each file's name.
    uploads = recording.volume.uploads
    assert meter.total().files == len(uploads) > 0
    for cost in meter.steps:
        mine = [u for u in uploads if Path(u[0]).name.startswith(f"{cost.step}-")]
        assert (cost.files, cost.bytes) == (len(mine), sum(u[1] for u in mine)), cost
    assert meter.steps[1].files >= 1 and meter.steps[2].files >= 1  # Bronze and Silver staged
    assert all(cost.seconds > 0 for cost in meter.steps)
    assert recording.volume.files == {}

    table = meter.render("first run")
    total = meter.total()
    assert table.splitlines()[0] == "first run"
    row = f"| total | {total.statements:,} | {total.pings:,} | {total.files:,} | {total.bytes:,} |"
    assert row in table
    for cost in meter.steps:
        assert f"| {cost.step} | {cost.statements:,} | {cost.pings:,} | {cost.files:,} |" in table


def test_an_executemany_counts_each_parameter_set_and_the_listener_goes(tmp_path: Path) -> None:
    engine = duckdb_engine(str(tmp_path / "meter.duckdb"))
    with WriteMeter(engine) as meter, engine.begin() as conn:
        with meter.step("setup"):
            conn.execute(text("CREATE TABLE t (n INTEGER)"))
        with meter.step("many"):
            conn.execute(text("INSERT INTO t VALUES (:n)"), [{"n": 1}, {"n": 2}, {"n": 3}])
            conn.execute(text("SELECT count(*) FROM t")).scalar_one()
    assert [(s.step, s.statements, s.files) for s in meter.steps] == [
        ("setup", 1, 0),
        ("many", 4, 0),
    ]
    with engine.begin() as conn:  # after the block, nothing is counted any more
        conn.execute(text("SELECT 1"))
    assert meter.sent == 5
    assert "do_ping" not in vars(engine.dialect)  # the dialect is the shared one again
    engine.dispose()


def test_step_times_are_read_from_dagsters_own_step_messages() -> None:
    @dg.asset
    def first() -> int:
        return 1

    @dg.asset
    def second(first: int) -> int:
        return first + 1

    result = dg.materialize([first, second])
    successes = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_SUCCESS]
    log = "\n".join(f"2026-11-30 - dagster - DEBUG - job - {e.message}" for e in successes)
    seconds = step_seconds(log)
    assert list(seconds) == ["first", "second"]
    for event in successes:
        assert event.step_key is not None
        recorded = event.event_specific_data.duration_ms / 1000  # type: ignore[union-attr]
        assert seconds[event.step_key] == pytest.approx(recorded, rel=0.01, abs=0.01)
    assert "| total (steps) |" in render_step_seconds(seconds, "grid run")


@pytest.mark.parametrize("ms", [0.83, 8.3, 533, 2_100, 59_990, 292_000, 3_840_000])
def test_every_duration_format_dagster_writes_is_read(ms: float) -> None:
    line = f'Finished execution of step "silver_apply_events" in {format_duration(ms)}.'
    # The longer formats drop seconds (4m52s) or minutes' seconds (1h4m): read to that precision.
    precision = 60.0 if ms >= 3_600_000 else 1.0 if ms >= 60_000 else 0.01
    assert step_seconds(line)["silver_apply_events"] == pytest.approx(ms / 1000, abs=precision)
