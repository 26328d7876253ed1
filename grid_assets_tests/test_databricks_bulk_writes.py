"""Bulk writes on Databricks: one file and one statement per batch in production; on the row
path (a `Lakehouse` built without a staging volume, kept for comparison), multi-row VALUES under
the 256-parameter cap; never executemany.

The engine is the production one (`databricks_engine`: Databricks dialect, pool, events)
over a recording fake DBAPI module instead of `databricks.sql`, so every statement the write path
would send to the warehouse is visible without one.
"""

from __future__ import annotations

import math
import types
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from databricks.sql import exc as dbx

from grid_assets.config import DEFAULT_CONNECT_TIMEOUT_S
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.databricks import (
    MAX_PARAMS_PER_STATEMENT,
    RETRY_ATTEMPTS,
    DatabricksBackend,
    databricks_engine,
    insert_chunked,
)
from grid_assets.lakehouse.staging import VolumeStaging
from grid_assets.models.bronze import Event
from grid_assets.queries.silver import unprocessed_events
from grid_assets.transform.silver_rows import BRONZE_EVENTS, build_silver_batch
from grid_assets_tests.databricks_fakes import FakeConnection, warehouse_config
from grid_bench.recording import MemoryVolume

EVENTS = Event.__table__
ROWS = 10_000
TOKEN = "dapi" + "5" * 32
_INSTANT = pa.timestamp("us", tz="UTC")


@dataclass
class Recorder:
    connects: list[dict[str, Any]] = field(default_factory=list)
    executes: list[tuple[str, Any]] = field(default_factory=list)
    executemanys: list[tuple[str, Any]] = field(default_factory=list)
    arrow: pa.Table | None = None  # what fetchall_arrow answers


def recording_dbapi(recorder: Recorder) -> types.ModuleType:
    """A PEP 249 module that accepts everything and records what it is asked to run."""

    class Cursor:
        rowcount = -1
        arraysize = 1

        def execute(self, operation: str, parameters: Any = None) -> None:
            recorder.executes.append((operation, parameters))

        def executemany(self, operation: str, seq_of_parameters: Any) -> None:
            recorder.executemanys.append((operation, list(seq_of_parameters)))

        def fetchall(self) -> list:
            return []

        def fetchall_arrow(self) -> pa.Table | None:
            return recorder.arrow

        @property
        def description(self) -> list[tuple] | None:
            # Rows to fetch (a SELECT) once an Arrow answer is set; none otherwise.
            if recorder.arrow is None:
                return None
            return [(name, "string", *[None] * 5) for name in recorder.arrow.column_names]

        def fetchone(self) -> None:
            return None

        def close(self) -> None:
            pass

    class Connection(FakeConnection):
        def cursor(self) -> Cursor:
            return Cursor()

    def connect(*args: Any, **kwargs: Any) -> Connection:
        recorder.connects.append(kwargs)
        return Connection()

    module = types.ModuleType("recording_databricks_sql")
    module.connect = connect  # type: ignore[attr-defined]
    module.paramstyle = "named"  # type: ignore[attr-defined]
    module.apilevel = "2.0"  # type: ignore[attr-defined]
    module.threadsafety = 1  # type: ignore[attr-defined]
    for name in ("Error", "Warning", "InterfaceError", "DatabaseError", "OperationalError"):
        setattr(module, name, getattr(dbx, name))
    return module


