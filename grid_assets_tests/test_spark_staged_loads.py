"""Bronze and Silver written by the production code path into a real Spark SQL engine, through
Parquet files staged in a volume, and compared with the same pipeline run on DuckDB.

The lakehouse is the production one: `Lakehouse` on `databricks_engine` (Databricks
dialect, schema prefix, native named parameters) with `staging.VolumeStaging`, so each batch is
written once as a Parquet file into a volume and loaded by one statement reading
`parquet.`/Volumes/...``. Only the far ends are local (`spark_warehouse`): the PEP 249 module
executes every statement on a local SparkSession, and the volume is a folder. The one change made
to a statement is the path inside `parquet.`...``, pointed at that folder.

What Spark cannot run, and what that means here. MERGE INTO and DELETE FROM need Delta, which
cannot be loaded offline (Spark refuses both on parquet tables): they are parsed by Spark's SQL
parser, so a syntax error fails the run, recorded, and not executed. They are Bronze's file
progress (`bronze.ingested_files`), Silver's products and orders upserts and its cursor
(`silver.cursors`), and `delete_superseded_items`. No compared table is derived from them within
a run: the progress and the cursor are read once, before the first write, and the ledger and
the quarantine come from the Bronze rows Silver reads back from Spark (`fetchall_arrow`). The one
exception is `silver.order_items`, whose load joins `silver.orders`: before the run that table
is filled with the orders DuckDB ends with. An order's lines are loaded in the batch that brings
its latest placement, and after that batch's MERGEs the order points at that placement, as it
does at the end; so the items load runs on Spark against the orders it would have found (here
each dataset is a single Silver batch anyway). `silver.products`, `silver.orders`,
`bronze.ingested_files` and `silver.cursors` are not compared.

What is compared: every column of every row, except the instants stamped from the wall clock as
a row is written (`ingested_at`, `rejected_at`, `processed_at`, `quarantined_at`) and, for the
pipeline's own events in `bronze.events`, the random `event_id`, the `envelope_hash` derived from
it and `occurred_at` (the wall clock too). Both engines run under one run id, so `run_id` is
compared like any value travelling through the staged files. `ingest_seq` is compared exactly,
not only as an order: on an empty lakehouse it is a function of the input (arrival order,
numbered among new rows per batch, and both engines cut the same batches), both engines number
from 1 without gaps (asserted), and the ledger copies it; an off-by-one in the numbering SQL as
Spark runs it would show.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from grid_assets.config import DatabricksConfig, derived_staging_volume
from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.pipeline_events import PIPELINE_SOURCE
from grid_assets.etl.silver import apply_new_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.databricks import DatabricksBackend, databricks_engine
from grid_assets.lakehouse.staging import VolumeStaging
from grid_assets.models import metadata
from grid_assets.models.base import LAYERS
from grid_assets.models.silver import Order
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.databricks_fakes import HTTP_PATH, TOKEN
from grid_assets_tests.northwind import (
    find_northwind_dir,
    missing_northwind_message,
    running_in_ci,
    write_northwind_events,
)
from grid_assets_tests.spark_support import (
    comparable_rows,
    quiet_analysis_errors,
    spark_table_rows,
)
from grid_assets_tests.spark_warehouse import (
    LocalVolume,
    SparkWarehouse,
    create_empty_information_schema,
    drop_information_schema,
)

pytest.importorskip("pyspark")

pytestmark = pytest.mark.spark

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "data" / "samples"
DATASETS = ["samples", "northwind"]
# One run id for both engines; unique per session, as a Dagster run's is.
RUN_ID = f"spark-staged-{uuid.uuid4().hex[:8]}"
# Spark's own catalog name, so the dialect's three-part names (`DESCRIBE TABLE EXTENDED
# `catalog`.`schema`.`table``) resolve on open-source Spark.
CATALOG = "spark_catalog"
HOST = "adb-1234567890123456.7.azuredatabricks.net"  # never contacted: the dbapi is Spark

COMPARED = [
    "bronze.events",
    "bronze.rejected_events",
    "bronze.rejected_files",
    "silver.event_ledger",
    "silver.quarantine",
    "silver.order_items",
]
# A comparison of empty tables proves nothing. Northwind is clean third-party data: no rejected
# lines, files or quarantined events.
MUST_HOLD_ROWS = {
    "samples": set(COMPARED),
    "northwind": {"bronze.events", "silver.event_ledger", "silver.order_items"},
}
# Instants each engine stamps from its own clock as it writes a row.
WRITE_TIMES = frozenset({"ingested_at", "rejected_at", "processed_at", "quarantined_at"})
# What a pipeline event gets fresh each time: a random id, its hash, the wall clock.
PIPELINE_EVENT_PER_RUN = frozenset({"event_id", "envelope_hash", "occurred_at"})
# The staged batches only MERGE (or the parse-only DELETE) read.
MERGED_ONLY = {"products", "orders"}
ORDERS = Order.__table__


@dataclass
class Reference:
    """A dataset's landing folder and the DuckDB lakehouse the pipeline built from it."""

    landing: Path
    duckdb: Lakehouse


