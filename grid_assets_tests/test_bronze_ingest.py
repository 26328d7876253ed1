"""Tier 2: Bronze ingestion against a throwaway DuckDB file."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from grid_assets.etl.bronze import ingest_landing
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.bronze import Event, IngestedFile, RejectedEvent
from grid_assets_tests.conftest import write_events

EVENTS = Event.__table__
REJECTED = RejectedEvent.__table__


def ev(event_id: str, minute: int = 0, **payload: object) -> dict:
    return {
        "event_id": event_id,
        "event_type": "product.created",
        "occurred_at": f"2026-01-01T00:{minute:02d}:00Z",
        "source": "grid-web",
        "payload": {"product_id": "P1", "category": "c", "unit_price": "1.00", **payload},
    }


def events(lh: Lakehouse) -> list[tuple]:
    with lh.connect() as conn:
        return conn.execute(
            select(
                EVENTS.c.event_id, EVENTS.c.payload, EVENTS.c.source_file, EVENTS.c.line_number
            ).order_by(EVENTS.c.ingest_seq)
        ).all()


def rejected(lh: Lakehouse) -> list[tuple]:
    with lh.connect() as conn:
        return conn.execute(
            select(
                REJECTED.c.source_file,
                REJECTED.c.line_number,
                REJECTED.c.reason,
                REJECTED.c.raw_line,
            ).order_by(REJECTED.c.source_file, REJECTED.c.line_number)
        ).all()


@pytest.mark.parametrize("batch_lines", [2, 50_000])
def test_duplicates_conflicts_and_bad_lines(
    tmp_path: Path, lakehouse: Lakehouse, batch_lines: int
) -> None:
    landing = tmp_path / "landing"
    same_again = json.dumps({k: ev("a")[k] for k in reversed(list(ev("a")))}, indent=None)
    write_events(landing / "01.ndjson", [ev("a"), "", "{oops", ev("b"), same_again])
    write_events(landing / "02.jsonl", [ev("a", unit_price="9.99"), "[1]", ev("c")])

    result = ingest_landing(lakehouse, landing, run_id="r1", batch_lines=batch_lines)

    assert [r[0] for r in events(lakehouse)] == ["a", "b", "c"]
    assert result.events_inserted == 3
    assert result.duplicates == 1
    assert result.blank_lines == 1
    assert [(f, n, reason.split(":")[0]) for f, n, reason, _ in rejected(lakehouse)] == [
        ("01.ndjson", 3, "invalid_json"),
        ("02.jsonl", 1, "event_id_conflict"),
        ("02.jsonl", 2, "not_a_json_object"),
    ]
    conflict = rejected(lakehouse)[1]
    assert json.loads(conflict[3]) == ev("a", unit_price="9.99")  # kept verbatim


def test_payload_is_stored_byte_for_byte(tmp_path: Path, lakehouse: Lakehouse) -> None:
    payload = '{"product_id": "P1",   "category":"c", "unit_price": 10.500000, "x": "é"}'
    line = (
        '{"event_id":"p","event_type":"product.created",'
        f'"occurred_at":"2026-01-01T00:00:00Z","payload":{payload}}}'
    )
    write_events(tmp_path / "l" / "a.ndjson", [line])
    ingest_landing(lakehouse, tmp_path / "l")
    assert events(lakehouse)[0][1] == payload


def test_gzip_incremental_and_idempotent(tmp_path: Path, lakehouse: Lakehouse) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    with gzip.open(landing / "01.ndjson.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(json.dumps(ev(f"g{i}")) for i in range(5)) + "\n")
    plain = write_events(landing / "02.ndjson", [ev("p0"), "bad line"])

    first = ingest_landing(lakehouse, landing, run_id="r1")
    assert first.events_inserted == 6 and first.rejected == 1

    before = (events(lakehouse), rejected(lakehouse))
    again = ingest_landing(lakehouse, landing, run_id="r2")
    assert again.files_read == 0 and again.lines_read == 0
    assert (events(lakehouse), rejected(lakehouse)) == before

    with plain.open("a", encoding="utf-8") as handle:  # GRID appends to an open file
        handle.write(json.dumps(ev("p1")) + "\n")
    write_events(landing / "03.ndjson", [ev("n0")])
    third = ingest_landing(lakehouse, landing, run_id="r3")
    assert third.lines_read == 2  # only the new line and the new file
    assert [r[0] for r in events(lakehouse)][-2:] == ["p1", "n0"]
    assert [(r[2], r[3]) for r in events(lakehouse) if r[0] == "p1"] == [("02.ndjson", 3)]


def test_lost_progress_is_harmless(tmp_path: Path, lakehouse: Lakehouse) -> None:
    """If a run dies after writing events but before saving its position, redoing is a no-op."""
    landing = tmp_path / "landing"
    write_events(landing / "01.ndjson", [ev("a"), "nope", ev("b")])
    ingest_landing(lakehouse, landing)
    before = (events(lakehouse), rejected(lakehouse))
    with lakehouse.begin() as conn:
        conn.execute(IngestedFile.__table__.delete())
    redo = ingest_landing(lakehouse, landing)
    assert redo.events_inserted == 0 and redo.duplicates == 2
    assert (events(lakehouse), rejected(lakehouse)) == before


def test_invalid_utf8_is_rejected_and_kept(tmp_path: Path, lakehouse: Lakehouse) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "01.ndjson").write_bytes(
        b'{"event_id": "\xff"}\n' + json.dumps(ev("ok")).encode() + b"\n"
    )
    result = ingest_landing(lakehouse, landing)
    assert result.events_inserted == 1
    [(file, line, reason, raw)] = rejected(lakehouse)
    assert (file, line, reason) == ("01.ndjson", 1, "invalid_utf8")
    assert "\\xff" in raw


def test_ingest_seq_follows_runs_then_files_then_lines(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    landing = tmp_path / "landing"
    write_events(landing / "b.ndjson", [ev("b1"), ev("b2")])
    write_events(landing / "a.ndjson", [ev("a1")])
    ingest_landing(lakehouse, landing, batch_lines=1)
    write_events(landing / "0.ndjson", [ev("z")])  # sorts first, but arrives in a later run
    ingest_landing(lakehouse, landing)
    assert [r[0] for r in events(lakehouse)] == ["a1", "b1", "b2", "z"]
