"""`grid bench`: the benchmark (grid_bench) behind the `grid` CLI, loaded only when it runs.

`scripts/bench.py` is a wrapper over the same command: same options (`--events A B C`), same
output. The statement budget runs in seconds; the throughput harness once, on a few hundred
events, to show it finds its SQL references and writes its results.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from grid_assets.cli import app

REPO_ROOT = Path(__file__).resolve().parents[1]
SECONDS = re.compile(r"\| [0-9.]+ \|$", re.M)  # the budget table's last column: timings


def test_loading_the_cli_does_not_load_the_benchmark() -> None:
    code = (
        "import sys, grid_assets.cli, grid_assets.definitions;"
        "sys.exit('grid_bench' in sys.modules or 'grid_assets.check_config' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_statement_budget_through_grid_bench_and_the_script(tmp_path: Path) -> None:
    args = ["--databricks-statements", "--events", "400", "700", "--files", "2"]
    args += ["--workdir", str(tmp_path)]
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code == 0, result.output
    tables = result.output.split("Databricks statement budget at ")[1:]
    assert [t.split(" ", 1)[0] for t in tables] == ["400", "700"]
    totals = [int(t.strip().splitlines()[-1].removeprefix("statements: ")) for t in tables]
    # More events, more batches: the budget grows with the traffic but stays far from one
    # statement per row.
    assert 0 < totals[0] <= totals[1] < 400, totals
    script = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "bench.py"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert script.returncode == 0, script.stderr
    assert SECONDS.sub("| s |", script.stdout) == SECONDS.sub("| s |", result.output)


def test_grid_bench_measures_the_pipeline_and_both_references(tmp_path: Path) -> None:
    args = ["bench", "--events", "200", "--files", "1", "--workdir", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--repeat", "2"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads((tmp_path / "results.json").read_text())
    assert row["events"] == 200
    # Measured twice: medians of the two runs, the higher peak, the ratio run by run.
    first, second = row["runs"]
    for key in ("grid_run_s", "reference_s", "startup_s"):
        assert row[key] == (first[key] + second[key]) / 2, key
    assert row["stages"]["silver"] == (first["stages"]["silver"] + second["stages"]["silver"]) / 2
    assert row["grid_run_rss_mib"] == max(first["grid_run_rss_mib"], second["grid_run_rss_mib"])
    ratios = [run["grid_run_s"] / run["reference_s"] for run in (first, second)]
    assert row["ratio_to_reference"] == sum(ratios) / 2
    assert set(row["stages"]) == {"bronze", "silver", "gold"}
    for name in ("grid_run", "reference", "core_reference"):
        assert row[f"{name}_s"] > 0 and row[f"{name}_rss_mib"] > 0, name
        # CPU time is the child's own: an interpreter at least (imports), at most both cores
        # busy for the whole of its wall time.
        for run in (first, second):
            assert 0.05 < run[f"{name}_cpu_s"] <= run[f"{name}_s"] * (os.cpu_count() or 1), name
    for run in (first, second):
        assert run["cpu_ratio_to_reference"] == run["grid_run_cpu_s"] / run["reference_cpu_s"]
    cpu_ratios = [run["cpu_ratio_to_reference"] for run in (first, second)]
    assert row["cpu_ratio_to_reference"] == sum(cpu_ratios) / 2
    # The fixed cost: Dagster's start-up before the run, the checks' steps, within the run.
    assert 0 < row["startup_s"] < row["grid_run_s"]
    assert (
        row["checks_s"] > 0
        and row["startup_s"] + row["checks_s"] + row["assets_s"] < row["grid_run_s"]
    )
    # The reference's statements timed by layer (the core reference has no layer headers).
    layers = row["reference_layers_s"]
    assert set(layers) == {"bronze", "silver", "gold"} and min(layers.values()) > 0
    assert sum(layers.values()) < row["reference_s"] and row["core_reference_layers_s"] == {}
    table = (tmp_path / "results.md").read_text()
    assert table in result.output
    machine, main, by_layer, cpu, repeats = table.split("\n\n")
    assert machine.endswith("each figure the median of 2 runs")
    assert main.splitlines()[-1].startswith("| 200 |")
    assert f"| {row['ratio_to_reference']:.1f}x |" in main.splitlines()[-1]
    assert repeats.splitlines()[-1] == (
        f"| 200 | {first['grid_run_s']:.1f} / {second['grid_run_s']:.1f} "
        f"| {first['reference_s']:.1f} / {second['reference_s']:.1f} "
        f"| {ratios[0]:.2f}x / {ratios[1]:.2f}x "
        f"| {cpu_ratios[0]:.2f}x / {cpu_ratios[1]:.2f}x |"
    )
    assert cpu.splitlines()[0].startswith("| events | `grid run` CPU-s | `grid run` cores busy |")
    assert cpu.splitlines()[-1] == (
        f"| 200 | {row['grid_run_cpu_s']:.1f} | {row['grid_run_cpu_s'] / row['grid_run_s']:.2f} "
        f"| {row['reference_cpu_s']:.1f} | {row['reference_cpu_s'] / row['reference_s']:.2f} "
        f"| {row['cpu_ratio_to_reference']:.2f}x |"
    )
    assert by_layer.splitlines()[0].startswith("| events | Bronze s | same-work SQL Bronze s |")
    cells = by_layer.splitlines()[-1].strip("| ").split(" | ")
    in_order = [f"{layers[k]:.2f}" for k in ("bronze", "silver", "gold")]
    assert cells[0] == "200" and cells[2::2] == in_order


def test_grid_bench_grid_only_reports_the_runs_cpu_time(tmp_path: Path) -> None:
    args = ["bench", "--events", "200", "--files", "1", "--workdir", str(tmp_path), "--grid-only"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (row,) = json.loads((tmp_path / "results-grid-only.json").read_text())
    assert "reference_s" not in row and "stages" not in row
    assert 0.05 < row["grid_run_cpu_s"] <= row["grid_run_s"] * (os.cpu_count() or 1)
    header, _, last = (tmp_path / "results-grid-only.md").read_text().strip().splitlines()[-3:]
    assert header.split(" | ")[4] == "`grid run` CPU-s"
    assert last.split(" | ")[4] == f"{row['grid_run_cpu_s']:.1f}"


def test_cached_traffic_is_reused_while_intact_and_generated_again_once_changed(
    tmp_path: Path,
) -> None:
    from grid_bench.throughput import ensure_traffic

    landing = ensure_traffic(tmp_path, 300, 1, 2)
    generated = {p.name: p.read_bytes() for p in landing.iterdir()}
    stamps = {p.name: p.stat().st_mtime_ns for p in landing.iterdir()}
    assert len(generated) == 2
    assert ensure_traffic(tmp_path, 300, 1, 2) == landing
    assert {p.name: p.stat().st_mtime_ns for p in landing.iterdir()} == stamps  # reused

    first = sorted(generated)[0]
    (landing / first).write_bytes(b'{"event_id": "other input"}\n')  # overwritten in place
    (landing / "stray.ndjson").write_bytes(b"{}\n")
    ensure_traffic(tmp_path, 300, 1, 2)
    assert {p.name: p.read_bytes() for p in landing.iterdir()} == generated

    # Asked for with another number of files: the same folder name, other traffic.
    ensure_traffic(tmp_path, 300, 1, 3)
    assert len(list(landing.iterdir())) == 3
