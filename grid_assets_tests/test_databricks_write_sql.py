"""The rest of what Bronze, Silver and the pipeline's own events send to Databricks, checked as
reviewed SQL text: no warehouse, no Spark, no network.

`test_databricks_compile.py` pins the CREATE TABLEs, the Silver MERGEs and INSERT OVERWRITE, and
`test_databricks_staged_files.py` the upload of each staged batch; this file pins every other
write and bookkeeping statement of a Bronze or Silver batch.

Nothing is rebuilt by hand. Statements made by a function in `queries/` come from calling it; the
ones built inline in `etl/` come from running the etl function itself on a recording Databricks
connection (SQLAlchemy's mock engine: each statement is captured instead of sent). Stage relations
are what `Lakehouse.staged` really makes on Databricks: the batch's Parquet file in the staging
volume, read as `parquet.`<path>` AS stage_<table>` (`staging.VolumeStaging`, here over an
in-memory volume).

Every value (the literal row of a MERGE, the `ingest_seq` base, the LIMIT, ...) is a bound
parameter in production, never inlined text, so the statements are compiled with parameters and
the parameters are pinned alongside the SQL. Each statement must also compile for DuckDB, whose
execution is covered by the DuckDB tiers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb_engine
import pyarrow as pa
import pytest
from databricks.sqlalchemy import DatabricksDialect
from sqlalchemy import Table, create_mock_engine
from sqlalchemy.sql import ClauseElement

from grid_assets.etl import bronze, pipeline_events, silver
from grid_assets.ingest.chunks import Chunk, parse_chunk
from grid_assets.ingest.envelope import envelope_hash
from grid_assets.ingest.landing import LandingFile, LineBlock, Progress
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.databricks import MAX_PARAMS_PER_STATEMENT, DatabricksBackend
from grid_assets.lakehouse.staging import VolumeStaging
from grid_assets.models.bronze import Event
from grid_assets.models.silver import Order, OrderItem
from grid_assets.queries import silver as silver_queries
from grid_assets.queries.common import insert_missing
from grid_assets.transform.silver_rows import BRONZE_EVENTS, build_silver_batch
from grid_bench.recording import MemoryVolume

DATABRICKS = DatabricksDialect()
DUCKDB = duckdb_engine.Dialect()
EVENTS = Event.__table__
NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
RUN_ID = "run-1"
# What the recording connection answers to `.scalar()`: the current max(ingest_seq), the cursor.
STORED_SEQ = 41
VOLUME = "/Volumes/main/ops/stage"
FOLDER = f"{VOLUME}/grid/{RUN_ID}"


# --- recording Databricks connection ---------------------------------------------------------


@dataclass
class _Result:
    value: int

    def all(self) -> list:
        return []  # no stored row matches: every staged event is new

    def scalar(self) -> int:
        return self.value

    def scalar_one(self) -> int:
        return self.value


@dataclass
class Recorder:
    """A Databricks connection that records each statement (DDL included) instead of sending it."""

    statements: list[ClauseElement] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conn: Any = create_mock_engine("databricks://", self._execute)
        self.volume = MemoryVolume()
        stager = VolumeStaging(VOLUME, self.volume, RUN_ID)
        self.lakehouse = Lakehouse(DatabricksBackend(self.conn, stager))

    def _execute(self, statement: ClauseElement, parameters: Any = None) -> _Result:
        assert parameters is None, "the pipeline passes values inside statements"
        self.statements.append(statement)
        return _Result(STORED_SEQ)

    def sql(self) -> list[str]:
        return [databricks_sql(statement) for statement in self.statements]

    def find(self, head: str) -> ClauseElement:
        """The one recorded statement whose Databricks SQL starts with the words `head`."""
        starts = re.compile(re.escape(head) + r"(\W|$)")
        found = [s for s, sql in zip(self.statements, self.sql(), strict=True) if starts.match(sql)]
        assert len(found) == 1, (head, self.sql())
        return found[0]


def staged_on_databricks(like: Table, rows: pa.Table) -> Table:
    """The relation `Lakehouse.staged` makes of `rows` on Databricks: its Parquet file."""
    recorder = Recorder()
    with recorder.lakehouse.staged(recorder.conn, rows, like) as relation:
        return relation


# --- compiling and comparing -----------------------------------------------------------------


def normalized(sql: str) -> str:
    return " ".join(sql.split())


def databricks_sql(statement: ClauseElement) -> str:
    return normalized(str(statement.compile(dialect=DATABRICKS)))


def assert_pinned(statement: ClauseElement, expected_sql: str, params: dict[str, Any]) -> None:
    """The reviewed Databricks SQL and parameters; and the statement compiles for DuckDB."""
    compiled = statement.compile(dialect=DATABRICKS)
    assert normalized(str(compiled)) == normalized(expected_sql)
    assert (compiled.params or {}) == params  # DDL compilers have no params (None)
    assert (statement.compile(dialect=DUCKDB).params or {}) == params


def recorded(run: Callable[[Recorder], object]) -> Recorder:
    recorder = Recorder()
    run(recorder)
    return recorder


# --- Bronze: one batch of landing lines (etl.bronze._write_batch) ----------------------------

SOURCE_FILE = "2026-11-27.ndjson"
LANDING_FILE = LandingFile(SOURCE_FILE, Path("/landing") / SOURCE_FILE, 4096)
GOOD_LINE = (
    b'{"event_id":"e-1","event_type":"order.placed","occurred_at":"2026-11-27T09:30:00Z",'
    b'"source":"shop","payload":{"order_id":"o-1"}}'
)
BAD_LINE = b"not json"
PROGRESS = Progress(8, 512, 4096, 0, "reading", "f" * 32)


@pytest.fixture(scope="module")
def bronze_batch() -> Recorder:
    """What one Bronze batch of a new event and a rejected line sends."""
    chunk = Chunk(
        LANDING_FILE, LineBlock.from_lines(SOURCE_FILE, [GOOD_LINE, BAD_LINE], 7), PROGRESS
    )
    batch = bronze._classify(chunk, parse_chunk(chunk), NOW, RUN_ID)
    result = bronze.BronzeResult()
    recorder = recorded(lambda r: bronze._write_batch(r.lakehouse, r.conn, batch, RUN_ID, result))
    assert (result.lines_read, result.events_inserted, result.rejected) == (2, 1, 1)
    return recorder


def test_bronze_batch_sends_these_statements_in_this_order(bronze_batch: Recorder) -> None:
    """bronze._write_batch: stage, look up, number and append the events, then the rejects."""
    heads = [" ".join(sql.split()[:3]) for sql in bronze_batch.sql()]
    assert heads == [
        "SELECT found.batch_pos, stored.envelope_hash,",
        "SELECT coalesce(max(bronze.events.ingest_seq), :`coalesce_2`)",
        "INSERT INTO bronze.events",
        "INSERT INTO bronze.rejected_events",
    ]
    # One file per staged batch, uploaded before its statements, removed after them.
    assert [path for path, *_ in bronze_batch.volume.uploads] == [
        f"{FOLDER}/bronze-events-000001.parquet",
        f"{FOLDER}/bronze-rejected_events-000001.parquet",
    ]
    assert bronze_batch.volume.files == {}


def test_bronze_already_stored_lookup(bronze_batch: Recorder) -> None:
    """bronze._write_batch: staged events whose event_id is stored, to tell duplicates from
    conflicts: ids matched on id and position alone, hash and payload read for the matches."""
    assert_pinned(
        bronze_batch.find("SELECT found.batch_pos,"),
        """
        SELECT found.batch_pos, stored.envelope_hash, stored.payload
        FROM (SELECT stage_events.batch_pos AS batch_pos, bronze.events.ingest_seq AS ingest_seq
              FROM parquet.`/Volumes/main/ops/stage/grid/run-1/bronze-events-000001.parquet`
                AS stage_events
              JOIN bronze.events ON bronze.events.event_id = stage_events.event_id) AS found
        JOIN bronze.events AS stored ON stored.ingest_seq = found.ingest_seq
        """,
        {},
    )


def test_bronze_max_ingest_seq(bronze_batch: Recorder) -> None:
    """bronze._write_batch: the highest ingest_seq stored, the base the batch is numbered from."""
    assert_pinned(
        bronze_batch.find("SELECT coalesce(max(bronze.events.ingest_seq)"),
        """
        SELECT coalesce(max(bronze.events.ingest_seq), :`coalesce_2`) AS coalesce_1
        FROM bronze.events
        """,
        {"coalesce_2": 0},
    )


def test_bronze_new_events_insert(bronze_batch: Recorder) -> None:
    """bronze._write_batch: append the staged events not stored yet, numbered base + their
    rank among the new ones (no gaps, wherever batch boundaries fall); none was stored here,
    so each one's rank is its batch position."""
    assert_pinned(
        bronze_batch.find("INSERT INTO bronze.events"),
        """
        INSERT INTO bronze.events (event_id, event_type, occurred_at, ingested_at, source,
          payload, envelope_hash, source_file, line_number, run_id, ingest_seq)
        SELECT stage_events.event_id, stage_events.event_type,
          stage_events.occurred_at, stage_events.ingested_at,
          stage_events.source, stage_events.payload,
          stage_events.envelope_hash, stage_events.source_file,
          stage_events.line_number, stage_events.run_id,
          stage_events.batch_pos + :`param_1` AS ingest_seq
        FROM parquet.`/Volumes/main/ops/stage/grid/run-1/bronze-events-000001.parquet`
          AS stage_events
        WHERE NOT (EXISTS (SELECT bronze.events.event_id, bronze.events.ingest_seq,
            bronze.events.event_type, bronze.events.occurred_at, bronze.events.ingested_at,
            bronze.events.source, bronze.events.payload, bronze.events.envelope_hash,
            bronze.events.source_file, bronze.events.line_number, bronze.events.run_id
          FROM bronze.events
          WHERE bronze.events.event_id = stage_events.event_id))
        """,
        {"param_1": STORED_SEQ},
    )