def events_rows(count: int) -> pa.Table:
    """`count` rows shaped like bronze.events: every column of the model, typed as Bronze stages
    them (derived from the model, so a renamed or added column is picked up)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    special: dict[str, pa.Array] = {
        "event_id": pa.array([f"evt-{i:06d}" for i in range(count)], pa.string()),
        "event_type": pa.array(
            ["order.placed" if i % 3 else "product.created" for i in range(count)], pa.string()
        ),
        "occurred_at": pa.array([start + timedelta(seconds=i) for i in range(count)], _INSTANT),
        "ingested_at": pa.array([now] * count, _INSTANT),
        "payload": pa.array([f'{{"order_id": "o-{i}", "items": []}}' for i in range(count)]),
        "source_file": pa.array([f"events-{i // 5000:03d}.ndjson" for i in range(count)]),
        "line_number": pa.array([i % 5000 + 1 for i in range(count)], pa.int32()),
        "run_id": pa.array([str(uuid.UUID(int=7))] * count, pa.string()),
    }
    columns: dict[str, pa.Array] = {}
    for column in EVENTS.c:
        if column.name in special:
            columns[column.name] = special[column.name]
            continue
        python_type = column.type.python_type
        if python_type is int:
            columns[column.name] = pa.array(range(1, count + 1), pa.int64())
        elif python_type is datetime:
            columns[column.name] = pa.array([now] * count, _INSTANT)
        elif python_type is Decimal:
            columns[column.name] = pa.array([Decimal(i) / 100 for i in range(count)])
        elif python_type is bool:
            columns[column.name] = pa.array([i % 2 == 0 for i in range(count)])
        else:
            columns[column.name] = pa.array([f"{column.name}-{i:08x}" for i in range(count)])
    return pa.table(columns)


@pytest.fixture
def recorded() -> tuple[Lakehouse, Recorder]:
    recorder = Recorder()
    engine = databricks_engine(
        warehouse_config(f"adb-{uuid.uuid4().hex[:10]}.azuredatabricks.net", TOKEN),
        dbapi=recording_dbapi(recorder),
    )
    assert engine.dialect.name == "databricks"
    return Lakehouse(DatabricksBackend(engine), schema_prefix="grid_"), recorder


def inserts(recorder: Recorder) -> list[tuple[str, Any]]:
    return [(sql, params) for sql, params in recorder.executes if sql.startswith("INSERT")]


def test_ten_thousand_events_in_capped_multi_row_statements(
    recorded: tuple[Lakehouse, Recorder],
) -> None:
    lakehouse, recorder = recorded
    rows = events_rows(ROWS)
    assert set(rows.column_names) == {c.name for c in EVENTS.c}
    ncols = rows.num_columns
    with lakehouse.connect() as conn:
        recorder.executes.clear()  # the pool's pre-ping, if any
        written = insert_chunked(conn, EVENTS, rows)  # the row path that files replaced

    assert written == ROWS
    assert recorder.executemanys == []
    per_statement = MAX_PARAMS_PER_STATEMENT // ncols
    assert len(recorder.executes) == math.ceil(ROWS / per_statement)
    if ncols == 11:  # bronze.events today: 256 // 11 = 23 rows per statement
        assert len(recorder.executes) == 435
    assert len(inserts(recorder)) == len(recorder.executes)
    for sql, params in recorder.executes:
        assert isinstance(params, dict)
        assert len(params) <= MAX_PARAMS_PER_STATEMENT
        assert sql.startswith("INSERT INTO grid_bronze.events")
        assert sql.count("(:`event_id_m") == len(params) // ncols
    # Every row went out exactly once, in order.
    sent = [
        params[f"event_id_m{i}"]
        for _, params in recorder.executes
        for i in range(len(params) // ncols)
    ]
    assert sent == rows.column("event_id").to_pylist()


def test_the_connection_gets_the_bounded_settings(recorded: tuple[Lakehouse, Recorder]) -> None:
    lakehouse, recorder = recorded
    with lakehouse.connect():
        pass
    (kwargs,) = recorder.connects
    assert kwargs["access_token"] == TOKEN
    assert kwargs["_retry_stop_after_attempts_duration"] <= DEFAULT_CONNECT_TIMEOUT_S
    assert kwargs["_retry_stop_after_attempts_count"] == RETRY_ATTEMPTS
    assert kwargs["enable_telemetry"] is False
    assert TOKEN not in str(lakehouse.engine.url) and TOKEN not in repr(lakehouse.engine)


def test_multi_chunk_arrow_tables_do_not_add_statements(
    recorded: tuple[Lakehouse, Recorder],
) -> None:
    lakehouse, recorder = recorded
    rows = events_rows(1_000)
    chunked = pa.concat_tables([rows.slice(0, 10), rows.slice(10, 7), rows.slice(17)])
    assert chunked.column("event_id").num_chunks == 3
    with lakehouse.connect() as conn:
        recorder.executes.clear()
        insert_chunked(conn, EVENTS, chunked)
    assert len(recorder.executes) == math.ceil(1_000 / (256 // chunked.num_columns))
    assert recorder.executemanys == []


def test_staging_on_databricks_also_avoids_executemany(
    recorded: tuple[Lakehouse, Recorder],
) -> None:
    """Bronze stages each batch in a scratch table before INSERT ... SELECT."""
    lakehouse, recorder = recorded
    rows = events_rows(500).append_column("batch_pos", pa.array(range(1, 501), pa.int64()))
    with lakehouse.connect() as conn, lakehouse.staged(conn, rows, EVENTS) as stage:
        assert stage.name.startswith("stage_events_")
    statements = [sql.split("(")[0].strip() for sql, _ in recorder.executes]
    assert statements[0].startswith("CREATE TABLE grid_bronze.stage_events_")
    assert statements[-1].startswith("DROP TABLE grid_bronze.stage_events_")
    assert len(inserts(recorder)) == math.ceil(500 / (256 // rows.num_columns))
    assert all(len(p) <= MAX_PARAMS_PER_STATEMENT for _, p in inserts(recorder))
    assert recorder.executemanys == []


def test_silver_reads_its_batch_as_arrow_through_the_connector(
    recorded: tuple[Lakehouse, Recorder],
) -> None:
    """Silver's read goes through the SQLAlchemy connection, then the connector's own Arrow
    fetch; its time zone spelling is normalised to UTC before the batch is built."""
    lakehouse, recorder = recorded
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    recorder.arrow = pa.table(
        {
            "event_id": ["e-1", "e-2"],
            "ingest_seq": pa.array([6, 7], pa.int64()),
            "event_type": ["product.created", "system.heartbeat"],
            "occurred_at": pa.array([at, at], pa.timestamp("us", tz="Etc/UTC")),
            "payload": ['{"product_id":"P1","category":"c","unit_price":1.25}', "{}"],
        }
    )
    with lakehouse.connect() as conn:
        recorder.executes.clear()
        events = lakehouse.fetch_arrow(conn, unprocessed_events(5, 100)).cast(BRONZE_EVENTS)
    ((sql, params),) = recorder.executes
    assert sql.startswith("SELECT grid_bronze.events.event_id, grid_bronze.events.ingest_seq")
    assert params == {"ingest_seq_1": 5, "ingest_seq_2": 100, "event_type_1": "pipeline."}
    assert events.column("occurred_at").to_pylist() == [at, at]
    batch = build_silver_batch(events)
    assert batch.outcomes.to_pylist() == ["applied", "not_domain"]
    assert batch.products.column("unit_price").to_pylist() == [Decimal("1.25")]
    assert batch.products.column("updated_at").to_pylist() == [at]


def test_production_stages_ten_thousand_events_as_one_file_and_one_statement(
    recorded: tuple[Lakehouse, Recorder],
) -> None:
    """What replaced the 435 statements above: one Parquet upload, one INSERT ... SELECT."""
    row_path, recorder = recorded
    volume = MemoryVolume()
    stager = VolumeStaging("/Volumes/main/grid_bronze/grid_staging", volume, "run-7")
    lakehouse = Lakehouse(DatabricksBackend(row_path.engine, stager), "grid_")
    rows = events_rows(ROWS)
    with lakehouse.connect() as conn:
        recorder.executes.clear()
        written = lakehouse.bulk_insert(conn, EVENTS, rows)

    assert written == ROWS
    ((sql, params),) = recorder.executes
    path = "/Volumes/main/grid_bronze/grid_staging/grid/run-7/bronze-events-000001.parquet"
    assert sql.startswith("INSERT INTO grid_bronze.events (event_id,")
    assert f"FROM parquet.`{path}` AS stage_events" in sql
    assert not params
    assert recorder.executemanys == []
    ((uploaded, size, count, columns),) = volume.uploads
    assert (uploaded, count, columns) == (path, ROWS, rows.num_columns)
    assert size == stager.stats.bytes > 0
    assert volume.files == {}  # removed once loaded
