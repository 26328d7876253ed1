"""The landing folder: which raw files exist and their lines, read lazily from a given line on."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

LANDING_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")


@dataclass(frozen=True, slots=True)
class LandingFile:
    name: str  # relative to the landing folder; the stable identity used in Bronze
    path: Path
    size_bytes: int


class RawLine(NamedTuple):  # a tuple: cheap to make, one per landing line
    source_file: str
    line_number: int  # 1-based physical line, blank lines included
    text: str | None  # None when the bytes are not UTF-8
    raw: str  # what is kept in Bronze for a rejected line


def list_landing_files(landing_dir: Path) -> list[LandingFile]:
    """Event files directly in the folder, in name order (which is ingestion order)."""
    if not landing_dir.is_dir():
        return []
    files = [
        LandingFile(p.name, p, p.stat().st_size)
        for p in landing_dir.iterdir()
        if p.is_file() and p.name.endswith(LANDING_SUFFIXES)
    ]
    return sorted(files, key=lambda f: f.name)


def _open(path: Path) -> BinaryIO:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def read_lines(file: LandingFile, skip: int = 0) -> Iterator[RawLine]:
    """Yield the file's lines after the first `skip`, streaming (memory does not grow with size)."""
    with _open(file.path) as handle:
        for number, line in enumerate(handle, start=1):
            if number <= skip:
                continue
            body = line.rstrip(b"\r\n")
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                yield RawLine(file.name, number, None, body.decode("utf-8", "backslashreplace"))
                continue
            yield RawLine(file.name, number, text, text)
