"""Tier 2: the landing sensor decides what is new from `bronze.ingested_files`, not a cursor."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from grid_assets.defs.bronze.sensors import landing_files_sensor
from grid_assets.defs.resources import LandingFolder
from grid_assets.etl.bronze import ingest_landing
from grid_assets.ingest.landing import TAIL_QUIET_S
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.conftest import REPO_ROOT, write_events


def beat(eid: str, at: str = "2026-01-01T00:00:00Z") -> dict:
    return {"event_id": eid, "event_type": "system.heartbeat", "occurred_at": at, "payload": {}}


def tick(landing: Path, db: Path, instance: dg.DagsterInstance | None = None):
    """One evaluation with a fresh context: no cursor, as on the sensor's first tick."""
    resources = {
        "landing": LandingFolder(path=str(landing)),
        "lakehouse": LakehouseResource(duckdb_path=str(db)),
    }
    return landing_files_sensor(dg.build_sensor_context(resources=resources, instance=instance))


def db_of(lakehouse: Lakehouse) -> Path:
    return Path(str(lakehouse.engine.url.database))


def test_first_tick_on_an_ingested_folder_requests_nothing(tmp_path: Path) -> None:
    landing, db = tmp_path / "landing", tmp_path / "fresh.duckdb"
    assert isinstance(tick(landing, db), dg.SkipReason)  # no folder, no lakehouse yet

    write_events(landing / "a.ndjson", [beat("b1")])
    write_events(landing / "b.ndjson", [beat("b2")])
    before = tick(landing, db)  # Bronze has no record at all: both files are new
    assert isinstance(before, dg.RunRequest)
    assert before.tags["grid/changed_files"] == "a.ndjson,b.ndjson"

    lakehouse = LakehouseResource(duckdb_path=str(db)).get_lakehouse()
    lakehouse.create_tables()
    ingest_landing(lakehouse, landing)
    skipped = tick(landing, db)
    assert isinstance(skipped, dg.SkipReason)
    assert "ingested at its current size" in str(skipped.skip_message)


def test_a_grown_file_triggers_and_only_it(tmp_path: Path, lakehouse: Lakehouse) -> None:
    landing = tmp_path / "landing"
    write_events(landing / "a.ndjson", [beat("b1")])
    write_events(landing / "b.ndjson", [beat("b2")])
    ingest_landing(lakehouse, landing)
    with (landing / "b.ndjson").open("a") as handle:
        handle.write(json.dumps(beat("b3")) + "\n")
    grown = tick(landing, db_of(lakehouse))
    assert isinstance(grown, dg.RunRequest)
    assert grown.tags["grid/changed_files"] == "b.ndjson"

    ingest_landing(lakehouse, landing)
    assert isinstance(tick(landing, db_of(lakehouse)), dg.SkipReason)


def test_a_read_left_open_triggers_once_more(tmp_path: Path, lakehouse: Lakehouse) -> None:
    """A final line without its newline: recorded `partial_line`, requested again at the same
    size (the next run reads it as complete), then nothing more."""
    landing = tmp_path / "landing"
    write_events(landing / "a.ndjson", [beat("b1")])
    with (landing / "a.ndjson").open("a") as handle:
        handle.write(json.dumps(beat("b2")))  # no newline yet
    first = tick(landing, db_of(lakehouse))
    ingest_landing(lakehouse, landing)
    again = tick(landing, db_of(lakehouse))
    assert isinstance(first, dg.RunRequest) and isinstance(again, dg.RunRequest)
    assert again.run_key != first.run_key  # same size, but the record says it is left open
    quiet = time.time() - TAIL_QUIET_S - 1
    os.utime(landing / "a.ndjson", (quiet, quiet))  # its writer has stopped
    ingest_landing(lakehouse, landing)
    assert isinstance(tick(landing, db_of(lakehouse)), dg.SkipReason)


def test_an_unreadable_file_triggers_only_when_its_size_changes(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    whole = gzip.compress((json.dumps(beat("b1")) + "\n").encode() * 50)
    (landing / "a.ndjson.gz").write_bytes(whole[: len(whole) // 2])  # truncated gzip
    (landing / "dir.ndjson").mkdir()  # named like an event file, but a folder
    ingest_landing(lakehouse, landing)
    assert isinstance(tick(landing, db_of(lakehouse)), dg.SkipReason)

    (landing / "a.ndjson.gz").write_bytes(whole)  # its writer finished it
    grown = tick(landing, db_of(lakehouse))
    assert isinstance(grown, dg.RunRequest) and grown.tags["grid/changed_files"] == "a.ndjson.gz"


def test_no_request_while_a_run_of_the_job_is_unfinished(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_events(landing / "a.ndjson", [beat("b1")])
    db = tmp_path / "grid.duckdb"
    with dg.instance_for_test() as instance:
        assert isinstance(tick(landing, db, instance), dg.RunRequest)
        instance.add_run(
            dg.DagsterRun(
                job_name="medallion_job", run_id="r-1", status=dg.DagsterRunStatus.STARTED
            )
        )
        waiting = tick(landing, db, instance)
        assert isinstance(waiting, dg.SkipReason) and "r-1" in str(waiting.skip_message)


RUN_KEY_SCRIPT = """
import sys
from pathlib import Path
from grid_assets_tests.test_landing_sensor import tick
print(tick(Path(sys.argv[1]), Path(sys.argv[2])).run_key)
"""


def test_run_key_is_the_same_in_every_process(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    for n in range(3):
        write_events(landing / f"part-{n}.ndjson", [beat(f"b{n}")])
    db = tmp_path / "grid.duckdb"
    keys = []
    for seed in ("1", "2"):  # string hashing differs between these two processes
        env = {**os.environ, "PYTHONHASHSEED": seed, "GRID_ENV": "local"}
        done = subprocess.run(
            [sys.executable, "-c", RUN_KEY_SCRIPT, str(landing), str(db)],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        keys.append(done.stdout.strip().splitlines()[-1])
    request = tick(landing, db)
    assert isinstance(request, dg.RunRequest)
    assert keys == [request.run_key, request.run_key]
    assert request.run_key.startswith("landing-")
