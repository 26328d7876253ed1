"""The core of the package imports no Dagster: models, schemas, query builders, ingestion,
transforms, the ETL steps, the lakehouse and the configuration can be used and tested alone."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "grid_assets.config",
    "grid_assets.settings",
    "grid_assets.models",
    "grid_assets.schemas.silver",
    "grid_assets.queries.bronze",
    "grid_assets.queries.silver",
    "grid_assets.queries.gold",
    "grid_assets.queries.checks",
    "grid_assets.ingest.landing",
    "grid_assets.transform.silver_rows",
    "grid_assets.etl.bronze",
    "grid_assets.etl.silver",
    "grid_assets.etl.gold",
    "grid_assets.lakehouse.core",
    "grid_assets.lakehouse.duckdb",
    "grid_assets.lakehouse.databricks",
]


def test_the_core_imports_no_dagster() -> None:
    probe = (
        "import importlib, sys\n"
        f"for name in {CORE!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_the_probe_sees_dagster_when_it_is_imported() -> None:
    # The same probe on the Dagster layer: what makes the test above able to fail.
    probe = "import sys, grid_assets.defs.bronze.assets\nprint('dagster' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "True"
