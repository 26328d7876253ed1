"""A crash at any moment, followed by a re-run, gives the same tables as one uninterrupted run.

The input is a small landing folder (three files in name order, the second gzipped, made of
generated GRID traffic plus hand-placed duplicates, `event_id` conflicts and invalid lines) read
in small batches, so that each file spans several Bronze batches and Bronze several Silver
batches. Batch sizes and crashes come from `crash_sitecustomize.py`, installed as the
`sitecustomize` of every `grid run` process (see that file): nothing in the product changes.

1. One uninterrupted `grid run` (the real console script) builds the reference lakehouse and
   counts K, the commits it makes to the lakehouse.
2. For every N in 1..K: a run killed with SIGKILL at its N-th commit (before that commit lands),
   then a plain re-run; and for every N the same with the N-th commit failing as on a full disk
   (`OSError(ENOSPC)`). Every table must then equal the reference, and the
   re-run must exit as the reference did (0, or 1 when a blocking check fails).
3. Runs killed at random moments (seeded): the real console script, and forked runs.

Comparison, table by table over every table of `grid_assets.models.metadata` (tables added later
are included): the pipeline's own run timestamps (every instant column but those taken from
events: `occurred_at`, `placed_at`, and `updated_at` of Silver's products and orders), `run_id`
and `ingest_seq` are left out; the pipeline's own `pipeline.*` events are dropped from
`bronze.events`; rows are compared as sorted lists. Arrival order is compared separately (GRID
event ids by `ingest_seq`), and a cursor is compared as the last GRID event it covers.

The crash points need about 3K runs (4K with every fault): each is a child forked from a
server that imported the pipeline once (`grid_fork_server.py`, which runs `grid_assets.cli.main`
as the console script does), two at a time. The fixture first checks that a forked run makes
the same commits and builds the same tables as the real console script.
"""

from __future__ import annotations

import bisect
import contextlib
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import DateTime, Table, create_engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from grid_assets.models import metadata
from grid_sim import generate_traffic

REPO_ROOT = Path(__file__).resolve().parents[1]
HOOK_SOURCE = Path(__file__).with_name("crash_sitecustomize.py")
GRID = Path(sys.executable).parent / "grid"
SEED = 20261130
GENERATED_LINES = 240
BATCH_LINES = 50
BATCH_EVENTS = 120
LANES = 2  # runs at a time: the machine has two cores
RANDOM_FORKED_KILLS = 2
RANDOM_EXEC_KILLS = 2
RUN_TIMEOUT_S = 240

# Instants that come from events (kept); every other instant is a timestamp of a run (left out).
EVENT_INSTANTS = {"occurred_at", "placed_at"}
EVENT_UPDATED_AT = {"silver.products", "silver.orders"}
RUN_COLUMNS = {"run_id"}
PIPELINE_PREFIX = "pipeline."


# -- the input ---------------------------------------------------------------------------------


def _valid(line: str, event_type: str) -> dict | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if (
        isinstance(event, dict)
        and event.get("event_type") == event_type
        and isinstance(event.get("event_id"), str)
        and event["event_id"]
        and isinstance(event.get("payload"), dict)
        and str(event.get("occurred_at", "")).endswith(("Z", "+02:00", "-05:00", "+00:00"))
    ):
        return event
    return None


def _pick(lines: list[str], event_type: str, start: int = 0) -> tuple[int, dict]:
    for index in range(start, len(lines)):
        event = _valid(lines[index], event_type)
        if event is not None:
            return index, event
    raise AssertionError(f"no valid {event_type} after line {start}")


def _conflicting_placement(event: dict) -> str:
    """The same event_id and type, other items: a different event reusing the id."""
    other = json.loads(json.dumps(event))
    other["payload"]["items"][0]["quantity"] += 3
    return json.dumps(other, separators=(",", ":"))