def test_bronze_rejected_lines_insert(bronze_batch: Recorder) -> None:
    """bronze._write_batch: dead-letter the batch's rejected lines not recorded yet
    (insert_missing keyed on source_file, line_number)."""
    assert_pinned(
        bronze_batch.find("INSERT INTO bronze.rejected_events"),
        """
        INSERT INTO bronze.rejected_events (source_file, line_number, raw_line, reason, event_id,
          rejected_at, run_id)
        SELECT stage_rejected_events.source_file, stage_rejected_events.line_number,
          stage_rejected_events.raw_line, stage_rejected_events.reason,
          stage_rejected_events.event_id, stage_rejected_events.rejected_at,
          stage_rejected_events.run_id
        FROM parquet.`/Volumes/main/ops/stage/grid/run-1/bronze-rejected_events-000001.parquet`
          AS stage_rejected_events
        WHERE NOT (EXISTS (SELECT * FROM bronze.rejected_events
          WHERE bronze.rejected_events.source_file = stage_rejected_events.source_file
            AND bronze.rejected_events.line_number = stage_rejected_events.line_number))
        """,
        {},
    )


def test_bronze_progress_merge() -> None:
    """bronze._save_progress: how far the file has been read, upserted from one literal row."""
    recorder = recorded(lambda r: bronze._save_progress(r.conn, SOURCE_FILE, PROGRESS, RUN_ID, NOW))

    (statement,) = recorder.statements
    assert_pinned(
        statement,
        """
        MERGE INTO bronze.ingested_files AS t
        USING (SELECT :`param_1` AS source_file, :`param_2` AS lines_read,
          :`param_3` AS offset_bytes, :`param_4` AS size_bytes, :`param_5` AS tail_bytes,
          :`param_6` AS state, :`param_7` AS fingerprint, :`param_8` AS updated_at,
          :`param_9` AS run_id) AS s
        ON t.source_file = s.source_file
        WHEN MATCHED THEN UPDATE SET lines_read = s.lines_read, offset_bytes = s.offset_bytes,
          size_bytes = s.size_bytes, tail_bytes = s.tail_bytes, state = s.state,
          fingerprint = s.fingerprint, updated_at = s.updated_at, run_id = s.run_id
        WHEN NOT MATCHED THEN INSERT (source_file, lines_read, offset_bytes, size_bytes,
          tail_bytes, state, fingerprint, updated_at, run_id)
          VALUES (s.source_file, s.lines_read, s.offset_bytes, s.size_bytes, s.tail_bytes,
          s.state, s.fingerprint, s.updated_at, s.run_id)
        """,
        {
            "param_1": SOURCE_FILE,
            "param_2": 8,
            "param_3": 512,
            "param_4": 4096,
            "param_5": 0,
            "param_6": "reading",
            "param_7": "f" * 32,
            "param_8": NOW,
            "param_9": RUN_ID,
        },
    )


