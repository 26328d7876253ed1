"""Throughput and peak memory of the pipeline against a pure-DuckDB-SQL reference.

    python scripts/bench.py --events 10000 100000 1000000

For each N it generates N lines of GRID traffic (seeded, once, cached under --workdir), then runs,
each in a fresh child process on a fresh DuckDB file:
  - `grid run`, the product end to end (Dagster run with every check);
  - the three units of work timed one by one (Bronze ingest, Silver apply, Gold rebuild);
  - a reference doing the same work in pure DuckDB SQL on the same files: read, envelope
    checks, first-wins dedup, latest-wins Silver state, order lines, Gold aggregates.
Peak RSS is the child's own maximum resident set (wait4), so runs do not blur into each other.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

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
import sys, duckdb
landing, db = sys.argv[1], sys.argv[2]
files = [str(p) for p in sorted(__import__('pathlib').Path(landing).iterdir())
         if p.name.endswith(('.ndjson', '.jsonl', '.ndjson.gz', '.jsonl.gz'))]
con = duckdb.connect(db)
con.execute("SET TimeZone = 'UTC'")
item = '{"product_id":"VARCHAR","quantity":"INTEGER","unit_price":"DECIMAL(18,6)","discount":"DECIMAL(18,6)"}'
con.execute("CREATE TABLE raw AS SELECT filename, row_number() OVER () AS pos, json "
            "FROM read_json_objects(?, format='newline_delimited', ignore_errors=true, filename=true)",
            [files])
con.execute(r'''
CREATE TABLE events AS SELECT * FROM (
  SELECT json->>'event_id' AS event_id, json->>'event_type' AS event_type,
         TRY_CAST(json->>'occurred_at' AS TIMESTAMPTZ) AS occurred_at,
         json->'payload' AS payload, md5(json::VARCHAR) AS content_hash, filename, pos
  FROM raw
  WHERE json_type(json) = 'OBJECT' AND coalesce(json->>'event_id', '') <> ''
    AND json->>'event_type' IS NOT NULL AND json_type(json->'payload') = 'OBJECT'
    AND regexp_matches(json->>'occurred_at', '(Z|[+-]\d\d:\d\d)$'))
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY filename, pos) = 1''')
con.execute('''
CREATE TABLE products AS
SELECT payload->>'product_id' AS product_id, payload->>'category' AS category,
       TRY_CAST(payload->>'unit_price' AS DECIMAL(18,6)) AS unit_price, occurred_at, event_id
FROM events WHERE event_type IN ('product.created', 'product.updated')
  AND payload->>'product_id' IS NOT NULL AND payload->>'category' IS NOT NULL
  AND TRY_CAST(payload->>'unit_price' AS DECIMAL(18,6)) >= 0
QUALIFY row_number() OVER (PARTITION BY product_id ORDER BY occurred_at DESC, event_id DESC) = 1''')
con.execute('''
CREATE TABLE orders AS
SELECT payload->>'order_id' AS order_id, split_part(event_type, '.', 2) AS status, occurred_at
FROM events WHERE event_type IN ('order.placed', 'order.paid', 'order.shipped', 'order.cancelled')
  AND payload->>'order_id' IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY order_id ORDER BY occurred_at DESC, event_id DESC) = 1''')
con.execute(f'''
CREATE TABLE order_items AS
WITH placements AS (
  SELECT payload->>'order_id' AS order_id, occurred_at,
         from_json(payload->'items', '[{item}]') AS items
  FROM events WHERE event_type = 'order.placed' AND payload->>'order_id' IS NOT NULL
    AND json_array_length(payload->'items') > 0
  QUALIFY row_number() OVER (PARTITION BY payload->>'order_id'
                             ORDER BY occurred_at DESC, event_id DESC) = 1)
SELECT order_id, occurred_at AS placed_at, unnest(items, recursive := true) FROM placements''')
con.execute('''
CREATE TABLE revenue_by_category AS
SELECT coalesce(p.category, 'unknown') AS category,
       round(sum(i.quantity * i.unit_price * (1 - coalesce(i.discount, 0))), 2) AS revenue,
       count(DISTINCT i.order_id) AS order_count, sum(i.quantity) AS units
FROM order_items i JOIN orders o USING (order_id) LEFT JOIN products p USING (product_id)
WHERE o.status <> 'cancelled' GROUP BY 1''')
con.execute('''
CREATE TABLE daily_revenue AS
SELECT CAST(i.placed_at AS DATE) AS order_date,
       round(sum(i.quantity * i.unit_price * (1 - coalesce(i.discount, 0))), 2) AS revenue,
       count(DISTINCT i.order_id) AS order_count
FROM order_items i JOIN orders o USING (order_id)
WHERE o.status <> 'cancelled' GROUP BY 1''')
con.close()
"""


