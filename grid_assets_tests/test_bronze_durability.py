"""Bronze against what an operator meets: files cut short, rewritten, unreadable or hostile, and
ingestion stopped at any batch boundary. Nothing read may be lost, and nothing unread recorded."""

from __future__ import annotations

import gzip
import json
import os
import time
import zlib
from pathlib import Path

import pytest
from sqlalchemy import select

from grid_assets.etl import bronze
from grid_assets.etl.bronze import ingest_landing
from grid_assets.ingest.landing import (
    COMPLETE,
    PARTIAL_LINE,
    REWRITTEN,
    TAIL_QUIET_S,
    UNREADABLE,
)
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.bronze import Event, IngestedFile, RejectedEvent, RejectedFile
from grid_assets.queries.checks import held_landing_files

EVENTS = Event.__table__
REJECTED = RejectedEvent.__table__
FILES = IngestedFile.__table__
REJECTED_FILES = RejectedFile.__table__


def event(n: int, **payload) -> str:
    return json.dumps(
        {
            "event_id": f"e-{n:05d}",
            "event_type": "system.heartbeat",
            "occurred_at": f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}Z",
            "payload": payload or {"n": n},
        }
    )


def lines(first: int, last: int) -> str:
    return "".join(event(n) + "\n" for n in range(first, last + 1))


def event_ids(lh: Lakehouse) -> list[str]:
    with lh.connect() as conn:
        return list(conn.execute(select(EVENTS.c.event_id).order_by(EVENTS.c.ingest_seq)).scalars())


def rejected(lh: Lakehouse) -> list[tuple]:
    with lh.connect() as conn:
        query = select(REJECTED.c.source_file, REJECTED.c.line_number, REJECTED.c.reason)
        return [tuple(r) for r in conn.execute(query.order_by(*query.selected_columns))]


def file_row(lh: Lakehouse, name: str):
    with lh.connect() as conn:
        return conn.execute(select(FILES).where(FILES.c.source_file == name)).one()


def rejected_files(lh: Lakehouse) -> list[tuple]:
    with lh.connect() as conn:
        query = select(REJECTED_FILES.c.source_file, REJECTED_FILES.c.reason)
        return [tuple(r) for r in conn.execute(query.order_by(*query.selected_columns))]


