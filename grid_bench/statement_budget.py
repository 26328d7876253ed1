"""The Databricks statement budget: the production write path on generated traffic, offline.

    grid bench --databricks-statements --events 100000

Bronze, Silver and Gold run through the production code (`Lakehouse` on the Databricks
dialect, `staging.VolumeStaging`) against a recording warehouse (`RecordingWarehouse`: every
statement recorded, none executed by a server) and an in-memory volume. Per step it prints the
statements sent, the files staged and their bytes, and what the row path it replaces would have
sent for the same batches: a scratch table created and dropped per batch, filled by multi-row
VALUES of at most 256 parameters. The DDL is that of a first run on an empty warehouse.

The recording warehouse and the in-memory volume are `grid_bench.recording` (the tests of the
write path use them too).
"""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path

from pydantic import SecretStr

from grid_assets.config import DatabricksConfig, derived_staging_volume
from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.gold import GOLD_TABLES, rebuild
from grid_assets.etl.silver import apply_new_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.databricks import (
    MAX_PARAMS_PER_STATEMENT,
    DatabricksBackend,
    databricks_engine,
)
from grid_assets.lakehouse.staging import VolumeStaging
from grid_bench.recording import MemoryVolume, RecordingWarehouse
from grid_bench.throughput import ensure_traffic

STEPS = ("ddl", "bronze", "silver", "gold")


def row_path_statements(rows: int, columns: int) -> int:
    """What one batch cost on the row path: CREATE, the VALUES chunks, DROP."""
    return 2 + math.ceil(rows / max(1, MAX_PARAMS_PER_STATEMENT // columns))


def measure(landing: Path) -> list[dict]:
    volume = MemoryVolume()
    warehouse = RecordingWarehouse(volume)
    config = DatabricksConfig(
        server_hostname=f"adb-{uuid.uuid4().hex[:10]}.azuredatabricks.net",
        http_path="/sql/1.0/warehouses/0123456789abcdef",
        access_token=SecretStr("dapi" + "0" * 32),  # never sent: the warehouse is a recording
        catalog="main",
    )
    engine = databricks_engine(config, dbapi=warehouse.module())
    path = derived_staging_volume("main", "grid_")
    stager = VolumeStaging(path, volume, run_id=f"bench-{uuid.uuid4().hex[:8]}")
    backend = DatabricksBackend(engine, stager, create_volume="main.grid_bronze.grid_staging")
    lakehouse = Lakehouse(backend, "grid_")
    steps = {
        "ddl": lakehouse.create_tables,
        "bronze": lambda: ingest_landing(lakehouse, landing, run_id=stager.run_id),
        "silver": lambda: apply_new_events(lakehouse, run_id=stager.run_id),
        "gold": lambda: [rebuild(lakehouse, name, stager.run_id) for name in GOLD_TABLES],
    }
    report = []
    for step in STEPS:
        sent, uploads = len(warehouse.statements), len(volume.uploads)
        started = time.perf_counter()
        steps[step]()
        batches = volume.uploads[uploads:]
        statements = len(warehouse.statements) - sent
        values_chunks = sum(row_path_statements(rows, cols) for _, _, rows, cols in batches)
        report.append(
            {
                "step": step,
                "statements": statements,
                "files": len(batches),
                "bytes": sum(size for _, size, _, _ in batches),
                "rows": sum(rows for _, _, rows, _ in batches),
                # The same statements, each file upload replaced by its scratch-table round trips.
                "row_path_statements": statements + values_chunks,
                "seconds": time.perf_counter() - started,
            }
        )
    assert not volume.files, f"staged files left behind: {sorted(volume.files)[:3]}"
    engine.dispose()
    return report


def render(events: int, report: list[dict]) -> str:
    lines = [
        f"Databricks statement budget at {events:,} events (recording warehouse, no server)",
        "",
        "| step | statements | files staged | bytes staged | rows staged "
        "| row path statements | s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report:
        lines.append(
            f"| {r['step']} | {r['statements']:,} | {r['files']:,} | {r['bytes']:,} "
            f"| {r['rows']:,} | {r['row_path_statements']:,} | {r['seconds']:.1f} |"
        )
    total = {k: sum(r[k] for r in report) for k in ("statements", "files", "bytes", "rows")}
    row_path = sum(r["row_path_statements"] for r in report)
    lines.append(
        f"| total | {total['statements']:,} | {total['files']:,} | {total['bytes']:,} "
        f"| {total['rows']:,} | {row_path:,} | |"
    )
    lines += ["", f"statements: {total['statements']}"]
    return "\n".join(lines)


def run(events: list[int], seed: int, files: int, workdir: Path) -> None:
    """The budget table for each size in turn, on the same cached traffic as the benchmark."""
    for n in events:
        landing = ensure_traffic(workdir, n, seed, files)
        print(render(n, measure(landing)), flush=True)