def test_bronze_rejected_file_insert() -> None:
    """bronze._reject_file: a file that cannot be read to its end, recorded once per file,
    reason and size."""
    recorder = recorded(
        lambda r: bronze._reject_file(
            r.conn, SOURCE_FILE, "truncated_gzip", 4096, PROGRESS, RUN_ID, NOW
        )
    )
    (statement,) = recorder.statements
    assert_pinned(
        statement,
        """
        INSERT INTO bronze.rejected_files (source_file, reason, size_bytes, bytes_read,
          lines_read, rejected_at, run_id)
        SELECT s.source_file, s.reason, s.size_bytes, s.bytes_read, s.lines_read, s.rejected_at,
          s.run_id
        FROM (SELECT :`param_1` AS source_file, :`param_2` AS reason, :`param_3` AS size_bytes,
          :`param_4` AS bytes_read, :`param_5` AS lines_read, :`param_6` AS rejected_at,
          :`param_7` AS run_id) AS s
        WHERE NOT (EXISTS (SELECT * FROM bronze.rejected_files
          WHERE bronze.rejected_files.source_file = s.source_file
            AND bronze.rejected_files.reason = s.reason
            AND bronze.rejected_files.size_bytes = s.size_bytes))
        """,
        {
            "param_1": SOURCE_FILE,
            "param_2": "truncated_gzip",
            "param_3": 4096,
            "param_4": 512,
            "param_5": 8,
            "param_6": NOW,
            "param_7": RUN_ID,
        },
    )


