"""Throughput and peak memory of the pipeline against a pure-DuckDB-SQL reference.

For each N it generates N lines of GRID traffic (seeded, once, cached under the work folder), then
runs, each in a fresh child process on a fresh DuckDB file:
  - `grid run`, the product end to end (Dagster run with every check);
  - the three units of work timed one by one (Bronze ingest, Silver apply, Gold rebuild);
  - a reference doing the same work in pure DuckDB SQL on the same files (reference.sql, beside
    this module): envelope checks with rejected lines and their reasons, first-wins Bronze (one
    row per event_id), Silver rules with quarantine and a ledger row per event, latest-wins
    state, the four Gold tables;
  - the earlier, lighter "core" reference (reference_core.sql): the same minus everything kept
    of bad input and two Gold tables.
Peak RSS and CPU time (user and system, every thread) are the child's own (wait4), so runs do not
blur into each other; CPU time says which side does more work where wall time moves with the
machine's phase.
With `--repeat K` each size is measured K times over the same traffic: medians, the highest
peak, and the ratio to a reference as the median of each repeat's own ratio.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

STAGE_WORKER = """
import json, sys, time
from pathlib import Path
from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.gold import GOLD_TABLES, rebuild
from grid_assets.etl.silver import apply_new_events
from grid_assets.resources.lakehouse import LakehouseResource

landing, db = Path(sys.argv[1]), sys.argv[2]
lh = LakehouseResource(duckdb_path=db).get_lakehouse()
lh.create_tables()
times = {}
t = time.perf_counter(); ingest_landing(lh, landing); times["bronze"] = time.perf_counter() - t
t = time.perf_counter(); apply_new_events(lh); times["silver"] = time.perf_counter() - t
t = time.perf_counter()
for name in GOLD_TABLES:
    rebuild(lh, name)
times["gold"] = time.perf_counter() - t
print(json.dumps(times))
"""

REFERENCE_WORKER = r"""
import json, pathlib, re, sys, time, duckdb
landing, db, script = sys.argv[1], sys.argv[2], sys.argv[3]
files = [str(p) for p in sorted(pathlib.Path(landing).iterdir())
         if p.name.endswith(('.ndjson', '.jsonl', '.ndjson.gz', '.jsonl.gz'))]
con = duckdb.connect(db)
con.execute("SET VARIABLE files = ?", [files])
# Seconds per layer, by the script's `-- Bronze ---` style headers (none: nothing reported).
layer, layers = None, {}
for statement in re.split(r";\s*\n", pathlib.Path(script).read_text()):
    header = re.search(r"^-- (Bronze|Silver|Gold) -", statement, re.M)
    layer = header.group(1).lower() if header else layer
    if any(line.strip() and not line.strip().startswith("--") for line in statement.splitlines()):
        started = time.perf_counter()
        con.execute(statement)
        if layer:
            layers[layer] = layers.get(layer, 0.0) + time.perf_counter() - started
con.close()
print(json.dumps(layers))
"""
# Package data (pyproject.toml), so an installed grid_bench finds them too.
REFERENCES = {
    "reference": Path(__file__).with_name("reference.sql"),
    "core_reference": Path(__file__).with_name("reference_core.sql"),
}


class Child(NamedTuple):
    """One child process, measured: wall seconds, CPU seconds (user and system, all its
    threads), its own peak RSS and what it printed."""

    seconds: float
    cpu_s: float
    rss_mib: int
    out: str


def run_child(argv: list[str], env: dict[str, str]) -> Child:
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # wait4 on the pid gives this child's own rusage (peak RSS, CPU time), unlike
    # RUSAGE_CHILDREN, which sums every child reaped so far.
    out_chunks = proc.stdout.read() if proc.stdout else ""
    err_chunks = proc.stderr.read() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({code}):\n{err_chunks[-4000:]}")
    cpu_s = usage.ru_utime + usage.ru_stime
    return Child(elapsed, cpu_s, usage.ru_maxrss // 1024, out_chunks)


def _landing_files(landing: Path) -> dict[str, list[int]]:
    """Each landing file's size and modification time, as the cache marker records them."""
    if not landing.is_dir():
        return {}
    stats = {path.name: path.stat() for path in sorted(landing.iterdir()) if path.is_file()}
    return {name: [stat.st_size, stat.st_mtime_ns] for name, stat in stats.items()}


