"""Only complete lines are consumed: a landing file may be read while it is being written.

A final line without its newline is not yet a line: it is neither ingested, rejected nor counted,
and is left for a later run. A plain file's final line is taken as complete once a run finds the
file the same size as the previous run that saw it and untouched for `TAIL_QUIET_S` (the writer
has stopped); a gzipped file's, once its gzip stream has ended properly.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from grid_assets.etl.bronze import BronzeResult, ingest_landing
from grid_assets.ingest.landing import PARTIAL_LINE, TAIL_QUIET_S, FileRead, scan_landing
from grid_assets.lakehouse.core import Lakehouse
from grid_assets.models.bronze import Event, IngestedFile, RejectedEvent

EVENTS = Event.__table__
REJECTED = RejectedEvent.__table__
FILES = IngestedFile.__table__


def line(n: int, event_type: str = "product.created") -> str:
    if event_type == "order.placed":
        item = {"product_id": "P-1", "quantity": 1, "unit_price": "2.50"}
        payload: dict = {"order_id": f"O-{n}", "items": [item]}
    else:
        payload = {"product_id": f"P-{n}", "category": "Bakery", "unit_price": "1.25"}
    return json.dumps(
        {
            "event_id": f"e-{n}",
            "event_type": event_type,
            "occurred_at": f"2026-01-05T10:{n % 60:02d}:00Z",
            "source": "grid-test",
            "payload": payload,
        },
        separators=(",", ":"),
    )


def grid_events(lh: Lakehouse) -> list[tuple[str, str | None, int | None]]:
    """(event_id, source_file, line_number) of every GRID event, in arrival order."""
    with lh.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(EVENTS.c.event_id, EVENTS.c.source_file, EVENTS.c.line_number)
                .where(~EVENTS.c.event_type.startswith("pipeline."))
                .order_by(EVENTS.c.ingest_seq)
            )
        ]


def rejected(lh: Lakehouse) -> list[tuple]:
    with lh.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                select(REJECTED.c.source_file, REJECTED.c.line_number, REJECTED.c.reason)
            )
        ]


def lines_recorded(lh: Lakehouse) -> dict[str, int]:
    with lh.connect() as conn:
        return dict(conn.execute(select(FILES.c.source_file, FILES.c.lines_read)).all())


def test_a_torn_last_line_waits_for_its_newline(tmp_path: Path, lakehouse: Lakehouse) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    path = landing / "events.ndjson"
    fourth = line(4)
    half = len(fourth) // 2
    path.write_text("".join(line(n) + "\n" for n in (1, 2, 3)) + fourth[:half], encoding="utf-8")

    first = ingest_landing(lakehouse, landing)

    assert rejected(lakehouse) == [], "the torn line was rejected instead of left for later"
    assert grid_events(lakehouse) == [(f"e-{n}", "events.ndjson", n) for n in (1, 2, 3)]
    assert first.lines_read == 3
    assert first.rejected == 0

    with path.open("a", encoding="utf-8") as handle:
        handle.write(fourth[half:] + "\n" + line(5) + "\n")
    second = ingest_landing(lakehouse, landing)

    assert rejected(lakehouse) == []
    assert grid_events(lakehouse) == [(f"e-{n}", "events.ndjson", n) for n in range(1, 6)]
    assert second.lines_read == 2
    assert lines_recorded(lakehouse) == {"events.ndjson": 5}


def test_a_last_line_that_never_gets_its_newline_is_taken_once_the_file_stops_growing(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "events.jsonl").write_text(
        "".join(line(n) + "\n" for n in (1, 2, 3)) + line(4), encoding="utf-8"
    )

    first = ingest_landing(lakehouse, landing)
    assert [e for e, _, _ in grid_events(lakehouse)] == ["e-1", "e-2", "e-3"], (
        "a final line without its newline was taken before the file was seen to stop growing"
    )
    assert (first.lines_read, first.rejected) == (3, 0)

    again = ingest_landing(lakehouse, landing)  # unchanged, but modified moments ago: wait
    assert (again.lines_read, len(grid_events(lakehouse))) == (0, 3)

    quiet = time.time() - TAIL_QUIET_S - 1
    os.utime(landing / "events.jsonl", (quiet, quiet))  # left alone since, as a stopped writer
    second = ingest_landing(lakehouse, landing)  # same size as the run before: complete
    assert grid_events(lakehouse)[-1] == ("e-4", "events.jsonl", 4)
    assert len(grid_events(lakehouse)) == 4
    assert (second.lines_read, second.rejected) == (1, 0)

    third = ingest_landing(lakehouse, landing)
    assert len(grid_events(lakehouse)) == 4
    assert third.lines_read == 0
    assert rejected(lakehouse) == []
    assert lines_recorded(lakehouse) == {"events.jsonl": 4}


def test_a_gzip_file_whose_stream_ended_has_a_complete_last_line(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    with gzip.open(landing / "events.ndjson.gz", "wt", encoding="utf-8") as handle:
        handle.write("".join(line(n) + "\n" for n in (1, 2)) + line(3))

    result = ingest_landing(lakehouse, landing)

    assert [e for e, _, _ in grid_events(lakehouse)] == ["e-1", "e-2", "e-3"]
    assert (result.lines_read, result.rejected) == (3, 0)
    assert rejected(lakehouse) == []


def test_a_gzip_file_still_being_written_yields_its_complete_lines_then_the_rest(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    third = line(3)
    with (landing / "events.ndjson.gz").open("wb") as raw:
        writer = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)
        writer.write(("".join(line(n) + "\n" for n in (1, 2)) + third[:20]).encode())
        writer.flush(zlib.Z_SYNC_FLUSH)  # readable so far; the stream has not ended
        raw.flush()

        ingest_landing(lakehouse, landing)
        assert [e for e, _, _ in grid_events(lakehouse)] == ["e-1", "e-2"]
        assert rejected(lakehouse) == []

        writer.write((third[20:] + "\n" + line(4) + "\n").encode())
        writer.close()

    ingest_landing(lakehouse, landing)
    assert grid_events(lakehouse) == [(f"e-{n}", "events.ndjson.gz", n) for n in range(1, 5)]
    assert rejected(lakehouse) == []


@pytest.mark.parametrize("compressed", [False, True])
def test_the_rest_of_a_line_appended_during_a_read_is_not_taken_for_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compressed: bool
) -> None:
    """A reader reaching the end of a line still being written while the writer appends the rest
    of it at that very moment must never hand `rest\n` over as a line of its own (nor count the
    fragment before it): the race `test_lines_written_while_ingesting_are_each_ingested_once`
    met by chance, made certain here. A plain file's reader stops at the end of what is written
    (a short read); a gzip's reads on, and the rest completes the line."""
    landing = tmp_path / "landing"
    landing.mkdir()
    first, torn = line(1), line(2)
    name = "events.ndjson.gz" if compressed else "events.ndjson"
    path = landing / name
    raw = path.open("wb")
    sink = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if compressed else raw

    def write(text: str) -> None:
        sink.write(text.encode())
        if compressed:
            sink.flush(zlib.Z_SYNC_FLUSH)  # type: ignore[call-arg]
        raw.flush()

    write(first + "\n" + torn[:25])
    real_open = FileRead._open

    def open_then_append_on_a_torn_line(self: FileRead):
        handle, underlying = real_open(self)

        class Appending:  # reads the real handle; completes the torn line once it is read
            def read(self, size: int = -1) -> bytes:
                return self._appending(handle.read(size))

            def read1(self, size: int = -1) -> bytes:
                return self._appending(handle.read1(size))

            def _appending(self, got: bytes) -> bytes:
                if got and not got.endswith(b"\n") and not raw.closed:
                    write(torn[25:] + "\n")
                return got

            def __getattr__(self, attribute: str):
                return getattr(handle, attribute)

            def __enter__(self):
                return self

            def __exit__(self, *exc: object) -> None:
                handle.close()

        return Appending(), underlying

    monkeypatch.setattr(FileRead, "_open", open_then_append_on_a_torn_line)
    (file,), _ = scan_landing(landing)
    reader = FileRead(file)
    texts = [got.text for got in reader.lines()]
    if compressed:
        sink.close()
    raw.close()
    whole = [first, torn] if compressed else [first]
    assert texts == whole
    progress = reader.progress()
    assert progress.lines_read == len(whole)
    assert progress.offset_bytes == sum(len(text) + 1 for text in whole)
    if not compressed:
        assert progress.state == PARTIAL_LINE


