"""`grid simulate`: the traffic generator behind the `grid` CLI, loaded only when it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from grid_assets.cli import app
from grid_sim import generate_traffic


def test_grid_simulate_writes_what_the_generator_writes(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--seed",
            "3",
            "--events",
            "700",
            "--files",
            "2",
            "--out",
            str(out),
            "--no-run",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "valid events" in result.output and "rejected lines" in result.output
    assert "Running the pipeline" not in result.output
    expected = generate_traffic(tmp_path / "direct", 700, seed=3, n_files=2)
    assert sorted(p.name for p in out.iterdir()) == list(expected.files)
    for name in expected.files:
        assert (out / name).read_bytes() == (tmp_path / "direct" / name).read_bytes(), name


def test_grid_simulate_warns_of_stale_files_and_clean_removes_only_event_files(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    args = ["simulate", "--events", "50", "--files", "1", "--out", str(tmp_path), "--no-run"]
    (tmp_path / "events-0009.ndjson").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("not an event file\n")

    stale = runner.invoke(app, args)
    assert stale.exit_code == 0 and "events-0009.ndjson" in stale.output, stale.output
    cleaned = runner.invoke(app, [*args, "--clean"])
    assert cleaned.exit_code == 0 and "warning" not in cleaned.output, cleaned.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events-0001.ndjson", "notes.txt"]


def test_grid_simulate_refuses_nonsense_with_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--bad-share", "0.9", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "bad_share" in result.output and not list(tmp_path.iterdir())


def test_grid_simulate_then_runs_the_pipeline_locally(tmp_path: Path) -> None:
    env = {
        "GRID_ENV": "local",
        "GRID_DUCKDB_PATH": str(tmp_path / "grid.duckdb"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    out = tmp_path / "landing"
    result = CliRunner().invoke(app, ["simulate", "--events", "300", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "grid.duckdb").exists()


def test_grid_run_does_not_load_the_generator() -> None:
    code = (
        "import sys, grid_assets.cli, grid_assets.definitions;sys.exit('grid_sim' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
