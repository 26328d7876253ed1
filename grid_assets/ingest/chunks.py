"""A batch of landing lines and its parsing: the unit of Bronze ingestion."""

from __future__ import annotations

from dataclasses import dataclass

from grid_assets.ingest.envelope import Envelope, Rejection, parse_line
from grid_assets.ingest.landing import LandingFile, RawLine


@dataclass(frozen=True, slots=True)
class Chunk:
    file: LandingFile
    lines_before: int  # lines of the file already ingested before this chunk
    lines: list[RawLine]

    @property
    def lines_done(self) -> int:
        return self.lines[-1].line_number if self.lines else self.lines_before


Parsed = tuple[RawLine, Envelope | Rejection | None]


def parse_chunk(chunk: Chunk) -> list[Parsed]:
    """Each line with its envelope, its rejection, or None for a blank line."""
    parsed: list[Parsed] = []
    for line in chunk.lines:
        if line.text is None:
            parsed.append((line, Rejection("invalid_utf8")))
        else:
            parsed.append((line, parse_line(line.text)))
    return parsed
