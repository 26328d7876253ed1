"""A batch of landing lines and its parsing: the unit of Bronze ingestion."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from grid_assets.ingest.envelope import Envelope, Rejection, parse_line
from grid_assets.ingest.landing import LandingFile, Progress, RawLine

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Chunk:
    file: LandingFile
    lines: list[RawLine]
    progress: Progress  # how far the file is read once these lines are stored
    error: str | None = None  # why the file stops here (the last chunk of an unreadable file)


Parsed = tuple[RawLine, Envelope | Rejection | None]


def parse_chunk(chunk: Chunk) -> list[Parsed]:
    """Each line with its envelope, its rejection, or None for a blank line.

    No line can stop ingestion: should the parser itself fail on one, that line is rejected
    with the exception's type and logged with its file and line."""
    parsed: list[Parsed] = []
    for line in chunk.lines:
        if line.text is None:
            parsed.append((line, Rejection("invalid_utf8")))
            continue
        try:
            parsed.append((line, parse_line(line.text)))
        except Exception as exc:  # a parser defect must not block the lines after it
            log.warning(
                "Rejected %s line %d: the parser failed (%s)",
                line.source_file,
                line.line_number,
                type(exc).__name__,
            )
            parsed.append((line, Rejection(f"unparseable: {type(exc).__name__}")))
    return parsed
