"""Throughput and peak memory of the pipeline against a pure-DuckDB-SQL reference.

    python scripts/bench.py --events 10000 100000 1000000 3000000
    python scripts/bench.py --events 6000000 --grid-only   # `grid run` alone: time and peak RSS
    python scripts/bench.py --databricks-statements --events 100000   # statements, files, bytes

The same command as `grid bench` (same options, same output), kept for `make bench` and a plain
checkout where the `grid` executable is not installed. The benchmark lives in the package
`grid_bench`, beside the product.
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
    """`grid bench` with these arguments (sys.argv's by default); exits with its status."""
    command = typer.main.get_group(app).commands["bench"]
    command.main(args=sys.argv[1:] if argv is None else argv, prog_name="bench.py")


if __name__ == "__main__":
    main()
