"""Tier 2: a backlog applied in windows certified inside DuckDB (`etl.silver_backlog`) gives the
rows the batch loop gives, rolls back whole, and is safe to apply again.

The same Bronze (the generator's traffic with its bad input, plus the hostile payloads of
`test_silver_hostile_payloads`) is copied twice; Silver is built once by the batch loop alone
and once by windows (several, with the Python grammar's share read in chunks, and a tail left
to the batches), and every Silver table is compared, all columns but write-time stamps and run
ids.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import DateTime, delete, select

from grid_assets.etl import silver_backlog
from grid_assets.etl.bronze import ingest_landing
from grid_assets.etl.silver import SILVER_STATE, SilverResult, apply_new_events
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.silver import Cursor
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets_tests.conftest import write_events
from grid_assets_tests.test_silver_hostile_payloads import CLEAN, HOSTILE
from grid_sim import generate_traffic

EVENT_INSTANTS = {"occurred_at", "placed_at", "updated_at"}  # taken from events, so compared


def by_batches(lakehouse: Lakehouse) -> SilverResult:
    return apply_new_events(lakehouse, batch_events=700, backlog_from=10**9)


def by_windows(lakehouse: Lakehouse) -> SilverResult:
    """Windows of 1,500 positions while more than 1,000 are left, the Python grammar's share
    in chunks of 300, the rest in batches of 300."""
    return apply_new_events(lakehouse, batch_events=300, backlog_from=1000, window_events=1500)


def _silver(lakehouse: Lakehouse) -> dict[str, list[tuple]]:
    found = {}
    with lakehouse.connect() as conn:
        for table in SILVER_STATE:
            columns = [
                c
                for c in table.c
                if c.name != "run_id"
                and (not isinstance(c.type, DateTime) or c.name in EVENT_INSTANTS)
            ]
            found[table.fullname] = sorted(conn.execute(select(*columns)).all(), key=repr)
    return found


@pytest.fixture
def bronze(tmp_path: Path) -> Path:
    """A lakehouse file holding Bronze only: 4,000 generated lines and the hostile payloads."""
    landing = tmp_path / "landing"
    generate_traffic(landing, n_events=4000, seed=5, n_files=2, bad_share=0.05)
    write_events(landing / "events-0003.ndjson", [*CLEAN, *HOSTILE])
    db = tmp_path / "source.duckdb"
    lakehouse = LakehouseResource(duckdb_path=str(db)).get_lakehouse()
    lakehouse.create_tables()
    ingest_landing(lakehouse, landing)
    lakehouse.engine.dispose()
    return db


def _copy(bronze: Path, name: str) -> Lakehouse:
    db = bronze.with_name(name)
    shutil.copy(bronze, db)
    return LakehouseResource(duckdb_path=str(db)).get_lakehouse()


def _result(result: SilverResult) -> tuple:
    return result.events_read, result.cursor, result.outcomes, result.rows_staged


def test_windows_give_the_batch_loops_rows(bronze: Path) -> None:
    batches, windows = _copy(bronze, "batches.duckdb"), _copy(bronze, "windows.duckdb")
    batched = by_batches(batches)
    calls: list[tuple[int, int]] = []
    apply_window = silver_backlog.apply_window

    def counted(lakehouse, conn, after, upto, *args):
        calls.append((after, upto))
        return apply_window(lakehouse, conn, after, upto, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(silver_backlog, "apply_window", counted)
        windowed = by_windows(windows)
    # Several windows, then a tail of at most `backlog_from` positions for the batches.
    assert len(calls) >= 2 and calls[0][0] == 0
    assert all(upto - after == 1500 for after, upto in calls)
    assert windowed.cursor - calls[-1][1] <= 1000
    assert batched.outcomes.get("quarantined", 0) > len(HOSTILE)
    assert _result(windowed) == _result(batched)
    assert _silver(windows) == _silver(batches)


def _python_fails(patch: pytest.MonkeyPatch) -> None:
    def broken(events):
        raise RuntimeError("a defect of the Python grammar")

    patch.setattr(silver_backlog, "build_silver_batch", broken)


def _engine_fails(patch: pytest.MonkeyPatch) -> None:
    # A statement the engine refuses halfway through the window (after the certification).
    patch.setattr(silver_backlog, "_UNPROVEN", "SELECT no_such_column FROM window_events")


@pytest.mark.parametrize(
    ("failure", "message"),
    [(_python_fails, "a defect"), (_engine_fails, "no_such_column")],
    ids=["python", "engine"],
)
def test_a_window_that_fails_writes_nothing(bronze: Path, failure, message: str) -> None:
    lakehouse = _copy(bronze, "windows.duckdb")
    with pytest.MonkeyPatch.context() as patch:
        failure(patch)
        # The failure itself is what surfaces, not an error of the clean-up after it.
        with pytest.raises(Exception, match=message):
            by_windows(lakehouse)
    assert all(rows == [] for rows in _silver(lakehouse).values())
    with lakehouse.connect() as conn:
        assert conn.execute(select(Cursor.__table__)).all() == []
    # Nothing was left behind that stops the next run.
    by_windows(lakehouse)
    assert _silver(lakehouse) == _silver(_built_by_batches(bronze))


def _built_by_batches(bronze: Path) -> Lakehouse:
    lakehouse = _copy(bronze, "batches.duckdb")
    by_batches(lakehouse)
    return lakehouse


def test_windows_applied_again_after_a_lost_cursor_write_nothing_twice(bronze: Path) -> None:
    lakehouse = _copy(bronze, "windows.duckdb")
    first = by_windows(lakehouse)
    before = _silver(lakehouse)
    with lakehouse.begin() as conn:
        conn.execute(delete(Cursor.__table__))
    again = by_windows(lakehouse)
    assert again.events_read == first.events_read
    assert _silver(lakehouse) == before