@dataclass
class StagedRun:
    """The same landing folder through the production write path into Spark."""

    dataset: str
    duckdb: Lakehouse
    spark: Any
    prefix: str
    lakehouse: Lakehouse
    warehouse: SparkWarehouse
    volume: LocalVolume


def _samples_landing(folder: Path) -> Path:
    """The committed samples plus the first half of one of their gzip files under a later name:
    a truncated gzip, so that `bronze.rejected_files` is written too (the samples alone leave it
    empty). The complete lines before the cut repeat stored events and rejected lines."""
    folder.mkdir(parents=True)
    samples = sorted(SAMPLES_DIR.glob("*.ndjson*"))
    assert samples, f"no committed samples in {SAMPLES_DIR}"
    for path in samples:
        shutil.copy2(path, folder / path.name)
    gzipped = next(path for path in samples if path.name.endswith(".gz"))
    data = gzipped.read_bytes()
    (folder / "events-9999-truncated.ndjson.gz").write_bytes(data[: len(data) // 2])
    return folder


def _landing(dataset: str, folder: Path) -> Path | None:
    if dataset == "samples":
        return _samples_landing(folder)
    source = find_northwind_dir()
    if source is None:
        return None
    write_northwind_events(source, folder)
    return folder


def _run_pipeline(lakehouse: Lakehouse, landing: Path) -> None:
    lakehouse.create_tables()
    ingest_landing(lakehouse, landing, run_id=RUN_ID)
    apply_new_events(lakehouse, run_id=RUN_ID)


@pytest.fixture(scope="module")
def references(
    spark_starting: Future, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Reference | None]]:
    """Every dataset through Bronze and Silver on DuckDB, while Spark starts."""
    built: dict[str, Reference | None] = {}
    for dataset in DATASETS:
        work = tmp_path_factory.mktemp(f"staged-{dataset}")
        landing = _landing(dataset, work / "landing")
        if landing is None:
            built[dataset] = None
            continue
        duckdb = LakehouseResource(duckdb_path=str(work / "grid.duckdb")).get_lakehouse()
        _run_pipeline(duckdb, landing)
        built[dataset] = Reference(landing, duckdb)
    yield built
    for reference in built.values():
        if reference is not None:
            reference.duckdb.engine.dispose()


@pytest.fixture(scope="module")
def spark(spark_starting: Future, references: dict[str, Reference | None]) -> Iterator[Any]:
    """The shared session (waited for once `references` has run on DuckDB meanwhile), with the
    empty `information_schema.columns` the lakehouse's layout query reads; dropped afterwards."""
    session = spark_starting.result()
    create_empty_information_schema(session)
    yield session
    drop_information_schema(session)


def _seed_orders(duckdb: Lakehouse, spark: Any, table: str, folder: Path) -> None:
    """`silver.orders` as DuckDB ends with it: what the skipped orders MERGEs would leave."""
    with duckdb.connect() as conn:
        orders = duckdb.fetch_arrow(conn, select(ORDERS))
    path = folder / "orders.parquet"
    pq.write_table(orders, path)
    columns = ", ".join(orders.column_names)
    spark.sql(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM parquet.`{path}`")


@pytest.fixture(scope="module", params=DATASETS)
def staged(
    request: pytest.FixtureRequest,
    spark: Any,
    references: dict[str, Reference | None],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[StagedRun]:
    """Bronze and Silver of one dataset into Spark, in schemas of their own (`staged_<dataset>_`
    prefix), dropped afterwards so that other modules sharing the session find Spark as before."""
    dataset: str = request.param
    reference = references[dataset]
    if reference is None:
        if running_in_ci():
            pytest.fail(missing_northwind_message())
        pytest.skip(missing_northwind_message())
    prefix = f"staged_{dataset}_"
    work = tmp_path_factory.mktemp(f"spark-{dataset}")
    volume = LocalVolume(work / "volume")
    warehouse = SparkWarehouse(spark, volume)
    config = DatabricksConfig(
        server_hostname=HOST,
        http_path=HTTP_PATH,
        access_token=TOKEN,
        catalog=CATALOG,
        schema_prefix=prefix,
    )
    engine = databricks_engine(config, dbapi=warehouse.module())
    staging_volume = derived_staging_volume(CATALOG, prefix)
    backend = DatabricksBackend(
        engine,
        VolumeStaging(staging_volume, volume, run_id=RUN_ID),
        create_volume=config.volume_to_create,  # as LakehouseResource derives it
    )
    lakehouse = Lakehouse(backend, prefix)
    try:
        with quiet_analysis_errors():  # the dialect probes each table before creating it
            lakehouse.create_tables()
        _seed_orders(reference.duckdb, spark, f"{prefix}silver.orders", work)
        ingest_landing(lakehouse, reference.landing, run_id=RUN_ID)
        apply_new_events(lakehouse, run_id=RUN_ID)
        yield StagedRun(dataset, reference.duckdb, spark, prefix, lakehouse, warehouse, volume)
    finally:
        engine.dispose()
        for layer in LAYERS:
            spark.sql(f"DROP DATABASE IF EXISTS {prefix}{layer} CASCADE")


def _on_duckdb(lakehouse: Lakehouse, name: str) -> tuple[list[str], list[tuple]]:
    with lakehouse.connect() as conn:
        result = conn.execute(select(metadata.tables[name]))
        return list(result.keys()), [tuple(row) for row in result]


def _comparable(name: str, columns: list[str], rows: list[tuple]) -> list[tuple]:
    """Rows with the per-run values blanked (see the module docstring), as comparable values."""
    source = columns.index("source") if name == "bronze.events" else None

    def kept(row: tuple) -> tuple:
        per_run = WRITE_TIMES
        if source is not None and row[source] == PIPELINE_SOURCE:
            per_run = WRITE_TIMES | PIPELINE_EVENT_PER_RUN
        return tuple(None if c in per_run else v for c, v in zip(columns, row, strict=True))

    return comparable_rows([kept(row) for row in rows])


def _differences(spark_rows: list[tuple], duck_rows: list[tuple], limit: int = 3) -> str:
    only_spark = sorted(set(spark_rows) - set(duck_rows))[:limit]
    only_duck = sorted(set(duck_rows) - set(spark_rows))[:limit]
    return f"only on Spark: {only_spark}\nonly on DuckDB: {only_duck}"


@pytest.mark.parametrize("name", COMPARED)
def test_table_loaded_on_spark_matches_duckdb(staged: StagedRun, name: str) -> None:
    duck_columns, duck_rows = _on_duckdb(staged.duckdb, name)
    spark_columns, spark_rows = spark_table_rows(staged.spark, staged.prefix + name)

    if name in MUST_HOLD_ROWS[staged.dataset]:
        assert duck_rows, f"{name} is empty on DuckDB: comparing it would prove nothing"
    assert spark_columns == duck_columns
    assert len(spark_rows) == len(duck_rows)
    spark_cmp = _comparable(name, spark_columns, spark_rows)
    duck_cmp = _comparable(name, duck_columns, duck_rows)
    assert spark_cmp == duck_cmp, _differences(spark_cmp, duck_cmp)


@pytest.mark.parametrize("name", ["bronze.events", "silver.event_ledger"])
def test_ingest_seq_numbers_from_one_without_gaps(staged: StagedRun, name: str) -> None:
    """What makes comparing `ingest_seq` exactly fair: neither engine numbers by accident."""
    for columns, rows in (
        _on_duckdb(staged.duckdb, name),
        spark_table_rows(staged.spark, staged.prefix + name),
    ):
        seqs = sorted(row[columns.index("ingest_seq")] for row in rows)
        if name == "bronze.events":
            assert seqs == list(range(1, len(seqs) + 1))
        else:  # the ledger skips the pipeline's own events
            assert seqs and len(set(seqs)) == len(seqs) and seqs[0] == 1


def test_merge_and_delete_are_parsed_by_spark_not_executed(staged: StagedRun) -> None:
    warehouse, prefix = staged.warehouse, staged.prefix
    merges = [s for s in warehouse.parsed_only if s.lstrip().startswith("MERGE INTO")]
    deletes = [s for s in warehouse.parsed_only if s.lstrip().startswith("DELETE FROM")]
    assert len(merges) + len(deletes) == len(warehouse.parsed_only)
    assert len(merges) > 0
    targets = {re.match(r"\s*MERGE INTO (\S+)", merge)[1] for merge in merges}  # type: ignore[index]
    assert targets == {
        f"{prefix}bronze.ingested_files",
        f"{prefix}silver.products",
        f"{prefix}silver.orders",
        f"{prefix}silver.cursors",
    }
    assert deletes
    assert all(d.lstrip().startswith(f"DELETE FROM {prefix}silver.order_items") for d in deletes)
    assert not [s for s in warehouse.executed if re.match(r"\s*(MERGE|DELETE)\b", s)]


def test_a_statement_spark_cannot_parse_fails_the_run(staged: StagedRun) -> None:
    """Parse-only is still a check: a MERGE with a syntax error stops the statement."""
    cursors = f"{staged.prefix}silver.cursors"
    broken = (
        f"MERGE INTO {cursors} AS t USING (SELECT 'silver' AS consumer) AS s "
        "ON t.consumer = s.consumer WHEN MATCHED THEN UPDATE SETT last_ingest_seq = 0"
    )
    parsed = len(staged.warehouse.parsed_only)
    with staged.lakehouse.connect() as conn, pytest.raises(DBAPIError, match="PARSE_SYNTAX_ERROR"):
        conn.execute(text(broken))
    assert len(staged.warehouse.parsed_only) == parsed


def test_every_staged_file_is_loaded_then_removed(staged: StagedRun) -> None:
    volume, warehouse = staged.volume, staged.warehouse
    assert volume.uploaded
    assert sorted(volume.deleted) == sorted(volume.uploaded)  # each removed once, after its load
    assert volume.files_left() == []

    sent = "\n".join(warehouse.statements)
    executed = "\n".join(warehouse.executed)
    # Statements reach the warehouse as compiled, volume paths and all.
    assert str(volume.root) not in sent
    for path in volume.uploaded:
        assert f"parquet.`{path}`" in sent, path
        table = Path(path).name.split("-")[1]
        # Every batch but those only a MERGE reads is loaded by a statement Spark executed.
        assert (f"parquet.`{path}`" in executed) == (table not in MERGED_ONLY), path
