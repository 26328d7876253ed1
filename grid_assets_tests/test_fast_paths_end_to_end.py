"""Tier 2: the whole pipeline gives the same lakehouse with its fast paths and without them.

Bronze, Silver and Gold are built twice from the same landing files (the generator's traffic with
its share of bad input, duplicates and conflicts, in several batches): once as `grid run` builds
them, once with the fast paths switched off (neither `envelope_fast.certify` nor `_plain_line`
proves a line, `silver_fast.certify` certifies nothing), so that every line and every event goes
through the Python definitions.
Every table must hold the same rows, every column compared but run ids and write-time stamps.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import DateTime, Table, select

from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.gold import GOLD_TABLES, rebuild
from grid_assets.etl.silver import apply_new_events
from grid_assets.ingest import chunks, envelope
from grid_assets.ingest.envelope_fast import Certified
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models import metadata
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.transform import silver_fast
from grid_sim import generate_traffic

# Written when the pipeline writes, not taken from an event: they differ between any two runs.
EVENT_INSTANTS = {"occurred_at", "placed_at", "order_date"}
EVENT_UPDATED_AT = {"silver.products", "silver.orders"}


def _compared(table: Table) -> list[str]:
    names = []
    for column in table.c:
        if column.name == "run_id":
            continue
        if isinstance(column.type, DateTime) and not (
            column.name in EVENT_INSTANTS
            or (column.name == "updated_at" and table.fullname in EVENT_UPDATED_AT)
        ):
            continue
        names.append(column.name)
    return names


def _tables(lakehouse: Lakehouse) -> dict[str, list[tuple]]:
    events = metadata.tables["bronze.events"]
    found = {}
    with lakehouse.connect() as conn:
        for table in metadata.sorted_tables:
            query = select(*(table.c[name] for name in _compared(table)))
            if table is events:  # the pipeline's own events carry a fresh id each run
                query = query.where(~events.c.event_type.startswith("pipeline."))
            found[table.fullname] = sorted(conn.execute(query).all(), key=repr)
    return found


def _build(landing: Path, db: Path) -> dict[str, list[tuple]]:
    lakehouse = LakehouseResource(duckdb_path=str(db)).get_lakehouse()
    lakehouse.create_tables()
    ingest_landing(lakehouse, landing, batch_lines=700)
    apply_new_events(lakehouse, batch_events=900)
    for name in GOLD_TABLES:
        rebuild(lakehouse, name)
    return _tables(lakehouse)


def test_fast_paths_change_no_row_of_any_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    generate_traffic(landing, n_events=4000, seed=5, n_files=3, bad_share=0.05)
    fast = _build(landing, tmp_path / "fast.duckdb")

    certify = silver_fast.certify
    certified: list[int] = []

    def certifies_nothing(events: pa.Table) -> silver_fast.Certified:
        certified.append(len(certify(events).positions()))  # what it would have taken
        return certify(events.slice(0, 0))

    monkeypatch.setattr(chunks, "certify", lambda lines: Certified.none())
    monkeypatch.setattr(envelope, "_plain_line", lambda raw: None)
    monkeypatch.setattr(silver_fast, "certify", certifies_nothing)
    exact = _build(landing, tmp_path / "exact.duckdb")

    assert sum(certified) > 3000  # the fast run did take most events the fast way
    for name in ("bronze.events", "bronze.rejected_events", "silver.quarantine"):
        assert fast[name], name  # bad input and good input were both there to compare
    for name in ("silver.order_items", "gold.revenue_by_category", "gold.daily_revenue"):
        assert fast[name], name
    assert fast.keys() == exact.keys()
    for name in fast:
        assert fast[name] == exact[name], name
