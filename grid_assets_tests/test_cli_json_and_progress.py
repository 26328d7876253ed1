"""`grid run --json` prints one JSON object on stdout; on a terminal `grid run` shows live
progress, and in a pipe or with --json it shows none. The terminal is a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from sqlalchemy import delete, func, update
from sqlalchemy import select as sql_select
from typer.testing import CliRunner

from grid_assets.cli import app
from grid_assets.models.silver import EventLedger, OrderItem
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.conftest import SAMPLES_DIR

GRID = str(Path(sys.executable).with_name("grid"))
# Only the progress display writes these.
PROGRESS_MARKS = ("lines/s", "events/s", "✓", "starting the run")


@pytest.fixture
def samples(tmp_path: Path) -> dict[str, str]:
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLES_DIR, landing)
    return {
        "GRID_ENV": "local",
        "GRID_LANDING_DIR": str(landing),
        "GRID_DUCKDB_PATH": str(tmp_path / "grid.duckdb"),
    }


def test_json_reports_every_asset_and_check_and_the_run(samples: dict[str, str]) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["run", "--json"], env=samples)
    assert ok.exit_code == 0, ok.stderr
    summary = json.loads(ok.stdout)  # stdout holds the JSON object and nothing else
    assert "GRID run:" in ok.stderr and "GRID run:" not in ok.stdout
    assert summary["status"] == "SUCCESS" and summary["success"] is True
    assert summary["run_id"] and summary["failed_blocking_checks"] == []
    assert summary["failed_steps"] == [] and summary["step_errors"] == {}
    rows = {a["asset"]: a["rows"] for a in summary["assets"]}
    assert len(rows) == 12 and rows["silver/orders"] == 900 and rows["gold/daily_revenue"] > 0
    checks = {(c["asset"], c["name"]): c for c in summary["checks"]}
    assert len(checks) >= 10 and summary["checks_not_evaluated"] == []
    for check in checks.values():
        assert isinstance(check["passed"], bool) and check["severity"] in ("ERROR", "WARN")
        assert isinstance(check["metadata"], dict)
    assert checks[("bronze/events", "event_ids_unique")]["metadata"] == {"duplicate_rows": 0}
    assert checks[("bronze/events", "event_ids_unique")]["blocking"] is True
    # Every step timed, as the asset or check it ran, inside the run's own start and end.
    timings = summary["timings"]
    steps = timings["steps"]
    assert steps["bronze_ingest"]["kind"] == "asset" and steps["silver_apply_events"]["seconds"] > 0
    kinds = [step["kind"] for step in steps.values()]
    # one step per check, but the two Gold reconciliations share one (one read of the totals)
    assert kinds.count("asset") == 6 and kinds.count("check") == len(checks) - 1
    assert sum(s["seconds"] for s in steps.values()) <= timings["ended_at"] - timings["started_at"]
    assert checks[("silver/order_items", "lines_with_unknown_product")]["severity"] == "WARN"
    daily = checks[("gold/daily_revenue", "daily_revenue_reconciles")]["metadata"]
    assert daily["drifting_currencies"] == [] and "USD" in daily["currencies"]

    # Silver loses its record of what it applied, and an order line breaks a rule: both
    # blocking checks fail the run, and Gold (downstream of the order lines) does not run.
    lakehouse = LakehouseResource(duckdb_path=samples["GRID_DUCKDB_PATH"]).get_lakehouse()
    items = OrderItem.__table__
    first_order = sql_select(func.min(items.c.order_id)).scalar_subquery()
    with lakehouse.begin() as conn:
        conn.execute(delete(EventLedger.__table__))
        conn.execute(update(items).where(items.c.order_id == first_order).values(quantity=0))
    broken = runner.invoke(app, ["run", "--json"], env=samples)
    assert broken.exit_code == 1, broken.stderr
    failed = json.loads(broken.stdout)
    assert failed["status"] == "FAILURE" and failed["success"] is False
    assert set(failed["failed_blocking_checks"]) == {
        "silver/event_ledger:events_reconcile",
        "silver/order_items:silver_rules_hold",
    }
    assert set(failed["step_errors"]) == set(failed["failed_steps"])
    reconcile = next(c for c in failed["checks"] if c["name"] == "events_reconcile")
    assert reconcile["passed"] is False and reconcile["severity"] == "ERROR"
    assert reconcile["metadata"]["unaccounted"] == reconcile["metadata"]["bronze_events"] > 0
    rules = next(c for c in failed["checks"] if c["name"] == "silver_rules_hold")
    assert rules["metadata"]["order_items_bad_values"] > 0
    assert {c["name"] for c in failed["checks_not_evaluated"]} == {
        "category_revenue_reconciles",
        "daily_revenue_reconciles",
    }
    assert not [a for a in failed["assets"] if a["asset"].startswith("gold/")]

    # The full refresh rebuilds Silver from Bronze: every ledger row is its own again.
    refreshed = runner.invoke(app, ["run", "--json", "--full-refresh"], env=samples)
    assert refreshed.exit_code == 0, refreshed.stderr
    run_id = json.loads(refreshed.stdout)["run_id"]
    with lakehouse.connect() as conn:
        writers = set(conn.execute(sql_select(EventLedger.__table__.c.run_id).distinct()).scalars())
    assert writers == {run_id}
    assert json.loads(refreshed.stdout)["failed_blocking_checks"] == []


def test_json_on_bad_configuration_exits_2_with_a_json_reason() -> None:
    result = CliRunner().invoke(app, ["run", "--json"], env={"GRID_ENV": "staging"})
    assert result.exit_code == 2
    summary = json.loads(result.stdout)
    assert summary["status"] == "CONFIGURATION_ERROR" and summary["run_id"] is None
    assert "GRID_ENV must be 'local' or 'production'" in summary["error"]


def in_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run `grid` with stdout and stderr each on its own pseudo-terminal (160 columns)."""
    terminals = [pty.openpty(), pty.openpty()]
    for _, follower in terminals:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    process = subprocess.Popen(
        [GRID, *args],
        stdin=subprocess.DEVNULL,
        stdout=terminals[0][1],
        stderr=terminals[1][1],
        env={**os.environ, **env, "TERM": "xterm-256color"},
    )
    for _, follower in terminals:
        os.close(follower)
    output = {leader: b"" for leader, _ in terminals}
    open_leaders = set(output)
    while open_leaders:
        ready, _, _ = select.select(list(open_leaders), [], [], 5)
        for leader in ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                data = b""
            if data:
                output[leader] += data
            else:
                open_leaders.discard(leader)
                os.close(leader)
    code = process.wait(timeout=300)
    out, err = (output[leader].decode("utf-8", "replace") for leader, _ in terminals)
    return code, out, err


def test_progress_shows_on_a_terminal_only(samples: dict[str, str]) -> None:
    code, out, err = in_terminal(["run", "--no-show-gold"], samples)
    assert code == 0, out + err
    assert "Run succeeded." in out
    for expected in ("bronze_ingest · files 4/4 · 3,011 lines", "lines/s", "events/s"):
        assert expected in err, err
    assert "silver_apply_events · 2,907 events" in err
    assert "check silver/event_ledger:events_reconcile · passed" in err

    code, out, err = in_terminal(["run", "--json"], samples)
    assert code == 0, out + err
    assert json.loads(out.replace("\r\n", "\n"))["status"] == "SUCCESS"
    assert not [mark for mark in PROGRESS_MARKS if mark in out + err]

    piped = subprocess.run(
        [GRID, "run", "--no-show-gold"],
        env={**os.environ, **samples},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert piped.returncode == 0, piped.stderr
    assert "Run succeeded." in piped.stdout
    assert not [mark for mark in PROGRESS_MARKS if mark in piped.stdout + piped.stderr]