def build_landing(landing: Path, scratch: Path) -> None:
    """Three files of generated traffic plus known irregularities, each file two batches."""
    generate_traffic(scratch, GENERATED_LINES, SEED, n_files=1, bad_share=0.04, gzip_every=0)
    lines = (scratch / "events-0001.ndjson").read_text(encoding="utf-8").splitlines()
    third = len(lines) // 3
    first, second, last = lines[:third], lines[third : 2 * third], lines[2 * third :]

    # File 1: a conflict, in its second batch, with an order placed in its first.
    _, placed_1 = _pick(first, "order.placed")
    first.append(_conflicting_placement(placed_1))
    # File 2 (gzipped): re-sent events of file 1, one re-serialized, one changed, bad lines.
    _, paid_1 = _pick(first, "order.paid")
    resent = dict(reversed(list(paid_1.items())))
    second.insert(5, json.dumps(resent, separators=(", ", ": ")))  # duplicate
    second.insert(30, json.dumps({**paid_1, "source": "grid-replay"}))  # conflict
    second.insert(50, '{"event_id": "torn-off')  # not JSON
    second.insert(
        60,
        json.dumps(
            {
                "event_id": "crash-test-no-offset",
                "event_type": "order.paid",
                "occurred_at": "2026-01-05T10:00:00",
                "payload": {"order_id": "O-0000001"},
            }
        ),
    )
    # File 3: a placement of file 2 re-sent byte for byte and re-sent changed; one of its own
    # events re-sent in its second batch; more bad lines.
    k, placed_2 = _pick(second, "order.placed", 10)
    last.insert(3, second[k])
    last.insert(45, _conflicting_placement(placed_2))
    j, _ = _pick(last, "order.paid", 5)
    last.append(last[j])
    last.insert(20, "[1, 2, 3]")
    last.insert(21, "")
    last.insert(
        70,
        json.dumps(
            {
                "event_id": "crash-test-late-heartbeat",
                "event_type": "system.heartbeat",
                "occurred_at": "2026-01-05T00:30:00+00:00",
                "source": "grid-monitor",
                "payload": {"seq": 0},
            }
        ),
    )

    landing.mkdir(parents=True, exist_ok=True)
    first_text, second_text, last_text = ("\n".join(b) + "\n" for b in (first, second, last))
    (landing / "events-0001.ndjson").write_text(first_text, encoding="utf-8")
    with gzip.GzipFile(landing / "events-0002.ndjson.gz", "wb", mtime=0) as handle:
        handle.write(second_text.encode("utf-8"))
    (landing / "events-0003.jsonl").write_text(last_text, encoding="utf-8")


# -- comparing lakehouses ------------------------------------------------------------------------


def _compared_columns(table: Table) -> list[str]:
    kept = []
    for column in table.c:
        name = column.name
        if name in RUN_COLUMNS or "ingest_seq" in name:
            continue
        if isinstance(column.type, DateTime) and not (
            name in EVENT_INSTANTS or (name == "updated_at" and table.fullname in EVENT_UPDATED_AT)
        ):
            continue
        kept.append(name)
    return kept


def _short(rows: list[tuple], limit: int = 160) -> str:
    text = repr(rows[0]) if rows else "-"
    return text if len(text) <= limit else text[:limit] + "...)"


def _sort_key(row: tuple) -> tuple:
    return tuple((value is None, type(value).__name__, str(value)) for value in row)


@dataclass
class Snapshot:
    tables: dict[str, list[tuple]]
    arrival_order: list[str]  # GRID event ids by ingest_seq

    def differences(self, other: Snapshot) -> dict[str, str]:
        """Table name -> a short account of how `other` differs from this snapshot."""
        found: dict[str, str] = {}
        for name in sorted(set(self.tables) | set(other.tables)):
            mine, theirs = self.tables.get(name, []), other.tables.get(name, [])
            if mine != theirs:
                missing = [r for r in mine if r not in theirs]
                extra = [r for r in theirs if r not in mine]
                found[name] = (
                    f"{len(mine)} rows in the reference, {len(theirs)} here; "
                    f"{len(missing)} missing (e.g. {_short(missing)}), "
                    f"{len(extra)} extra (e.g. {_short(extra)})"
                )
        mine, theirs = self.arrival_order, other.arrival_order
        if mine != theirs:
            pairs = zip(mine, theirs, strict=False)
            at = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(mine), len(theirs)))
            found["bronze.events arrival order"] = (
                f"{len(mine)} GRID events in the reference, {len(theirs)} here; "
                f"first difference at position {at}: {mine[at : at + 1]} / {theirs[at : at + 1]}"
            )
        return found