# Appends the lines of a source file to a landing file, each line in two or three flushed pieces
# with a pause between them, so that a reader often finds the file ending mid-line.
WRITER = r"""
import sys, time
source, target = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8") as lines, open(target, "a", encoding="utf-8") as out:
    for n, text in enumerate(lines, start=1):
        cuts = [len(text) // 3, 2 * len(text) // 3] if n % 2 else [len(text) // 2]
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        for i, piece in enumerate(pieces):
            out.write(piece)
            out.flush()
            if i < len(pieces) - 1:
                time.sleep(0.0005)
        time.sleep(0.0003)
"""


def stream_line(n: int) -> str:
    return line(n, "order.placed" if n % 3 == 0 else "product.created")


def test_lines_written_while_ingesting_are_each_ingested_once(
    tmp_path: Path, lakehouse: Lakehouse
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    path = landing / "stream.ndjson"
    count = 3000
    source = tmp_path / "source.txt"
    source.write_text("".join(stream_line(n) + "\n" for n in range(1, count + 1)), encoding="utf-8")
    path.touch()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(source), str(path)])
    results: list[BronzeResult] = []
    torn_seen = 0
    deadline = time.monotonic() + 60
    try:
        while writer.poll() is None and time.monotonic() < deadline:
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                if size:
                    handle.seek(size - 1)
                    torn_seen += handle.read(1) != b"\n"
            results.append(ingest_landing(lakehouse, landing))
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.wait() == 0, "the writer failed or was too slow"
    results += [ingest_landing(lakehouse, landing), ingest_landing(lakehouse, landing)]

    assert torn_seen > 0, "no run saw a torn line: the test did not test anything"
    assert rejected(lakehouse) == []
    stored = grid_events(lakehouse)
    assert len(stored) == count
    assert stored == [(f"e-{n}", "stream.ndjson", n) for n in range(1, count + 1)]
    assert sum(r.lines_read for r in results) == count
    assert sum(r.rejected for r in results) == 0
    assert lines_recorded(lakehouse) == {"stream.ndjson": count}
    with lakehouse.connect() as conn:
        placed = conn.execute(
            select(func.count()).where(EVENTS.c.event_type == "order.placed")
        ).scalar_one()
        payloads = dict(conn.execute(select(EVENTS.c.event_id, EVENTS.c.payload)).all())
    assert placed == count // 3  # what Gold's order counts start from
    for n in (1, 2, 3, count // 2, count):  # payloads cut verbatim from reassembled lines
        event = stream_line(n)
        expected = event[event.index('"payload":') + len('"payload":') : -1]
        assert payloads[f"e-{n}"] == expected
