"""How `FileRead.blocks` cuts a file: `max_lines` to a block, and a last block that takes the
rest when it is at most half a block more, so a file is never ended by a short block of its
own. The cut does not depend on how the bytes arrive (read sizes, gzip blocks)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from grid_assets.ingest import landing
from grid_assets.ingest.landing import COMPLETE, FileRead, scan_landing


def expected_sizes(lines: int, max_lines: int) -> list[int]:
    sizes = []
    while lines > max_lines * 3 // 2:
        sizes.append(max_lines)
        lines -= max_lines
    return [*sizes, lines] if lines else sizes


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("read_bytes", [7, 64, 1 << 20])
@pytest.mark.parametrize(
    ("lines", "max_lines"), [(1, 10), (10, 10), (15, 10), (16, 10), (25, 10), (26, 10), (7, 1)]
)
def test_blocks_are_full_but_for_a_last_one_that_takes_the_rest(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    compressed: bool,
    read_bytes: int,
    lines: int,
    max_lines: int,
) -> None:
    monkeypatch.setattr(landing, "READ_BYTES", read_bytes)
    body = b"".join(b'{"n":%d}\n' % n for n in range(lines))
    if compressed:
        (tmp_path / "events.ndjson.gz").write_bytes(gzip.compress(body))
    else:
        (tmp_path / "events.ndjson").write_bytes(body)
    [file] = scan_landing(tmp_path)[0]
    reader = FileRead(file)
    blocks = list(reader.blocks(max_lines))
    assert [len(block) for block in blocks] == expected_sizes(lines, max_lines)
    assert b"".join(block.data for block in blocks) == body
    assert [block.first_number for block in blocks] == [
        1 + sum(len(b) for b in blocks[:i]) for i in range(len(blocks))
    ]
    done = reader.progress()
    assert (done.lines_read, done.offset_bytes, done.state) == (lines, len(body), COMPLETE)