# --- Silver: one batch of Bronze events (etl.silver) ----------------------------------------

NO_EVENTS = BRONZE_EVENTS.empty_table()
EMPTY_BATCH = build_silver_batch(NO_EVENTS)


def test_silver_unprocessed_events() -> None:
    """silver._read_batches: the GRID events of one arrival window after the cursor, in order."""
    assert_pinned(
        silver_queries.unprocessed_events(STORED_SEQ, STORED_SEQ + silver.BATCH_EVENTS),
        """
        SELECT bronze.events.event_id, bronze.events.ingest_seq, bronze.events.event_type,
          bronze.events.occurred_at, bronze.events.payload
        FROM bronze.events
        WHERE bronze.events.ingest_seq > :`ingest_seq_1`
          AND bronze.events.ingest_seq <= :`ingest_seq_2`
          AND (bronze.events.event_type NOT LIKE :`event_type_1` || '%')
        ORDER BY bronze.events.ingest_seq
        """,
        {
            "ingest_seq_1": STORED_SEQ,
            "ingest_seq_2": STORED_SEQ + 150_000,
            "event_type_1": "pipeline.",
        },
    )


def test_silver_quarantine_insert() -> None:
    """silver._apply: quarantine the batch's events that broke Silver rules, once each."""
    rows = silver._quarantine_rows(NO_EVENTS, EMPTY_BATCH, RUN_ID, NOW)
    stage = staged_on_databricks(silver.QUARANTINE, rows)
    assert_pinned(
        insert_missing(silver.QUARANTINE, stage, ["event_id"]),
        """
        INSERT INTO silver.quarantine (event_id, event_type, reasons, occurred_at,
          quarantined_at, run_id)
        SELECT stage_quarantine.event_id, stage_quarantine.event_type,
          stage_quarantine.reasons, stage_quarantine.occurred_at,
          stage_quarantine.quarantined_at, stage_quarantine.run_id
        FROM parquet.`/Volumes/main/ops/stage/grid/run-1/silver-quarantine-000001.parquet`
          AS stage_quarantine
        WHERE NOT (EXISTS (SELECT * FROM silver.quarantine
          WHERE silver.quarantine.event_id = stage_quarantine.event_id))
        """,
        {},
    )