def ensure_traffic(workdir: Path, n: int, seed: int, files: int) -> Path:
    """The landing folder of N lines of traffic, generated once and reused while it is intact.

    The marker beside it records what was generated, file by file; traffic that no longer
    matches it (a file rewritten, cut, added or removed, or another `files` asked for) is
    generated again, so that a benchmark never measures other input than it names."""
    from grid_sim import generate_traffic

    landing = workdir / f"n{n}-seed{seed}" / "landing"
    marker = landing.parent / "generated.json"
    if marker.exists():
        recorded = json.loads(marker.read_text())
        if recorded.get("files") == files and recorded.get("landing") == _landing_files(landing):
            return landing
        print(f"{landing}: changed since it was generated; generating it again", file=sys.stderr)
        marker.unlink()
    shutil.rmtree(landing, ignore_errors=True)
    started = time.perf_counter()
    summary = generate_traffic(landing, n_events=n, seed=seed, n_files=files)
    marker.write_text(
        json.dumps(
            {
                "events": n,
                "seed": seed,
                "files": files,
                "valid": summary.valid_events,
                "seconds": round(time.perf_counter() - started, 1),
                "landing": _landing_files(landing),
            }
        )
    )
    return landing


def bench_one(
    workdir: Path, n: int, seed: int, files: int, grid_only: bool = False, repeat: int = 1
) -> dict:
    """One size measured `repeat` times over the same traffic, each repeat a fresh set of
    lakehouses: the median of every timing, the highest peak RSS, and `grid run`'s ratio to each
    reference as the median of the repeats' own ratios (each pair ran minutes apart at most, so
    a ratio compares the two in the same phase of the machine). With more than one repeat,
    `runs` keeps each repeat's figures."""
    landing = ensure_traffic(workdir, n, seed, files)
    runs = [_measure(landing, n, grid_only) for _ in range(repeat)]
    result = _combine(runs)
    if repeat > 1:
        result["runs"] = runs
    return result


def _combine(runs: list[dict]) -> dict:
    """Medians of the runs' timings (nested ones key by key), the maximum of their peaks."""
    first = runs[0]
    combined: dict = {}
    for key, value in first.items():
        values = [run[key] for run in runs]
        if isinstance(value, dict):
            combined[key] = _combine(values)
        elif key == "events":
            combined[key] = value
        elif key.endswith("_rss_mib"):
            combined[key] = max(values)
        else:
            combined[key] = statistics.median(values)
    return combined


def _measure(landing: Path, n: int, grid_only: bool) -> dict:
    env = {**os.environ, "GRID_ENV": "local", "GRID_LANDING_DIR": str(landing)}
    for key in [k for k in env if k.startswith("DATABRICKS_")]:
        env.pop(key)
    dbs = {name: landing.parent / f"{name}.duckdb" for name in ("grid", "stages", *REFERENCES)}
    for db in dbs.values():
        for path in (db, db.with_suffix(".duckdb.wal")):
            path.unlink(missing_ok=True)

    grid = [str(Path(sys.executable).with_name("grid")), "run", "--json"]
    launched = time.time()
    e2e = run_child(grid, {**env, "GRID_DUCKDB_PATH": str(dbs["grid"])})
    timings = json.loads(e2e.out)["timings"]
    steps = timings["steps"].values()
    fixed = {
        # Interpreter, imports, definitions, instance: from launch to the run's first event.
        "startup_s": timings["started_at"] - launched,
        "checks_s": sum(step["seconds"] for step in steps if step["kind"] == "check"),
        "assets_s": sum(step["seconds"] for step in steps if step["kind"] == "asset"),
    }
    result = {
        "events": n,
        "grid_run_s": e2e.seconds,
        "grid_run_cpu_s": e2e.cpu_s,
        "grid_run_rss_mib": e2e.rss_mib,
        **fixed,
    }
    if grid_only:
        return result
    stages = run_child([sys.executable, "-c", STAGE_WORKER, str(landing), str(dbs["stages"])], env)
    result["stages"] = json.loads(stages.out.strip().splitlines()[-1])
    result["stages_rss_mib"] = stages.rss_mib
    for name, script in REFERENCES.items():
        child = run_child(
            [sys.executable, "-c", REFERENCE_WORKER, str(landing), str(dbs[name]), str(script)],
            env,
        )
        result[f"{name}_s"], result[f"{name}_rss_mib"] = child.seconds, child.rss_mib
        result[f"{name}_cpu_s"] = child.cpu_s
        result[f"{name}_layers_s"] = json.loads(child.out.strip().splitlines()[-1])
        result[f"ratio_to_{name}"] = e2e.seconds / child.seconds
        result[f"cpu_ratio_to_{name}"] = e2e.cpu_s / child.cpu_s
    return result


def render(results: list[dict]) -> str:
    """The results table, then (unless --grid-only) the layers beside the reference's and the
    CPU time beside the reference's, then (when measured more than once) each repeat's
    `grid run` and reference."""
    table = _table(results)
    if results and "stages" in results[0]:
        table += "\n\n" + _layers(results) + "\n\n" + _cpu(results)
    if results and "runs" in results[0]:
        table += "\n\n" + _repeats(results)
    return table


