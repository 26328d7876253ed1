"""Check the production (Databricks) configuration before deploying.

    python scripts/check_databricks_config.py [--timeout SECONDS] [--statement-timeout SECONDS]
                                              [--verbose]

The same command as `grid check-config` (same options, same lines, same exit status: 0 only when
every check passes), kept for a plain checkout where the `grid` executable is not installed. The
checks live in the package `grid_assets.check_config`.
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
    """`grid check-config` with these arguments (sys.argv's by default); exits with its status."""
    command = typer.main.get_group(app).commands["check-config"]
    command.main(
        args=sys.argv[1:] if argv is None else argv, prog_name="check_databricks_config.py"
    )


if __name__ == "__main__":
    main()