def test_silver_event_ledger_insert() -> None:
    """silver._apply: record what Silver did with each event of the batch, once each."""
    rows = silver._ledger_rows(NO_EVENTS, EMPTY_BATCH, RUN_ID, NOW)
    stage = staged_on_databricks(silver.LEDGER, rows)
    assert_pinned(
        insert_missing(silver.LEDGER, stage, ["event_id"]),
        """
        INSERT INTO silver.event_ledger (event_id, ingest_seq, event_type, outcome, processed_at,
          run_id)
        SELECT stage_event_ledger.event_id, stage_event_ledger.ingest_seq,
          stage_event_ledger.event_type, stage_event_ledger.outcome,
          stage_event_ledger.processed_at, stage_event_ledger.run_id
        FROM parquet.`/Volumes/main/ops/stage/grid/run-1/silver-event_ledger-000001.parquet`
          AS stage_event_ledger
        WHERE NOT (EXISTS (SELECT * FROM silver.event_ledger
          WHERE silver.event_ledger.event_id = stage_event_ledger.event_id))
        """,
        {},
    )


def test_silver_delete_superseded_items() -> None:
    """silver._apply: drop lines of the batch's placed orders that are not from the latest
    placement."""
    stage = staged_on_databricks(Order.__table__, EMPTY_BATCH.orders)
    assert_pinned(
        silver_queries.delete_superseded_items(stage),
        """
        DELETE FROM silver.order_items
        WHERE silver.order_items.order_id IN (SELECT stage_orders.order_id
            FROM parquet.`/Volumes/main/ops/stage/grid/run-1/silver-orders-000001.parquet`
              AS stage_orders
            WHERE stage_orders.placed_event_id IS NOT NULL)
          AND NOT (EXISTS (SELECT * FROM silver.orders
            WHERE silver.orders.order_id = silver.order_items.order_id
              AND silver.orders.placed_event_id = silver.order_items.event_id))
        """,
        {},
    )


def test_silver_insert_current_items() -> None:
    """silver._apply: insert staged lines of each order's latest placement not there yet."""
    stage = staged_on_databricks(OrderItem.__table__, EMPTY_BATCH.order_items)
    assert_pinned(
        silver_queries.insert_current_items(stage),
        """
        INSERT INTO silver.order_items (order_id, line_number, product_id, quantity, unit_price,
          discount, event_id)
        SELECT stage_order_items.order_id, stage_order_items.line_number,
          stage_order_items.product_id, stage_order_items.quantity,
          stage_order_items.unit_price, stage_order_items.discount,
          stage_order_items.event_id
        FROM parquet.`/Volumes/main/ops/stage/grid/run-1/silver-order_items-000001.parquet`
          AS stage_order_items
        JOIN silver.orders ON silver.orders.order_id = stage_order_items.order_id
          AND silver.orders.placed_event_id = stage_order_items.event_id
        WHERE NOT (EXISTS (SELECT * FROM silver.order_items
          WHERE silver.order_items.order_id = stage_order_items.order_id
            AND silver.order_items.line_number = stage_order_items.line_number))
        """,
        {},
    )


def test_silver_cursor_merge() -> None:
    """silver._save_cursor: advance the consumer's cursor, never backwards."""
    recorder = recorded(lambda r: silver._save_cursor(r.conn, 99, NOW))

    (statement,) = recorder.statements
    assert_pinned(
        statement,
        """
        MERGE INTO silver.cursors AS t
        USING (SELECT :`param_1` AS consumer, :`param_2` AS last_ingest_seq,
          :`param_3` AS updated_at) AS s
        ON t.consumer = s.consumer
        WHEN MATCHED AND (t.last_ingest_seq < s.last_ingest_seq)
        THEN UPDATE SET last_ingest_seq = s.last_ingest_seq, updated_at = s.updated_at
        WHEN NOT MATCHED THEN INSERT (consumer, last_ingest_seq, updated_at)
          VALUES (s.consumer, s.last_ingest_seq, s.updated_at)
        """,
        {"param_1": silver.CONSUMER, "param_2": 99, "param_3": NOW},
    )


