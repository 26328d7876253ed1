"""A real full disk under the lakehouse file: what the operator reads, and the re-run after it;
and under the production path's local staging folder.

`test_crash_recovery.py` fails commits as a full disk would (`OSError(ENOSPC)` injected); here
the disk is real. `grid run` writes its DuckDB file on a tmpfs smaller than the finished
lakehouse, mounted in a private mount namespace (`unshare`, no privileges needed where user
namespaces are allowed), so DuckDB itself meets `ENOSPC`: a commit fails, or a checkpoint fails
with a FATAL error that invalidates the database for the rest of the process (the second test).
The run must exit 1 and say, on its last lines, which step failed and that the disk is full,
naming the file and what to do. The file and its `.wal` are then moved to a disk with room, as
the message says, and a plain `grid run` there must give every table of one uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grid_assets_tests.test_crash_recovery import snapshot
from grid_sim import generate_traffic

REPO_ROOT = Path(__file__).resolve().parents[1]
GRID = Path(sys.executable).parent / "grid"
LINES = 40_000
RUN_TIMEOUT_S = 240
# Room on the small disk beyond the earlier lakehouse, as a multiple of what the later file adds
# to a finished lakehouse. Measured with this input: below ~1.1 Bronze's commit fails, from ~1.6
# to ~2.6 Silver's; from ~2.65 every step commits and only the checkpoint when the run closes
# the file fails, which DuckDB keeps quiet (its log keeps the work; the next open replays it).
DISK_SHARE = 2.0
UNSHARE = ["unshare", "--user", "--map-root-user", "--mount"]


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def _on_a_small_disk(
    disk: Path, size: str, commands: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`commands` (sh) in a private mount namespace where `disk` is a tmpfs of `size`; what
    they leave there is gone when they end."""
    script = f'mount -t tmpfs -o size={size} tmpfs "{disk}" || exit 90\n' + commands
    return _run([*UNSHARE, "sh", "-c", script], env)