def snapshot(db_path: Path) -> Snapshot:
    engine = create_engine(
        f"duckdb:///{db_path}", poolclass=NullPool, connect_args={"read_only": True}
    )
    events = metadata.tables["bronze.events"]
    try:
        with engine.connect() as conn:
            grid_events = conn.execute(
                select(events.c.ingest_seq, events.c.event_id)
                .where(~events.c.event_type.startswith(PIPELINE_PREFIX))
                .order_by(events.c.ingest_seq)
            ).all()
            seqs = [seq for seq, _ in grid_events]
            ids = [event_id for _, event_id in grid_events]

            def covered(seq: int | None) -> str | None:
                """The last GRID event at or before an ingest_seq (None: none)."""
                if seq is None:
                    return None
                at = bisect.bisect_right(seqs, seq)
                return ids[at - 1] if at else None

            tables: dict[str, list[tuple]] = {}
            for table in metadata.sorted_tables:
                columns = _compared_columns(table)
                cursors = [c.name for c in table.c if c.name.startswith("last_ingest_seq")]
                query = select(*(table.c[c] for c in columns + cursors))
                if table is events:
                    query = query.where(~events.c.event_type.startswith(PIPELINE_PREFIX))
                try:
                    rows = conn.execute(query).all()
                except DBAPIError as exc:
                    if "does not exist" not in str(exc):
                        raise
                    rows = []  # not created (yet): no rows
                shaped = [
                    tuple(row[: len(columns)]) + tuple(covered(v) for v in row[len(columns) :])
                    for row in rows
                ]
                tables[table.fullname] = sorted(shaped, key=_sort_key)
    finally:
        engine.dispose()
    return Snapshot(tables, ids)


# -- running `grid run` --------------------------------------------------------------------------


@dataclass
class Outcome:
    returncode: int
    elapsed: float
    log: Path
    pid: int = 0

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no output)"
        return "\n".join(text[-lines:])