def test_a_crash_between_batches_resumes_where_the_last_commit_left_off(
    lakehouse: Lakehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.ndjson").write_text(lines(1, 35))  # batches of 10, 10 and the last 15
    with gzip.open(landing / "b.ndjson.gz", "wt") as handle:
        handle.write(lines(36, 60))
    real_write = bronze._write_batch
    writes = 0

    def crash_on_third(*args, **kwargs):
        nonlocal writes
        writes += 1
        if writes == 3:
            raise OSError(28, "No space left on device")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(bronze, "_write_batch", crash_on_third)
    with pytest.raises(OSError, match="No space left"):
        ingest_landing(lakehouse, landing, batch_lines=10)
    # Two batches of a.ndjson committed, and the progress row says exactly that.
    assert event_ids(lakehouse) == [f"e-{n:05d}" for n in range(1, 21)]
    row = file_row(lakehouse, "a.ndjson")
    assert (row.lines_read, row.offset_bytes) == (20, len(lines(1, 20).encode()))
    monkeypatch.setattr(bronze, "_write_batch", real_write)
    result = ingest_landing(lakehouse, landing, batch_lines=10)
    assert event_ids(lakehouse) == [f"e-{n:05d}" for n in range(1, 61)]
    assert result.lines_read == 40
    assert rejected(lakehouse) == []
    assert file_row(lakehouse, "b.ndjson.gz").state == COMPLETE


def test_a_line_without_its_newline_waits_until_complete(lakehouse: Lakehouse, tmp_path: Path):
    landing = tmp_path / "landing"
    landing.mkdir()
    path = landing / "a.ndjson"
    half = event(4)[:30]
    path.write_text(lines(1, 3) + half)
    result = ingest_landing(lakehouse, landing)
    assert (result.lines_read, len(event_ids(lakehouse)), rejected(lakehouse)) == (3, 3, [])
    row = file_row(lakehouse, "a.ndjson")
    assert (row.state, row.tail_bytes, row.lines_read) == (PARTIAL_LINE, 30, 3)
    with path.open("a") as handle:
        handle.write(event(4)[30:] + "\n" + event(5) + "\n")
    result = ingest_landing(lakehouse, landing)
    assert result.lines_read == 2
    assert event_ids(lakehouse) == [f"e-{n:05d}" for n in range(1, 6)]
    assert rejected(lakehouse) == []
    assert file_row(lakehouse, "a.ndjson").state == COMPLETE


def test_an_unterminated_last_line_is_taken_once_the_file_stops_changing(
    lakehouse: Lakehouse, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.ndjson").write_text(lines(1, 2) + event(3))
    ingest_landing(lakehouse, landing)
    assert len(event_ids(lakehouse)) == 2
    ingest_landing(lakehouse, landing)  # unchanged, but written moments ago: not yet
    assert len(event_ids(lakehouse)) == 2
    quiet = time.time() - TAIL_QUIET_S - 1
    os.utime(landing / "a.ndjson", (quiet, quiet))
    ingest_landing(lakehouse, landing)  # same size as the run that saw it, and left alone
    assert len(event_ids(lakehouse)) == 3
    row = file_row(lakehouse, "a.ndjson")
    assert (row.state, row.lines_read, row.tail_bytes) == (COMPLETE, 3, 0)
    assert ingest_landing(lakehouse, landing).files_read == 0


def test_a_gzip_stream_that_ended_completes_its_last_line(lakehouse: Lakehouse, tmp_path: Path):
    landing = tmp_path / "landing"
    landing.mkdir()
    with gzip.open(landing / "a.ndjson.gz", "wt") as handle:
        handle.write(lines(1, 2) + event(3))
    ingest_landing(lakehouse, landing)
    assert len(event_ids(lakehouse)) == 3


def test_a_truncated_gzip_keeps_its_complete_lines_and_is_recorded(
    lakehouse: Lakehouse, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    whole = gzip.compress(lines(1, 3000).encode())
    (landing / "a.ndjson.gz").write_bytes(whole[: len(whole) // 2])
    (landing / "b.ndjson").write_text(lines(5000, 5001))
    result = ingest_landing(lakehouse, landing, batch_lines=700)
    ids = event_ids(lakehouse)
    kept = [i for i in ids if i < "e-05000"]
    # Every complete line that can be decoded before the cut is kept, none lost in a buffer.
    decodable = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(whole[: len(whole) // 2])
    assert 0 < len(kept) == decodable.count(b"\n") < 3000
    assert kept == [f"e-{n:05d}" for n in range(1, len(kept) + 1)]
    assert ids[-2:] == ["e-05000", "e-05001"]  # the run went on with the next file
    assert result.files_rejected == {"a.ndjson.gz": "truncated_gzip"}
    assert rejected_files(lakehouse) == [("a.ndjson.gz", "truncated_gzip")]
    assert file_row(lakehouse, "a.ndjson.gz").state == UNREADABLE
    with lakehouse.connect() as conn:
        assert [r.source_file for r in conn.execute(held_landing_files())] == ["a.ndjson.gz"]
    # Unchanged, it is not reopened; once whole, it is read on from where it stopped.
    assert ingest_landing(lakehouse, landing).files_read == 0
    (landing / "a.ndjson.gz").write_bytes(whole)
    ingest_landing(lakehouse, landing)
    assert len(event_ids(lakehouse)) == 3002
    assert rejected(lakehouse) == []
    with lakehouse.connect() as conn:
        assert conn.execute(held_landing_files()).all() == []


def test_entries_that_are_not_files_are_recorded_not_opened(lakehouse: Lakehouse, tmp_path: Path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a-dir.ndjson").mkdir()
    os.mkfifo(landing / "b-fifo.ndjson")  # opening it would block forever
    (landing / "c-link.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (landing / "d.ndjson").write_text(lines(1, 2))
    result = ingest_landing(lakehouse, landing)
    assert len(event_ids(lakehouse)) == 2
    assert result.files_rejected == {
        "a-dir.ndjson": "is_a_directory",
        "b-fifo.ndjson": "not_a_regular_file",
        "c-link.jsonl": "broken_link",
    }
    with lakehouse.connect() as conn:
        assert len(conn.execute(held_landing_files()).all()) == 3
    ingest_landing(lakehouse, landing)  # recorded once, however often it is seen
    assert len(rejected_files(lakehouse)) == 3
    (landing / "a-dir.ndjson").rmdir()
    (landing / "b-fifo.ndjson").unlink()
    (landing / "c-link.jsonl").unlink()
    ingest_landing(lakehouse, landing)
    with lakehouse.connect() as conn:
        assert conn.execute(held_landing_files()).all() == []
    assert len(rejected_files(lakehouse)) == 3  # the history stays


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_a_rewritten_or_shrunk_file_is_held_with_its_reason(
    lakehouse: Lakehouse, tmp_path: Path, compressed: bool
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    name = "a.ndjson.gz" if compressed else "a.ndjson"
    path = landing / name

    def write(text: str) -> None:
        path.write_bytes(gzip.compress(text.encode()) if compressed else text.encode())

    write(lines(1, 10))
    ingest_landing(lakehouse, landing)
    write(lines(1, 10).replace("e-00003", "x-00003") + lines(11, 12))  # changed, and longer
    ingest_landing(lakehouse, landing)
    assert event_ids(lakehouse) == [f"e-{n:05d}" for n in range(1, 11)]
    assert file_row(lakehouse, name).state == REWRITTEN
    assert rejected_files(lakehouse) == [(name, "file_rewritten")]
    write(lines(1, 4))
    ingest_landing(lakehouse, landing)
    assert rejected_files(lakehouse) == [(name, "file_rewritten"), (name, "file_shrank")]
    row = file_row(lakehouse, name)
    assert (row.state, row.lines_read) == (REWRITTEN, 10)  # what Bronze holds, unchanged
    write(lines(1, 12))  # restored and appended to: read on from where it stopped
    ingest_landing(lakehouse, landing)
    assert event_ids(lakehouse) == [f"e-{n:05d}" for n in range(1, 13)]
    assert file_row(lakehouse, name).state == COMPLETE


def test_hostile_lines_are_rejected_with_their_defect_and_stop_nothing(
    lakehouse: Lakehouse, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    base = '"event_type":"x","occurred_at":"2026-01-01T00:00:00Z"'
    hostile = [
        '{"event_id":"\\ud800",' + base + ',"payload":{}}',
        '{"event_id":"h-2","source":"a\\udfff",' + base + ',"payload":{}}',
        '{"event_id":"h-3","extra":1e999999999,' + base + ',"payload":{}}',
        '{"event_id":"h-4","extra":' + "9" * 5000 + "," + base + ',"payload":{}}',
        '{"event_id":"h-5",' + base + ',"payload":{"n":1e99999999999999999999}}',
        "[" * 100_000,
        "{" + '"a":' * 50_000,
    ]
    (landing / "a.ndjson").write_bytes(
        b"\xef\xbb\xbf" + "\n".join([*hostile, event(1)]).encode() + b"\n"
    )
    (landing / "b.ndjson").write_text(event(2) + "\n")
    ingest_landing(lakehouse, landing)
    assert event_ids(lakehouse) == ["e-00001", "e-00002"]
    reasons = [reason for _, _, reason in rejected(lakehouse)]
    assert reasons[:5] == [
        "invalid_unicode",
        "invalid_unicode",
        "number_too_large",
        "number_too_large",
        "number_too_large",
    ]
    assert len(reasons) == len(hostile), reasons  # the two deeply nested lines too
    assert all(r.startswith("invalid_json") for r in reasons[5:]), reasons


def test_a_leading_byte_order_mark_is_ignored(lakehouse: Lakehouse, tmp_path: Path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.ndjson").write_bytes(b"\xef\xbb\xbf" + lines(1, 2).encode())
    ingest_landing(lakehouse, landing)
    assert event_ids(lakehouse) == ["e-00001", "e-00002"]
    assert rejected(lakehouse) == []


def test_an_earlier_layout_is_rebuilt_where_it_can_be(tmp_path: Path) -> None:
    """A lakehouse from before byte offsets: its progress table is rebuilt, so Bronze reads the
    landing files again and recognises every stored line; Gold is rebuilt; anything else stops
    with one error that says what to do."""
    import duckdb

    from grid_assets.lakehouse.core import LakehouseLayoutError
    from grid_assets.resources.lakehouse import LakehouseResource

    path = tmp_path / "old.duckdb"
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "a.ndjson").write_text(lines(1, 3) + "not json\n")
    lh = LakehouseResource(duckdb_path=str(path)).get_lakehouse()
    lh.create_tables()
    ingest_landing(lh, landing)
    lh.engine.dispose()
    raw = duckdb.connect(str(path))
    raw.execute("DROP TABLE bronze.ingested_files")
    raw.execute(
        "CREATE TABLE bronze.ingested_files (source_file VARCHAR, lines_read BIGINT, "
        "size_bytes BIGINT, updated_at TIMESTAMPTZ, run_id VARCHAR)"
    )
    raw.execute("INSERT INTO bronze.ingested_files VALUES ('a.ndjson', 4, 999, now(), 'r')")
    raw.execute("ALTER TABLE gold.daily_revenue DROP COLUMN currency")
    raw.close()
    lh.create_tables()
    result = ingest_landing(lh, landing)
    assert (result.events_inserted, result.duplicates, result.rejected) == (0, 3, 1)
    assert event_ids(lh) == ["e-00001", "e-00002", "e-00003"]
    assert rejected(lh) == [("a.ndjson", 4, "invalid_json: Expecting value")]
    assert file_row(lh, "a.ndjson").state == COMPLETE
    lh.engine.dispose()
    raw = duckdb.connect(str(path))
    raw.execute("ALTER TABLE silver.orders DROP COLUMN currency")
    raw.close()
    with pytest.raises(LakehouseLayoutError, match=r"silver\.orders .* lacks currency"):
        lh.create_tables()