@pytest.fixture(scope="module", autouse=True)
def private_mounts(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test here mounts a tmpfs of its own: skipped, saying why, where that is not allowed."""
    if shutil.which("unshare") is None:
        pytest.skip("no `unshare` on this machine")
    probe = _on_a_small_disk(tmp_path_factory.mktemp("probe"), "1m", "", dict(os.environ))
    if probe.returncode:
        pytest.skip(f"cannot mount a private tmpfs: {probe.stderr.strip()}")


def _env(landing: Path, db: Path, home: Path) -> dict[str, str]:
    home.mkdir(exist_ok=True)
    return {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABRICKS_", "GRID_", "DAGSTER_")) and k != "PYTEST_CURRENT_TEST"
        },
        "GRID_ENV": "local",
        "GRID_LANDING_DIR": str(landing),
        "GRID_DUCKDB_PATH": str(db),
        "DAGSTER_HOME": str(home),
        "COLUMNS": "400",  # the summary's lines whole
    }


def _grid_run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _run([str(GRID), "run", "--no-show-gold"], env)


def _size(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


def test_full_disk_is_named_and_a_rerun_with_room_completes_exactly(tmp_path: Path) -> None:
    generated, landing = tmp_path / "generated", tmp_path / "landing"
    generate_traffic(generated, LINES, 20261202, n_files=3, bad_share=0.02, gzip_every=2)
    files = sorted(generated.iterdir())
    reference_db = tmp_path / "reference" / "lake.duckdb"
    reference = _grid_run(_env(generated, reference_db, tmp_path / "home-ref"))
    assert reference.returncode in (0, 1), reference.stdout[-3000:] + reference.stderr[-3000:]
    assert "write-ahead log" not in reference.stderr  # a run with room checkpoints as it closes

    # Yesterday's run, on a disk with room: the first two files.
    landing.mkdir()
    for path in files[:2]:
        shutil.copyfile(path, landing / path.name)
    earlier_db = tmp_path / "earlier" / "lake.duckdb"
    earlier = _grid_run(_env(landing, earlier_db, tmp_path / "home-earlier"))
    assert earlier.returncode in (0, 1), earlier.stdout[-3000:] + earlier.stderr[-3000:]
    shutil.copyfile(files[2], landing / files[2].name)  # today's file arrives
    room = _size(earlier_db) + int((_size(reference_db) - _size(earlier_db)) * DISK_SHARE)

    # Today's run, on a disk with less room than it needs: the lakehouse is put on a tmpfs of
    # its own; the run's output and the lakehouse files are copied out before the namespace
    # (and its tmpfs) ends.
    disk, saved = tmp_path / "disk", tmp_path / "saved"
    disk.mkdir()
    saved.mkdir()
    db = disk / "lake.duckdb"
    commands = (
        f'cp "{earlier_db.parent}"/lake.duckdb* "{disk}/" || exit 91\n'
        f'"{GRID}" run --no-show-gold > "{saved}/stdout" 2> "{saved}/stderr"\n'
        "code=$?\n"
        f'cp "{disk}"/lake.duckdb* "{saved}/"\n'
        "exit $code\n"
    )
    env = _env(landing, db, tmp_path / "home-full")
    full = _on_a_small_disk(disk, f"{room // 1024}k", commands, env)
    stdout = (saved / "stdout").read_text()
    stderr = (saved / "stderr").read_text()
    assert full.returncode == 1, f"exit {full.returncode}\n{stdout[-3000:]}\n{stderr[-3000:]}"
    assert "No space left on device" in stderr, stderr[-3000:]  # DuckDB did meet a full disk

    # The summary's last lines name the failed step and say what happened, in words.
    failed_line = next(line for line in stdout.splitlines() if line.startswith("Run failed"))
    tail = stdout[stdout.index(failed_line) :]
    assert "LakehouseDiskFullError: The disk holding the lakehouse file" in tail, tail
    assert f"{db} is full" in tail, tail
    assert "GRID_DUCKDB_PATH" in tail and "`.wal`" in tail, tail
    assert "FatalException" not in tail and "invalidated" not in tail, tail
    step = tail.split("LakehouseDiskFullError")[0].split("\n")[-1].strip().rstrip(":")
    assert step and step in failed_line, (step, failed_line)

    # Moved to a disk with room, as the message says, the lakehouse completes exactly: the
    # same tables as one uninterrupted run over the three files.
    moved = tmp_path / "moved" / "lake.duckdb"
    moved.parent.mkdir()
    for part in saved.glob("lake.duckdb*"):
        shutil.copyfile(part, moved.parent / part.name)
    assert moved.exists(), "the full disk's lakehouse file was not saved"
    rerun = _grid_run(_env(landing, moved, tmp_path / "home-rerun"))
    assert rerun.returncode == reference.returncode, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert snapshot(reference_db).differences(snapshot(moved)) == {}


# How the scripts below begin: the lakehouse in argv[1] as `grid run` gets it (the resource's),
# and its warnings logged on stderr.
AS_GRID_RUN = """
import json, logging, sys
from pathlib import Path
from grid_assets.lakehouse.duckdb import LakehouseDiskFullError, held_open
from grid_assets.resources.lakehouse import LakehouseResource
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
lakehouse = LakehouseResource(duckdb_path=sys.argv[1]).get_lakehouse()
"""
CHECKPOINTS = (
    AS_GRID_RUN
    + """
committed, error = 0, None
with held_open(lakehouse.engine):  # as `grid run` holds the file: two connections to it
    with lakehouse.begin() as conn:
        # A small threshold: every commit checkpoints, as Silver's large batches do.
        conn.exec_driver_sql("SET checkpoint_threshold = '1MB'")
        conn.exec_driver_sql("CREATE TABLE t (s VARCHAR)")
    while error is None and committed < 10**7:
        try:
            with lakehouse.begin() as conn:
                conn.exec_driver_sql(
                    "INSERT INTO t SELECT md5(random()::VARCHAR) || range FROM range(50000)"
                )
            committed += 50000
        except LakehouseDiskFullError as exc:
            error = str(exc)
print(json.dumps({"committed": committed, "error": error}))
"""
)
COUNT = """
import json, sys
import duckdb
stored = duckdb.connect(sys.argv[1]).execute("SELECT count(*) FROM t").fetchall()[0][0]
print(json.dumps({"stored": stored}))
"""


def test_a_checkpoint_on_a_full_disk_is_named_and_the_next_process_keeps_what_committed(
    tmp_path: Path,
) -> None:
    """DuckDB's other way of meeting a full disk: a commit's checkpoint fails with a FATAL error
    that invalidates the database. Worded the same, and said once: the connections closed
    after it add no traceback of their own; a new process opens the file and finds every
    committed row."""
    disk = tmp_path / "disk"
    disk.mkdir()
    db = disk / "lake.duckdb"
    commands = (
        f'"{sys.executable}" -c "$CHECKPOINTS" "{db}" || exit 91\n'
        f'"{sys.executable}" -c "$COUNT" "{db}" || exit 92\n'
    )
    done = _on_a_small_disk(
        disk, "8m", commands, {**os.environ, "CHECKPOINTS": CHECKPOINTS, "COUNT": COUNT}
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    first, second = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    error = first["error"]
    assert error is not None and first["committed"] > 0, first
    assert error.startswith(f"The disk holding the lakehouse file {db} is full"), error
    assert "FATAL Error: Failed to create checkpoint" in error and "GRID_DUCKDB_PATH" in error
    # Closing the connections rolls them back on a database DuckDB has invalidated: that
    # failure is not logged again as the pool's "Exception during reset" with a traceback.
    assert "Traceback" not in done.stderr and "invalidated" not in done.stderr, done.stderr
    # Every committed batch is there; the one whose commit failed may or may not be.
    assert second["stored"] in (first["committed"], first["committed"] + 50000), (first, second)


STAGE = """
import json, os, sys
from decimal import Decimal
import pyarrow as pa
from grid_assets.lakehouse.staging import StagingDiskFullError, VolumeStaging
from grid_assets.models.silver import OrderItem

class NoUploads:  # the batch never gets as far as the upload
    def upload(self, *args, **kwargs):
        raise AssertionError("uploaded a batch that could not be written")

n = 200_000
rows = pa.table({
    "order_id": [os.urandom(12).hex() for _ in range(n)],
    "line_number": pa.array(range(n), pa.int32()),
    "product_id": [os.urandom(12).hex() for _ in range(n)],
    "quantity": pa.array([1] * n, pa.int32()),
    "unit_price": pa.array([Decimal("1.5")] * n, pa.decimal128(18, 6)),
    "discount": pa.array([Decimal(0)] * n, pa.decimal128(18, 6)),
    "event_id": [os.urandom(12).hex() for _ in range(n)],
})
stager = VolumeStaging("/Volumes/main/grid_bronze/grid_staging", NoUploads(), "run-full")
table = OrderItem.__table__
try:
    with stager.stage(None, rows, table, list(table.c)):
        raise AssertionError("staged a batch on a full disk")
except StagingDiskFullError as exc:
    left = sorted(p.name for p in exc.path.parent.iterdir())
    print(json.dumps({"error": str(exc), "folder": str(exc.path.parent), "left": left}))
"""


def test_a_full_staging_folder_is_named_and_leaves_no_partial_file(tmp_path: Path) -> None:
    """Production writes each batch as a Parquet file in a local temporary folder before
    uploading it to the volume: with that disk full, the error says where, how much room is
    left and what to do (TMPDIR), and the partial file is removed."""
    disk = tmp_path / "tmp"
    disk.mkdir()
    commands = f'"{sys.executable}" -c "$STAGE" || exit 91\n'
    done = _on_a_small_disk(
        disk, "2m", commands, {**os.environ, "STAGE": STAGE, "TMPDIR": str(disk)}
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["folder"].startswith(f"{disk}/grid-staging-"), found
    assert found["left"] == [], found  # the partial Parquet file is gone
    error = found["error"]
    assert error.startswith("No space left to stage a batch of 200,000 rows for silver.order_items")
    assert found["folder"] in error and "MiB free there now" in error and "TMPDIR" in error


HOLD_THEN_FILL = (
    AS_GRID_RUN
    + """
filler = Path(sys.argv[2])
with held_open(lakehouse.engine):  # as `grid run` holds the file for its run
    with lakehouse.begin() as conn:
        # No checkpoint at the commits: the log is merged into the file when it closes.
        conn.exec_driver_sql("SET checkpoint_threshold = '1GB'")
        conn.exec_driver_sql("CREATE TABLE t (s VARCHAR)")
    for i in range(100):
        with lakehouse.begin() as conn:
            conn.exec_driver_sql(
                f"INSERT INTO t SELECT md5((range + {i * 1000})::VARCHAR) FROM range(1000)"
            )
    with filler.open("wb") as out:  # then another writer fills the disk
        try:
            while True:
                out.write(bytes(65536))
                out.flush()
        except OSError:
            pass
"""
)


def test_a_log_left_unmerged_for_lack_of_room_is_reported(tmp_path: Path) -> None:
    """Every step committed, but the disk filled before the file was closed: DuckDB cannot
    checkpoint its log into the file and says nothing. The run's hold says it, once, and the
    next process (the disk freed) finds every row."""
    disk = tmp_path / "disk"
    disk.mkdir()
    db, filler = disk / "lake.duckdb", disk / "filler"
    commands = (
        f'"{sys.executable}" -c "$HOLD" "{db}" "{filler}" || exit 91\n'
        f'[ -s "{db}.wal" ] || exit 92\n'
        f'rm "{filler}"\n'
        f'"{sys.executable}" -c "$COUNT" "{db}" || exit 93\n'
    )
    done = _on_a_small_disk(
        disk, "32m", commands, {**os.environ, "HOLD": HOLD_THEN_FILL, "COUNT": COUNT}
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1, done.stderr[-3000:]
    assert (
        warnings[0].startswith(f"WARNING The lakehouse file {db} was closed with ")
        and f"MiB still in its write-ahead log ({db}.wal)" in warnings[0]
    )
    assert "lack of room" in warnings[0] and "free space on that disk" in warnings[0]
    assert json.loads(done.stdout.splitlines()[-1]) == {"stored": 100_000}
