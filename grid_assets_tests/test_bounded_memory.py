"""What keeps a run's memory flat as the lakehouse grows: no resident key indexes on DuckDB, a
capped buffer manager, and Silver reads bounded by arrival windows. Keys still hold, by the
pipeline's writes, and a check proves it."""

from __future__ import annotations

from pathlib import Path

import pytest
from databricks.sqlalchemy import DatabricksDialect
from sqlalchemy import insert, select, text
from sqlalchemy.schema import CreateTable

from grid_assets.config import (
    DUCKDB_MEMORY_LIMIT_VAR,
    DUCKDB_PATH_VAR,
    ConfigurationError,
)
from grid_assets.defs.bronze.checks import event_ids_unique
from grid_assets.defs.resources import lakehouse_resource
from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.silver import apply_new_events, read_cursor
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.lakehouse.duckdb import LakehouseMemoryError
from grid_assets.models import metadata
from grid_assets.models.bronze import Event
from grid_assets.models.silver import EventLedger
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.settings import load_settings
from grid_assets_tests.conftest import write_events


def _event(event_id: str, at: str, **payload: object) -> dict:
    return {
        "event_id": event_id,
        "event_type": "product.updated",
        "occurred_at": at,
        "payload": {"product_id": event_id, "category": "tools", "unit_price": "1.00", **payload},
    }


def test_duckdb_builds_no_key_index_but_the_models_keep_their_keys(lakehouse: Lakehouse) -> None:
    with lakehouse.connect() as conn:
        indexes = conn.execute(text("SELECT count(*) FROM duckdb_indexes()")).scalar_one()
        keys = conn.execute(
            text("SELECT count(*) FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'")
        ).scalar_one()
        event_id_nullable = conn.execute(
            text(
                "SELECT is_nullable FROM information_schema.columns "
                "WHERE table_schema = 'bronze' AND table_name = 'events' "
                "AND column_name = 'event_id'"
            )
        ).scalar_one()
    assert (indexes, keys) == (0, 0)
    assert event_id_nullable == "NO"  # the key columns stay NOT NULL
    keyed = [t.fullname for t in metadata.sorted_tables if t.primary_key.columns]
    assert {"bronze.events", "silver.event_ledger", "silver.orders"} <= set(keyed)
    ddl = str(CreateTable(Event.__table__).compile(dialect=DatabricksDialect()))
    assert "CONSTRAINT pk_events PRIMARY KEY (event_id)" in ddl


def test_the_grain_check_catches_a_duplicate_the_engine_let_in(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    write_events(tmp_path / "landing" / "a.ndjson", [_event("e1", "2026-01-01T00:00:00Z")])
    ingest_landing(lakehouse, tmp_path / "landing")
    resource = LakehouseResource(duckdb_path=str(lakehouse.engine.url.database))
    assert event_ids_unique(lakehouse=resource).passed
    with lakehouse.begin() as conn:
        stored = conn.execute(select(Event.__table__)).mappings().one()
        conn.execute(insert(Event.__table__).values({**stored, "ingest_seq": 99}))
    broken = event_ids_unique(lakehouse=resource)
    assert not broken.passed
    assert broken.metadata["duplicate_rows"].value == 1


def test_silver_reads_windows_across_gaps_and_pipeline_events(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    """Arrival positions have holes (duplicates skipped) and runs of the pipeline's own events;
    windows of 2 positions still read every GRID event once, in order."""
    landing = tmp_path / "landing"
    first = [_event(f"a{i}", f"2026-01-01T00:00:0{i}Z") for i in range(4)]
    write_events(landing / "1.ndjson", [first[0], first[1], first[1], first[0], *first[2:]])
    ingest_landing(lakehouse, landing)
    assert apply_new_events(lakehouse, batch_events=2).events_read == 4
    # Silver's pipeline.* events now sit between the first and second arrivals.
    write_events(landing / "2.ndjson", [_event("b0", "2026-01-02T00:00:00Z"), first[3]])
    ingest_landing(lakehouse, landing)
    second = apply_new_events(lakehouse, batch_events=2)
    assert second.events_read == 1
    with lakehouse.connect() as conn:
        ledger = EventLedger.__table__
        applied = conn.execute(select(ledger.c.event_id).order_by(ledger.c.ingest_seq)).scalars()
        assert list(applied) == ["a0", "a1", "a2", "a3", "b0"]
        last_grid = conn.execute(
            select(Event.__table__.c.ingest_seq).where(Event.__table__.c.event_id == "b0")
        ).scalar_one()
        assert read_cursor(conn) == last_grid
    assert apply_new_events(lakehouse, batch_events=2).events_read == 0


def engine_memory_limit(resource: LakehouseResource) -> str:
    """The memory limit a session of the resource's engine runs under, as DuckDB reports it."""
    with resource.get_lakehouse().connect() as conn:
        return conn.execute(text("SELECT current_setting('memory_limit')")).scalar_one()


def test_every_duckdb_session_runs_under_the_memory_limit(tmp_path: Path) -> None:
    # The documented default, 256MB, is 244.1 MiB.
    default = LakehouseResource(duckdb_path=str(tmp_path / "a.duckdb"))
    assert engine_memory_limit(default) == "244.1 MiB"
    small = LakehouseResource(duckdb_path=str(tmp_path / "b.duckdb"), duckdb_memory_limit="96MiB")
    assert engine_memory_limit(small) == "96.0 MiB"


def test_the_memory_limit_comes_from_the_environment(tmp_path: Path) -> None:
    db = {DUCKDB_PATH_VAR: str(tmp_path / "a.duckdb")}
    settings = load_settings({**db, DUCKDB_MEMORY_LIMIT_VAR: " 1GiB "})
    assert settings.duckdb_memory_limit == "1GiB"
    assert engine_memory_limit(lakehouse_resource(settings)) == "1.0 GiB"
    unset = load_settings({**db, DUCKDB_MEMORY_LIMIT_VAR: ""})
    assert engine_memory_limit(lakehouse_resource(unset)) == "244.1 MiB"


@pytest.mark.parametrize("value", ["lots", "256", "1;DROP TABLE x", "32MB", "2 G B"])
def test_an_unusable_memory_limit_fails_at_load(value: str) -> None:
    with pytest.raises(ConfigurationError, match=DUCKDB_MEMORY_LIMIT_VAR):
        load_settings({DUCKDB_MEMORY_LIMIT_VAR: value})
    with pytest.raises(ConfigurationError, match=DUCKDB_MEMORY_LIMIT_VAR):
        LakehouseResource(duckdb_path="unused.duckdb", duckdb_memory_limit=value).get_lakehouse()


def test_running_out_of_the_limit_names_the_variable(tmp_path: Path) -> None:
    lakehouse = LakehouseResource(
        duckdb_path=str(tmp_path / "small.duckdb"), duckdb_memory_limit="64MiB"
    ).get_lakehouse()
    too_big = text("SELECT length(string_agg(repeat('x', 100), '')) FROM range(2000000)")
    expected = f"64MiB limit.*{DUCKDB_MEMORY_LIMIT_VAR}"
    with pytest.raises(LakehouseMemoryError, match=expected), lakehouse.connect() as conn:
        conn.execute(too_big)  # one 200 MB string: nothing to spill