def test_silver_read_cursor() -> None:
    """silver.read_cursor (Silver step and the Bronze sensor): the consumer's last ingest_seq."""
    recorder = recorded(lambda r: silver.read_cursor(r.conn))

    (statement,) = recorder.statements
    assert_pinned(
        statement,
        """
        SELECT silver.cursors.last_ingest_seq FROM silver.cursors
        WHERE silver.cursors.consumer = :`consumer_1`
        """,
        {"consumer_1": silver.CONSUMER},
    )


# --- the pipeline's own events and table counts ---------------------------------------------


def test_pipeline_event_next_seq_and_insert() -> None:
    """pipeline_events.emit (every Silver/Gold write): next ingest_seq, then one event row."""
    emitted: list[str] = []
    recorder = recorded(
        lambda r: emitted.append(
            pipeline_events.emit(r.conn, "pipeline.table_written", {"rows": 3}, RUN_ID, NOW)
        )
    )

    next_seq, insert = recorder.statements
    assert_pinned(
        next_seq,
        """
        SELECT coalesce(max(bronze.events.ingest_seq), :`coalesce_2`) AS coalesce_1
        FROM bronze.events
        """,
        {"coalesce_2": 0},
    )
    (event_id,) = emitted
    assert_pinned(
        insert,
        # source_file and line_number are left out: NULL, as the columns are nullable.
        """
        INSERT INTO bronze.events (event_id, ingest_seq, event_type, occurred_at, ingested_at,
          source, payload, envelope_hash, run_id)
        VALUES (:`event_id`, :`ingest_seq`, :`event_type`, :`occurred_at`, :`ingested_at`,
          :`source`, :`payload`, :`envelope_hash`, :`run_id`)
        """,
        {
            "event_id": event_id,
            "ingest_seq": STORED_SEQ + 1,  # the next position after the stored last one
            "event_type": "pipeline.table_written",
            "occurred_at": NOW,
            "ingested_at": NOW,
            "source": pipeline_events.PIPELINE_SOURCE,
            "payload": '{"rows":3}',
            "envelope_hash": envelope_hash(
                {
                    "event_id": event_id,
                    "event_type": "pipeline.table_written",
                    "source": pipeline_events.PIPELINE_SOURCE,
                }
            ),
            "run_id": RUN_ID,
        },
    )


def test_pipeline_events_of_a_unit_of_work_cost_two_statements() -> None:
    """pipeline_events.emit_many (a Silver batch announces up to five tables): one read of the
    last position and one multi-row INSERT, with consecutive positions, whatever the count."""
    announced = [pipeline_events.written(f"silver.t{i}", i, RUN_ID, cursor=9) for i in range(5)]
    emitted: list[list[str]] = []
    recorder = recorded(
        lambda r: emitted.append(pipeline_events.emit_many(r.conn, announced, RUN_ID, NOW))
    )

    next_seq, insert = recorder.statements
    assert "max(bronze.events.ingest_seq)" in str(next_seq.compile(dialect=DATABRICKS))
    params = insert.compile(dialect=DATABRICKS).params
    assert [params[f"ingest_seq_m{i}"] for i in range(5)] == [STORED_SEQ + 1 + i for i in range(5)]
    assert [params[f"event_id_m{i}"] for i in range(5)] == emitted[0]
    assert len(set(emitted[0])) == 5
    assert [json.loads(params[f"payload_m{i}"])["table"] for i in range(5)] == [
        f"silver.t{i}" for i in range(5)
    ]
    assert len(params) <= MAX_PARAMS_PER_STATEMENT


def test_lakehouse_count() -> None:
    """Lakehouse.count (Gold step, table metadata, CLI): a table's row count."""
    recorder = recorded(lambda r: r.lakehouse.count(r.conn, EVENTS))

    (statement,) = recorder.statements
    assert_pinned(statement, "SELECT count(*) AS count_1 FROM bronze.events", {})
