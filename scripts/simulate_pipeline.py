"""Generate realistic GRID traffic into a landing folder, then run the pipeline on it locally.

    python scripts/simulate_pipeline.py                      # 3000 events, then `grid run`
    python scripts/simulate_pipeline.py --events 1000000 --no-run --out /tmp/landing

The same command as `grid simulate` (same options, same bytes), kept for a plain checkout where
the `grid` executable is not installed. The traffic is deterministic for a given seed; its
probabilities are `grid_sim.TrafficProfile`.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Runnable from a plain checkout: the packages need not be installed.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import typer  # noqa: E402

from grid_assets.cli import app  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    """`grid simulate` with these arguments (sys.argv's by default); exits with its status."""
    command = typer.main.get_group(app).commands["simulate"]
    command.main(args=sys.argv[1:] if argv is None else argv, prog_name="simulate_pipeline.py")


if __name__ == "__main__":
    main()