class ForkServer:
    """Client of `grid_fork_server`: starts forked `grid` runs and reports their exit."""

    def __init__(self, env: dict[str, str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "grid_assets_tests.grid_fork_server"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()
        self._ids = iter(range(1, 1_000_000))
        self._started: dict[int, Future[int]] = {}
        self._exited: dict[int, Future[int]] = {}
        self.ready: Future[dict] = Future()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            message = json.loads(line)
            event = message["event"]
            if event == "ready":
                self.ready.set_result(message)
                continue
            with self._lock:
                waiting = (self._started if event == "started" else self._exited)[message["id"]]
            waiting.set_result(message["pid"] if event == "started" else message["code"])
        if not self.ready.done():
            self.ready.set_exception(RuntimeError("the fork server exited before it was ready"))
        with self._lock:
            for future in [*self._started.values(), *self._exited.values()]:
                if not future.done():
                    future.set_exception(RuntimeError("the fork server exited"))

    def start(self, env: dict[str, str], log: Path) -> tuple[int, Future[int]]:
        with self._lock:
            request_id = next(self._ids)
            started, exited = Future(), Future()
            self._started[request_id], self._exited[request_id] = started, exited
            assert self._process.stdin is not None
            request = {"id": request_id, "env": env, "args": ["run", "--no-show-gold"]}
            self._process.stdin.write(json.dumps({**request, "log": str(log)}) + "\n")
            self._process.stdin.flush()
        return started.result(timeout=60), exited

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Runs:
    """`grid run` on the test's landing folder, into a given DuckDB file, with the test hooks."""

    def __init__(self, workdir: Path, landing: Path) -> None:
        self.workdir = workdir
        hook_dir = workdir / "hooks"
        hook_dir.mkdir()
        shutil.copyfile(HOOK_SOURCE, hook_dir / "sitecustomize.py")
        self.status_file = workdir / "hook-status.json"
        inherited = os.environ.get("PYTHONPATH")
        self.base_env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("DATABRICKS_", "GRID_", "DAGSTER_"))
                and k != "PYTEST_CURRENT_TEST"
            },
            "PYTHONPATH": os.pathsep.join([str(hook_dir), *([inherited] if inherited else [])]),
            "GRID_ENV": "local",
            "GRID_LANDING_DIR": str(landing),
            "GRID_DUCKDB_PATH": str(workdir / "unused.duckdb"),
            "DAGSTER_HOME": str(workdir / "dagster_home"),
            "GRID_TEST_BATCH_LINES": str(BATCH_LINES),
            "GRID_TEST_BATCH_EVENTS": str(BATCH_EVENTS),
            "GRID_TEST_HOOK_STATUS": str(self.status_file),
            "COLUMNS": "200",
        }
        (workdir / "dagster_home").mkdir()
        self._server: ForkServer | None = None

    def env(self, db: Path, mode: str | None = None, at: int = 0, count_file: Path | None = None):
        env = {**self.base_env, "GRID_DUCKDB_PATH": str(db)}
        if mode is not None:
            env.update(GRID_TEST_CRASH_MODE=mode, GRID_TEST_CRASH_AT=str(at))
        if count_file is not None:
            env["GRID_TEST_COMMIT_COUNT_FILE"] = str(count_file)
        return env

    def start_server(self) -> ForkServer:
        self._server = ForkServer(self.base_env)
        return self._server

    def forked(self, env: dict[str, str], log: Path, kill_after: float | None = None) -> Outcome:
        assert self._server is not None
        started = time.monotonic()
        pid, exited = self._server.start(env, log)
        if kill_after is not None:
            try:
                exited.result(timeout=kill_after)
            except TimeoutError:
                _kill(pid)
        code = exited.result(timeout=RUN_TIMEOUT_S)
        return Outcome(code, time.monotonic() - started, log, pid)

    def executed(self, env: dict[str, str], log: Path, kill_after: float | None = None) -> Outcome:
        """The real console script, `grid run`, as a subprocess."""
        started = time.monotonic()
        with log.open("w") as out:
            process = subprocess.Popen(
                [str(GRID), "run", "--no-show-gold"],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                process.wait(timeout=kill_after if kill_after is not None else RUN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()  # SIGKILL
                process.wait(timeout=60)
        return Outcome(process.returncode, time.monotonic() - started, log, process.pid)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


@dataclass
class Reference:
    runs: Runs
    snapshot: Snapshot
    returncode: int
    commits: int  # K
    elapsed: float
    forked_elapsed: float


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    workdir = tmp_path_factory.mktemp("crash")
    landing = workdir / "landing"
    build_landing(landing, workdir / "generated")
    runs = Runs(workdir, landing)
    try:
        server = runs.start_server()  # its imports overlap the reference run
        db, count = workdir / "reference.duckdb", workdir / "reference.commits"
        ref = runs.executed(runs.env(db, "count", count_file=count), workdir / "reference.log")
        assert ref.returncode in (0, 1), f"reference run exited {ref.returncode}:\n{ref.tail()}"
        status = json.loads(runs.status_file.read_text())
        assert status.get("batch_lines") == BATCH_LINES, f"batch size not set: {status}"
        assert status.get("batch_events") == BATCH_EVENTS, f"batch size not set: {status}"
        commits = int(count.read_text())
        reference_snapshot = snapshot(db)
        assert reference_snapshot.tables["bronze.rejected_events"], "no rejected lines in input"

        ready = server.ready.result(timeout=120)
        assert ready["threads"] == 1, f"the fork server runs threads: {ready}"
        # A forked run is a faithful `grid run`: same exit, same commits, same tables.
        forked_db, forked_count = workdir / "forked.duckdb", workdir / "forked.commits"
        forked = runs.forked(
            runs.env(forked_db, "count", count_file=forked_count), workdir / "forked.log"
        )
        assert forked.returncode == ref.returncode, forked.tail()
        assert int(forked_count.read_text()) == commits
        assert reference_snapshot.differences(snapshot(forked_db)) == {}
        yield Reference(
            runs, reference_snapshot, ref.returncode, commits, ref.elapsed, forked.elapsed
        )
    finally:
        runs.close()


@dataclass
class Failure:
    label: str
    crashed_exit: int
    problems: dict[str, str]  # table (or "exit") -> what differs

    def summary(self) -> str:
        differing = ", ".join(k for k in self.problems if k != "logs")
        return f"{self.label} (crashed run exited {self.crashed_exit}): {differing}"

    def details(self) -> str:
        return f"{self.label}:\n" + "\n".join(f"    {k}: {v}" for k, v in self.problems.items())


def _scenario(
    ref: Reference, label: str, crash: Callable[[Path, Path], Outcome], expect: int | None = None
) -> Failure | None:
    """`crash(db, log)` runs into a fresh DuckDB file, then a plain re-run on that file must leave
    every table as the uninterrupted run did. None if so, else what differs. `expect`: the exit
    status the crashed run must have (SIGKILL: the hook fired)."""
    runs = ref.runs
    db = runs.workdir / f"{label}.duckdb"
    crashed = crash(db, runs.workdir / f"{label}-crash.log")
    problems: dict[str, str] = {}
    if expect is not None and crashed.returncode != expect:
        problems["crashed run"] = (
            f"exited {crashed.returncode}, not {expect}: the hook did not fire"
        )
    rerun = runs.forked(runs.env(db), runs.workdir / f"{label}-rerun.log")
    if rerun.returncode != ref.returncode:
        problems["re-run exit"] = (
            f"{rerun.returncode}, the uninterrupted run's {ref.returncode}; its output ends:\n"
            + rerun.tail(12)
        )
    else:
        problems.update(ref.snapshot.differences(snapshot(db)))
    db.unlink(missing_ok=True)
    db.with_name(db.name + ".wal").unlink(missing_ok=True)
    if not problems:
        crashed.log.unlink(missing_ok=True)
        rerun.log.unlink(missing_ok=True)
        return None
    problems["logs"] = f"{crashed.log}, {rerun.log}"
    return Failure(label, crashed.returncode, problems)


def _sweep(scenarios: list[Callable[[], Failure | None]]) -> list[Failure]:
    """Run the scenarios, LANES at a time; their failures, in the scenarios' order."""
    with ThreadPoolExecutor(max_workers=LANES) as pool:
        results = [pool.submit(scenario) for scenario in scenarios]
        return [failure for future in results if (failure := future.result()) is not None]


def _report(failures: list[Failure], what: str, total: int, detailed: int = 3) -> None:
    """Fail naming every failing scenario and what differed; details for the first few."""
    if failures:
        pytest.fail(
            f"{len(failures)} of {total} {what} left the lakehouse unlike an uninterrupted run "
            "after a re-run:\n"
            + "\n".join(f.summary() for f in failures)
            + "\n\nfirst differences:\n"
            + "\n".join(f.details() for f in failures[:detailed]),
            pytrace=False,
        )


def _crash_at(ref: Reference, mode: str, n: int, db: Path, log: Path) -> Outcome:
    return ref.runs.forked(ref.runs.env(db, mode, n), log)


def test_kill_at_every_commit_then_rerun(reference: Reference) -> None:
    k = reference.commits
    failures = _sweep(
        [
            partial(
                _scenario,
                reference,
                f"kill-at-commit-{n:03d}-of-{k}",
                partial(_crash_at, reference, "kill", n),
                -signal.SIGKILL,
            )
            for n in range(1, k + 1)
        ]
    )
    _report(failures, f"runs killed at their commit N (N = 1..K, K={k})", k)


def test_full_disk_at_every_commit_then_rerun(reference: Reference) -> None:
    k = reference.commits
    points = range(1, k + 1)
    failures = _sweep(
        [
            partial(
                _scenario,
                reference,
                f"full-disk-at-commit-{n:03d}-of-{k}",
                partial(_crash_at, reference, "fault", n),
            )
            for n in points
        ]
    )
    _report(
        failures,
        f"runs whose commit N failed with ENOSPC (N = {', '.join(map(str, points))}; K={k})",
        len(points),
    )


def _killed_after(ref: Reference, forked: bool, delay: float, db: Path, log: Path) -> Outcome:
    run = ref.runs.forked if forked else ref.runs.executed
    return run(ref.runs.env(db), log, kill_after=delay)


def test_kill_at_random_moments_then_rerun(reference: Reference) -> None:
    rng = random.Random(SEED)
    scenarios = []
    for forked, count, duration in (
        (False, RANDOM_EXEC_KILLS, reference.elapsed),
        (True, RANDOM_FORKED_KILLS, reference.forked_elapsed),
    ):
        for _ in range(count):
            delay = round(rng.uniform(0.2, 1.0) * duration, 2)
            label = f"{'forked' if forked else 'grid'}-killed-after-{delay}s"
            scenarios.append(
                partial(
                    _scenario, reference, label, partial(_killed_after, reference, forked, delay)
                )
            )
    _report(_sweep(scenarios), "runs killed at a random moment", len(scenarios))