def _table(results: list[dict]) -> str:
    repeats = len(results[0].get("runs", [None])) if results else 1
    medians = f"; each figure the median of {repeats} runs" if repeats > 1 else ""
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}{medians}",
        "",
        "| events | Bronze ev/s | Silver ev/s | Gold s | `grid run` s | start-up s | checks s "
        "| `grid run` ev/s | `grid run` peak RSS MiB | same-work SQL s | ratio "
        "| same-work SQL peak RSS MiB | core SQL s | ratio to core |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    if results and "stages" not in results[0]:  # --grid-only
        lines[2:] = [
            "| events | `grid run` s | start-up s | checks s | `grid run` CPU-s "
            "| `grid run` peak RSS MiB |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['events']:,} | {r['grid_run_s']:.1f} | {r['startup_s']:.1f} "
            f"| {r['checks_s']:.1f} | {r['grid_run_cpu_s']:.1f} | {r['grid_run_rss_mib']:,} |"
            for r in results
        ]
        return "\n".join(lines)
    for r in results:
        n, st, e2e = r["events"], r["stages"], r["grid_run_s"]
        lines.append(
            f"| {n:,} | {n / st['bronze']:,.0f} | {n / st['silver']:,.0f} | {st['gold']:.2f} "
            f"| {e2e:.1f} | {r['startup_s']:.1f} | {r['checks_s']:.1f} "
            f"| {n / e2e:,.0f} | {r['grid_run_rss_mib']:,} "
            f"| {r['reference_s']:.1f} | {r['ratio_to_reference']:.1f}x "
            f"| {r['reference_rss_mib']:,} | {r['core_reference_s']:.1f} "
            f"| {r['ratio_to_core_reference']:.1f}x |"
        )
    return "\n".join(lines)


def _layers(results: list[dict]) -> str:
    """Each layer's seconds: the pipeline's unit of work alone (Silver and Gold on what the
    units before them wrote), the same-work reference's statements of that layer."""
    lines = [
        "| events | Bronze s | same-work SQL Bronze s | Silver s | same-work SQL Silver s "
        "| Gold s | same-work SQL Gold s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ours, theirs = r["stages"], r["reference_layers_s"]
        cells = [f"{ours[k]:.2f} | {theirs[k]:.2f}" for k in ("bronze", "silver", "gold")]
        lines.append(f"| {r['events']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cpu(results: list[dict]) -> str:
    """CPU time (user and system, every thread) of `grid run` and of the same-work reference,
    the cores each kept busy on average (CPU time over wall time, of the medians), and the
    ratio of CPU times (the median of each run's own). Wall time on a shared 2-core machine
    moves with its phase; CPU time says which side does more work."""
    lines = [
        "| events | `grid run` CPU-s | `grid run` cores busy | same-work SQL CPU-s "
        "| same-work SQL cores busy | CPU ratio |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['events']:,} | {r['grid_run_cpu_s']:.1f} "
            f"| {r['grid_run_cpu_s'] / r['grid_run_s']:.2f} | {r['reference_cpu_s']:.1f} "
            f"| {r['reference_cpu_s'] / r['reference_s']:.2f} "
            f"| {r['cpu_ratio_to_reference']:.2f}x |"
        )
    return "\n".join(lines)


def _repeats(results: list[dict]) -> str:
    """Each repeat's `grid run` seconds, in order, and (unless --grid-only) the same-work
    reference's, their ratio and the ratio of their CPU times, run by run."""
    both = "stages" in results[0]
    lines = [
        "| events | `grid run` s, each run"
        + (
            " | same-work SQL s, each run | ratio, each run | CPU ratio, each run |"
            if both
            else " |"
        ),
        "|---:|---:" + ("|---:|---:|---:|" if both else "|"),
    ]
    for r in results:
        runs = r["runs"]
        cells = [" / ".join(f"{run['grid_run_s']:.1f}" for run in runs)]
        if both:
            cells.append(" / ".join(f"{run['reference_s']:.1f}" for run in runs))
            cells.append(" / ".join(f"{run['ratio_to_reference']:.2f}x" for run in runs))
            cells.append(" / ".join(f"{run['cpu_ratio_to_reference']:.2f}x" for run in runs))
        lines.append(f"| {r['events']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(
    events: list[int], seed: int, files: int, workdir: Path, grid_only: bool, repeat: int = 1
) -> None:
    """Benchmark each size in turn (one table row printed as each ends), then the whole table,
    also written to `workdir` as results[-grid-only].md and .json."""
    results = []
    for n in events:
        results.append(bench_one(workdir, n, seed, files, grid_only, repeat))
        print(_table(results[-1:]).splitlines()[-1], flush=True)
    report = render(results)
    workdir.mkdir(parents=True, exist_ok=True)
    stem = "results-grid-only" if grid_only else "results"
    (workdir / f"{stem}.md").write_text(report + "\n")
    (workdir / f"{stem}.json").write_text(json.dumps(results, indent=2))
    print("\n" + report)