def peak_rss_mib(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # wait4 on the pid gives this child's own rusage (peak RSS), unlike RUSAGE_CHILDREN.
    out_chunks = proc.stdout.read() if proc.stdout else ""
    err_chunks = proc.stderr.read() if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({code}):\n{err_chunks[-4000:]}")
    return elapsed, usage.ru_maxrss // 1024, out_chunks


def ensure_traffic(workdir: Path, n: int, seed: int, files: int) -> Path:
    from grid_assets.simulation import generate_traffic

    landing = workdir / f"n{n}-seed{seed}" / "landing"
    marker = landing.parent / "generated.json"
    if not marker.exists():
        started = time.perf_counter()
        summary = generate_traffic(landing, n_events=n, seed=seed, n_files=files)
        marker.write_text(
            json.dumps(
                {
                    "events": n,
                    "seed": seed,
                    "valid": summary.valid_events,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
        )
    return landing


def bench_one(workdir: Path, n: int, seed: int, files: int) -> dict:
    landing = ensure_traffic(workdir, n, seed, files)
    env = {**os.environ, "GRID_ENV": "local", "GRID_LANDING_DIR": str(landing)}
    for key in [k for k in env if k.startswith("DATABRICKS_")]:
        env.pop(key)
    dbs = {name: landing.parent / f"{name}.duckdb" for name in ("grid", "stages", "reference")}
    for db in dbs.values():
        for path in (db, db.with_suffix(".duckdb.wal")):
            path.unlink(missing_ok=True)

    grid = [str(Path(sys.executable).with_name("grid")), "run", "--no-show-gold"]
    e2e_s, e2e_rss, _ = peak_rss_mib(grid, {**env, "GRID_DUCKDB_PATH": str(dbs["grid"])})
    _, stage_rss, stage_out = peak_rss_mib(
        [sys.executable, "-c", STAGE_WORKER, str(landing), str(dbs["stages"])], env
    )
    stages = json.loads(stage_out.strip().splitlines()[-1])
    ref_s, ref_rss, _ = peak_rss_mib(
        [sys.executable, "-c", REFERENCE_WORKER, str(landing), str(dbs["reference"])], env
    )
    return {
        "events": n,
        "grid_run_s": e2e_s,
        "grid_run_rss_mib": e2e_rss,
        "stages": stages,
        "stages_rss_mib": stage_rss,
        "reference_s": ref_s,
        "reference_rss_mib": ref_rss,
    }


def render(results: list[dict]) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "",
        "| events | Bronze ev/s | Silver ev/s | Gold s | `grid run` s | `grid run` ev/s "
        "| `grid run` peak RSS MiB | pure SQL s | pure SQL peak RSS MiB | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        n, st = r["events"], r["stages"]
        lines.append(
            f"| {n:,} | {n / st['bronze']:,.0f} | {n / st['silver']:,.0f} | {st['gold']:.2f} "
            f"| {r['grid_run_s']:.1f} | {n / r['grid_run_s']:,.0f} | {r['grid_run_rss_mib']:,} "
            f"| {r['reference_s']:.1f} | {r['reference_rss_mib']:,} "
            f"| {r['grid_run_s'] / r['reference_s']:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / "data" / "bench")
    args = parser.parse_args(argv)
    results = []
    for n in args.events:
        results.append(bench_one(args.workdir, n, args.seed, args.files))
        print(render(results[-1:]).splitlines()[-1], flush=True)
    report = render(results)
    args.workdir.mkdir(parents=True, exist_ok=True)
    (args.workdir / "results.md").write_text(report + "\n")
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2))
    print("\n" + report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
