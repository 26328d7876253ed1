"""Bulk writes on Databricks travel as Parquet files through the Files API, over real HTTP.

A small server on 127.0.0.1 (`files_api_server`) implements the Files API endpoints
`databricks-sdk` calls (upload: PUT /api/2.0/fs/files/..., list: GET /api/2.0/fs/directories/...,
delete: DELETE on both). The lakehouse is the production one (Databricks dialect,
`databricks_engine`) over a recording warehouse, with `staging.VolumeStaging` on
`staging.sdk_files` pointed at the server. Nothing is mocked between the staging code and the
socket.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from grid_assets.config import ConfigurationError
from grid_assets.etl import bronze
from grid_assets.ingest.chunks import Chunk, parse_chunk
from grid_assets.ingest.landing import LandingFile, LineBlock, Progress
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.databricks import DatabricksBackend, databricks_engine
from grid_assets.lakehouse.staging import VolumeStaging, sdk_files
from grid_assets.models.silver import OrderItem
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.settings import load_settings
from grid_assets_tests.databricks_fakes import HTTP_PATH, TOKEN, warehouse_config
from grid_assets_tests.files_api_server import FILES, FilesServer, serving
from grid_bench.recording import RecordingWarehouse

VOLUME = "/Volumes/main/grid_bronze/grid_staging"
RUN_ID = "run-" + uuid.uuid4().hex[:8]
NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


@pytest.fixture
def files_server() -> Iterator[FilesServer]:
    with serving() as state:
        yield state


@dataclass
class Production:
    lakehouse: Lakehouse
    stager: VolumeStaging
    warehouse: RecordingWarehouse


@pytest.fixture
def production(files_server: FilesServer) -> Production:
    files = sdk_files(f"http://127.0.0.1:{files_server.port}", TOKEN, 10)

    class ServerReader:  # the warehouse reads the staged file where the upload put it
        def read(self, path: str) -> pa.Table:
            return pq.read_table(io.BytesIO(files_server.files[path]))

    warehouse = RecordingWarehouse(ServerReader())  # type: ignore[arg-type]
    engine = databricks_engine(
        warehouse_config(f"adb-{uuid.uuid4().hex[:10]}.azuredatabricks.net"),
        dbapi=warehouse.module(),
    )
    stager = VolumeStaging(VOLUME, files, RUN_ID)
    lakehouse = Lakehouse(DatabricksBackend(engine, stager), "grid_")
    return Production(lakehouse, stager, warehouse)


def _bronze_batch(count: int) -> bronze._Batch:
    """`count` new events and a rejected line, parsed as Bronze parses a chunk."""
    name = "2026-11-27.ndjson"
    lines = [
        b'{"event_id":"e-%d","event_type":"order.placed","occurred_at":"2026-11-27T09:30:00Z",'
        b'"source":"shop","payload":{"order_id":"o-%d","amount":1.10}}' % (n, n)
        for n in range(1, count + 1)
    ]
    lines.append(b'{"n":%d}' % (count + 1))
    chunk = Chunk(
        LandingFile(name, None, 4096),  # type: ignore[arg-type]
        LineBlock.from_lines(name, lines),
        Progress(count + 1, 512, 4096, 0, "reading", "f"),
    )
    return bronze._classify(chunk, parse_chunk(chunk), NOW, RUN_ID)


def test_a_bronze_batch_is_two_files_uploaded_loaded_and_removed(
    files_server: FilesServer, production: Production, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    batch = _bronze_batch(3000)
    with production.lakehouse.connect() as conn:
        bronze._write_batch(production.lakehouse, conn, batch, RUN_ID, bronze.BronzeResult())

    folder = f"{VOLUME}/grid/{RUN_ID}"
    events_file = f"{folder}/bronze-events-000001.parquet"
    rejected_file = f"{folder}/bronze-rejected_events-000001.parquet"
    uploads = [r for r in files_server.requests if r["method"] == "PUT"]
    assert [unquote(urlsplit(r["path"]).path) for r in uploads] == [
        FILES + events_file,
        FILES + rejected_file,
    ]
    # What arrived is the batch, typed as the table declares, once each.
    events = pq.read_table(io.BytesIO(uploads[0]["body"]))
    assert int(uploads[0]["headers"]["Content-Length"]) == len(uploads[0]["body"])
    assert events.num_rows == 3000
    assert events.column("event_id").to_pylist() == [f"e-{i}" for i in range(1, 3001)]
    assert events.column("payload").to_pylist()[0] == '{"order_id":"o-1","amount":1.10}'
    assert events.schema.field("line_number").type == pa.int32()
    assert events.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    assert events.select(batch.event_rows.column_names).equals(  # type: ignore[union-attr]
        batch.event_rows.cast(events.select(batch.event_rows.column_names).schema)  # type: ignore[union-attr]
    )
    rejected = pq.read_table(io.BytesIO(uploads[1]["body"]))
    assert rejected.column("raw_line").to_pylist() == ['{"n":3001}']
    # Each load is one statement reading the file; the file is removed after it.
    loads = [s for s in production.warehouse.statements if f"parquet.`{events_file}`" in s]
    assert [s.split()[0] for s in loads] == ["SELECT", "INSERT"]
    assert files_server.calls("DELETE") == [FILES + events_file, FILES + rejected_file]
    assert files_server.files == {}
    assert production.stager.stats.files == 2
    assert production.stager.stats.bytes == sum(len(r["body"]) for r in uploads)
    # The token travels in the Authorization header only, and is never logged.
    for request in files_server.requests:
        assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
        others = {k: v for k, v in request["headers"].items() if k != "Authorization"}
        assert TOKEN not in json.dumps(others) and TOKEN not in request["path"]
        assert TOKEN.encode() not in request["body"]
    assert TOKEN not in caplog.text
    assert any("fs/files" in r.getMessage() for r in caplog.records), "SDK requests were logged"


def test_decimals_arrive_exact(files_server: FilesServer, production: Production) -> None:
    items = pa.table(
        {
            "order_id": ["o-1"],
            "line_number": pa.array([1], pa.int32()),
            "product_id": ["p-1"],
            "quantity": pa.array([3], pa.int64()),
            "unit_price": pa.array([Decimal("123456789012.123456")], pa.decimal128(38, 6)),
            "discount": pa.array([Decimal("0.125")], pa.decimal128(38, 6)),
            "event_id": ["e-1"],
        }
    )
    table = OrderItem.__table__
    with production.lakehouse.connect() as conn, production.lakehouse.staged(conn, items, table):
        (body,) = files_server.files.values()
    staged = pq.read_table(io.BytesIO(body))
    assert staged.schema.field("unit_price").type == pa.decimal128(18, 6)
    assert staged.column("unit_price").to_pylist() == [Decimal("123456789012.123456")]
    assert staged.column("discount").to_pylist() == [Decimal("0.125000")]
    # A value the declared column cannot hold exactly is refused, never rounded.
    too_fine = items.set_column(
        5, "discount", pa.array([Decimal("0.1234567")], pa.decimal128(38, 7))
    )
    with (
        production.lakehouse.connect() as conn,
        pytest.raises(pa.ArrowInvalid),
        production.lakehouse.staged(conn, too_fine, table),
    ):
        pass


def test_a_failed_load_leaves_its_file_for_the_next_run_to_sweep(
    files_server: FilesServer, production: Production, caplog: pytest.LogCaptureFixture
) -> None:
    batch = _bronze_batch(10)
    rows = batch.event_rows
    assert rows is not None
    with (
        production.lakehouse.connect() as conn,
        pytest.raises(RuntimeError),
        production.lakehouse.staged(conn, rows, bronze.EVENTS),
    ):
        raise RuntimeError("the warehouse went away")
    (left,) = files_server.files
    assert left.startswith(f"{VOLUME}/grid/{RUN_ID}/")

    later = VolumeStaging(VOLUME, production.stager.files, "run-later")
    caplog.set_level(logging.INFO)
    assert later.sweep() == 1
    assert files_server.files == {}
    assert FILES + left in files_server.calls("DELETE")
    assert f"Swept 1 staged file(s) left by 1 earlier run(s) in {VOLUME}/grid" in caplog.text
    # Nothing left: the next sweep lists a missing folder (404) and removes nothing.
    assert later.sweep() == 0


def test_the_sweep_keeps_the_current_runs_files(
    files_server: FilesServer, production: Production
) -> None:
    mine = f"{VOLUME}/grid/{RUN_ID}/bronze-events-000001.parquet"
    files_server.files[mine] = b"x"
    files_server.files[f"{VOLUME}/grid/run-old/silver-event_ledger-000002.parquet"] = b"y"
    assert production.stager.sweep() == 1
    assert list(files_server.files) == [mine]


def test_schema_ddl_and_the_sweep_run_once_per_run(
    files_server: FilesServer, production: Production
) -> None:
    files_server.files[f"{VOLUME}/grid/run-crashed/bronze-events-000001.parquet"] = b"x"
    production.lakehouse.create_tables()
    ddl = len(production.warehouse.statements)
    assert any(
        s.strip().startswith("CREATE TABLE grid_bronze.events")
        for s in production.warehouse.statements
    )
    assert files_server.files == {}
    production.lakehouse.create_tables()  # the Silver step of the same run
    assert len(production.warehouse.statements) == ddl
    assert len(files_server.calls("GET")) == 2  # the sweep's listings, once


def test_another_schema_prefix_in_the_same_run_gets_its_own_ddl(production: Production) -> None:
    """Once per run means once per run *and* set of schemas: a second lakehouse on the same
    warehouse and run id but another prefix still creates its tables."""
    production.lakehouse.create_tables()
    other = Lakehouse(production.lakehouse.backend, "other_")
    sent = len(production.warehouse.statements)
    other.create_tables()
    created = [s.strip() for s in production.warehouse.statements[sent:]]
    assert any(s.startswith("CREATE TABLE other_bronze.events") for s in created)


# --- DATABRICKS_STAGING_VOLUME -----------------------------------------------------------------

COMPLETE = {
    "DATABRICKS_SERVER_HOSTNAME": "adb-1.2.azuredatabricks.net",
    "DATABRICKS_HTTP_PATH": HTTP_PATH,
    "DATABRICKS_TOKEN": TOKEN,
    "DATABRICKS_CATALOG": "main",
}


def test_the_staging_volume_is_optional_and_derived() -> None:
    settings = load_settings(COMPLETE)
    assert settings.staging_volume is None
    resource = LakehouseResource(
        environment="production",
        server_hostname="adb-1.2.azuredatabricks.net",
        http_path=HTTP_PATH,
        access_token=TOKEN,
        catalog="main",
        schema_prefix="dev_",
    )
    lakehouse = resource.get_lakehouse()
    backend = lakehouse.backend
    assert isinstance(backend, DatabricksBackend) and isinstance(backend.stager, VolumeStaging)
    assert backend.stager.volume == "/Volumes/main/dev_bronze/grid_staging"
    assert backend.create_volume == "main.dev_bronze.grid_staging"


def test_a_set_staging_volume_is_used_as_is() -> None:
    settings = load_settings({**COMPLETE, "DATABRICKS_STAGING_VOLUME": " /Volumes/ops/etl/in "})
    assert settings.staging_volume == "/Volumes/ops/etl/in"
    resource = LakehouseResource(
        environment="production",
        server_hostname="adb-1.2.azuredatabricks.net",
        http_path=HTTP_PATH,
        access_token=TOKEN,
        catalog="main",
        staging_volume=settings.staging_volume,
    )
    lakehouse = resource.get_lakehouse()
    backend = lakehouse.backend
    assert isinstance(backend, DatabricksBackend) and isinstance(backend.stager, VolumeStaging)
    assert (backend.stager.volume, backend.create_volume) == ("/Volumes/ops/etl/in", None)


@pytest.mark.parametrize(
    "value",
    [
        "/Volumes/main/grid",
        "/Volumes/main/grid/stage/",
        "/Volumes/main/grid/stage/more",
        "Volumes/main/grid/stage",
        "/volumes/main/grid/stage",
        "/Volumes/main/grid/st-age",
        "/Volumes/main/grid/st`age",
        "dbfs:/Volumes/main/grid/stage",
    ],
)
def test_a_malformed_staging_volume_stops_the_load_naming_it(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({**COMPLETE, "DATABRICKS_STAGING_VOLUME": value})
    message = str(caught.value)
    assert "DATABRICKS_STAGING_VOLUME must be a Unity Catalog volume path" in message
    assert TOKEN not in message
