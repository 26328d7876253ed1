"""What the production write path costs, step by step: statements sent, files staged, seconds.

`WriteMeter` listens on a lakehouse's engine (`before_cursor_execute`: one count per statement
the code sends; an `executemany` counts one per parameter set, which is what the Databricks
connector sends) and reads the stager's `VolumeStaging.stats`. The pool's liveness pings
(`pool_pre_ping`: a `SELECT 1` each time a pooled connection is taken) go to the driver without
passing the cursor events, so they are counted apart, through the dialect's `do_ping`.

`metered_run` runs the steps of one pipeline run (DDL, Bronze, Silver, Gold: the calls the assets
make) under a meter. The live tests (`test_databricks_live`) run it on a workspace and print the
table; `test_write_meter` runs the same code offline on the recording warehouse, where every
statement and file is known, so the counting is proven without a workspace.

`step_seconds` reads each step's wall time from a Dagster run's DEBUG log (`grid run --log-level
DEBUG`, a process of its own, where no listener of the test's can count).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from grid_assets.config import derived_staging_volume
from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.gold import GOLD_TABLES, rebuild
from grid_assets.etl.silver import apply_new_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.databricks import DatabricksBackend, databricks_engine
from grid_assets.lakehouse.staging import StagingStats, VolumeStaging
from grid_assets_tests.databricks_fakes import warehouse_config
from grid_bench.recording import MemoryVolume, RecordingWarehouse

STEPS = ("ddl", "bronze", "silver", "gold")
# Dagster's STEP_SUCCESS message; the duration is dagster_shared's format_duration: 8.3ms, 533ms,
# 2.1s, 4m52s, 1h4m.
_FINISHED = re.compile(r'Finished execution of step "(?P<step>[^"]+)" in (?P<took>[0-9.hms]+)\.')
_PART = re.compile(r"([0-9.]+)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class StepCost:
    step: str
    statements: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    pings: int = 0


@dataclass
class WriteMeter:
    """Counts, per named step, what `engine` sent and what `stats` recorded as staged."""

    engine: Engine
    stats: StagingStats | None = None
    steps: list[StepCost] = field(default_factory=list)
    sent: int = 0
    pings: int = 0
    _shadowed_ping: Any = field(default=None, repr=False)

    @classmethod
    def of(cls, lakehouse: Lakehouse) -> WriteMeter:
        stager = getattr(lakehouse.backend, "stager", None)
        return cls(lakehouse.engine, stager.stats if isinstance(stager, VolumeStaging) else None)

    def __enter__(self) -> WriteMeter:
        event.listen(self.engine, "before_cursor_execute", self._count)
        dialect: Any = self.engine.dialect
        ping = dialect.do_ping

        def counted_ping(dbapi_connection: Any) -> bool:
            self.pings += 1
            return ping(dbapi_connection)

        # On this dialect object only (the engine's), and only until the block ends.
        self._shadowed_ping = vars(dialect).get("do_ping")
        dialect.do_ping = counted_ping
        return self

    def __exit__(self, *exc_info: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)
        dialect: Any = self.engine.dialect
        if self._shadowed_ping is not None:
            dialect.do_ping = self._shadowed_ping
        else:
            del dialect.do_ping

    def _count(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        self.sent += len(parameters) if executemany else 1

    def _staged(self) -> tuple[int, int]:
        return (self.stats.files, self.stats.bytes) if self.stats is not None else (0, 0)

    @contextmanager
    def step(self, name: str) -> Iterator[StepCost]:
        """Everything sent and staged inside the block is charged to `name`."""
        cost = StepCost(name)
        sent, pings, (files, size) = self.sent, self.pings, self._staged()
        started = time.perf_counter()
        try:
            yield cost
        finally:
            cost.seconds = time.perf_counter() - started
            cost.statements, cost.pings = self.sent - sent, self.pings - pings
            now_files, now_size = self._staged()
            cost.files, cost.bytes = now_files - files, now_size - size
            self.steps.append(cost)

    def total(self) -> StepCost:
        return StepCost(
            "total",
            sum(s.statements for s in self.steps),
            sum(s.files for s in self.steps),
            sum(s.bytes for s in self.steps),
            sum(s.seconds for s in self.steps),
            sum(s.pings for s in self.steps),
        )

    def render(self, title: str) -> str:
        lines = [title, "", "| step | statements | pings | files staged | bytes staged | s |"]
        lines.append("|---|---:|---:|---:|---:|---:|")
        for s in [*self.steps, self.total()]:
            lines.append(
                f"| {s.step} | {s.statements:,} | {s.pings:,} | {s.files:,} | {s.bytes:,} "
                f"| {s.seconds:.1f} |"
            )
        return "\n".join(lines)


def metered_run(lakehouse: Lakehouse, landing: Path, run_id: str) -> WriteMeter:
    """One pipeline run on `landing` (what the assets call, in their order), metered per step."""
    steps = {
        "ddl": lakehouse.create_tables,
        "bronze": lambda: ingest_landing(lakehouse, landing, run_id=run_id),
        "silver": lambda: apply_new_events(lakehouse, run_id=run_id),
        "gold": lambda: [rebuild(lakehouse, name, run_id) for name in GOLD_TABLES],
    }
    with WriteMeter.of(lakehouse) as meter:
        for name in STEPS:
            with meter.step(name):
                steps[name]()
    return meter


@dataclass
class Recording:
    """The production write path over a recording warehouse and an in-memory volume."""

    lakehouse: Lakehouse
    warehouse: RecordingWarehouse
    volume: MemoryVolume
    run_id: str


def recording_lakehouse(prefix: str = "grid_") -> Recording:
    volume = MemoryVolume()
    warehouse = RecordingWarehouse(volume)
    config = warehouse_config(f"adb-{uuid.uuid4().hex[:10]}.azuredatabricks.net", "dapi" + "0" * 32)
    engine = databricks_engine(config, dbapi=warehouse.module())
    run_id = f"metered-{uuid.uuid4().hex[:8]}"
    path = derived_staging_volume("main", prefix)
    stager = VolumeStaging(path, volume, run_id=run_id)
    backend = DatabricksBackend(engine, stager, create_volume=".".join(path.split("/")[2:]))
    lakehouse = Lakehouse(backend, prefix)
    return Recording(lakehouse, warehouse, volume, run_id)


def step_seconds(log: str) -> dict[str, float]:
    """Each finished step's wall time, in seconds, from a Dagster run's DEBUG log."""
    return {
        match["step"]: sum(float(n) * _UNIT_S[unit] for n, unit in _PART.findall(match["took"]))
        for match in _FINISHED.finditer(log)
    }


def render_step_seconds(seconds: dict[str, float], title: str) -> str:
    lines = [title, "", "| step | s |", "|---|---:|"]
    lines += [f"| {step} | {took:.1f} |" for step, took in seconds.items()]
    lines.append(f"| total (steps) | {sum(seconds.values()):.1f} |")
    return "\n".join(lines)
