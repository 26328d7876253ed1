"""Generate realistic GRID traffic into a landing folder, then run the pipeline on it locally.

    python scripts/simulate_pipeline.py                      # 3000 events, then `grid run`
    python scripts/simulate_pipeline.py --events 1000000 --no-run --out /tmp/landing

The traffic is deterministic for a given seed and includes everything the raw-event contract
says the pipeline must survive: late and duplicated events, event_id conflicts, lines that are
not valid envelopes, and domain events that belong in quarantine. The pipeline runs in a child
process in local mode (embedded DuckDB), so no cloud credentials are needed or read.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Runnable from a plain checkout: the package need not be installed.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from grid_assets.simulation import generate_traffic  # noqa: E402

EVENT_FILE_PATTERNS = ("*.ndjson", "*.ndjson.gz", "*.jsonl", "*.jsonl.gz")


def event_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted({path for pattern in EVENT_FILE_PATTERNS for path in folder.glob(pattern)})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Generate GRID traffic into a landing folder, then run the pipeline locally."
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: 7)")
    parser.add_argument("--events", type=int, default=3000, help="non-blank lines to write")
    parser.add_argument("--files", type=int, default=4, help="files to spread them over")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO_ROOT / "data" / "landing",
        help="landing folder (default: data/landing, the default GRID_LANDING_DIR)",
    )
    parser.add_argument(
        "--bad-share", type=float, default=0.02, help="share of lines that are bad input"
    )
    parser.add_argument(
        "--gzip-every", type=int, default=2, help="gzip every n-th file (0: none; default: 2)"
    )
    parser.add_argument(
        "--clean", action="store_true", help="delete the folder's event files first"
    )
    parser.add_argument("--no-run", action="store_true", help="only generate; do not run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out.resolve()

    if args.clean:
        for path in event_files(out):
            path.unlink()

    started = time.perf_counter()
    try:
        summary = generate_traffic(
            out,
            n_events=args.events,
            seed=args.seed,
            n_files=args.files,
            bad_share=args.bad_share,
            gzip_every=args.gzip_every,
        )
    except ValueError as exc:
        print(f"simulate_pipeline: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print(f"Generated traffic into {out} (seed {args.seed}) in {elapsed:.1f} s")
    print(summary.report())

    # Files from an earlier, larger run would be ingested too and skew every count above.
    stale = [p.name for p in event_files(out) if p.name not in summary.files]
    if stale:
        print(f"warning: {len(stale)} other event file(s) in {out} (use --clean): {stale[:5]}")

    if args.no_run:
        return 0
    print("\nRunning the pipeline locally: python -m grid_assets.cli run", flush=True)
    env = {**os.environ, "GRID_ENV": "local", "GRID_LANDING_DIR": str(out)}
    return subprocess.run(
        [sys.executable, "-m", "grid_assets.cli", "run"], env=env, cwd=REPO_ROOT, check=False
    ).returncode


if __name__ == "__main__":
    sys.exit(main())
