"""A batch of landing lines and its parsing: the unit of Bronze ingestion."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from grid_assets.ingest.envelope import Envelope, Rejection, parse_line
from grid_assets.ingest.envelope_fast import Certified, certify
from grid_assets.ingest.landing import LandingFile, LineBlock, Progress, RawLine

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Chunk:
    file: LandingFile
    lines: LineBlock
    progress: Progress  # how far the file is read once these lines are stored
    error: str | None = None  # why the file stops here (the last chunk of an unreadable file)


Parsed = tuple[RawLine, Envelope | Rejection | None]


@dataclass(frozen=True, slots=True)
class ParsedChunk:
    """The envelopes of the lines the fast path proved (`certified`, by position in the chunk),
    and every other line (`others`, in line order) with its envelope, its rejection, or None for
    a blank line."""

    certified: Certified
    others: list[Parsed]


def parse_chunk(chunk: Chunk) -> ParsedChunk:
    """Parse a chunk: the fast path for the lines it proves, `parse_line` for the others."""
    lines = chunk.lines
    try:
        certified = certify(lines)
    except Exception as exc:  # a defect of the fast path costs time, never lines
        log.warning(
            "The fast path failed on %s lines %d-%d (%s); they take the general path",
            lines.source_file,
            lines.first_number,
            lines.first_number + len(lines) - 1,
            type(exc).__name__,
        )
        certified = Certified.none()
    rest = np.ones(len(lines), bool)
    rest[certified.index] = False
    return ParsedChunk(
        certified, [parse_one(lines.raw_line(i)) for i in np.flatnonzero(rest).tolist()]
    )


def parse_one(line: RawLine) -> Parsed:
    """One line by the general path. No line can stop ingestion: should the parser itself fail
    on one, that line is rejected with the exception's type and logged with its file and line."""
    if line.text is None:
        return line, Rejection("invalid_utf8")
    try:
        return line, parse_line(line.text)
    except Exception as exc:  # a parser defect must not block the lines after it
        log.warning(
            "Rejected %s line %d: the parser failed (%s)",
            line.source_file,
            line.line_number,
            type(exc).__name__,
        )
        return line, Rejection(f"unparseable: {type(exc).__name__}")
