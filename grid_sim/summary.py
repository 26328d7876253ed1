"""What a generation run wrote, counted the way the pipeline is expected to see it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrafficSummary:
    """What `generate_traffic` wrote, counted the way the pipeline is expected to see it.

    `lines` counts non-blank lines. `events_by_type` counts distinct envelope-valid events (the
    first line of each `event_id`), quarantine-worthy and unknown-type ones included; `quarantined`
    is a subset of them. `duplicates` and `conflicts` count later lines reusing an `event_id` with
    the same or with different content. `late_events` were held back and written well after they
    occurred, mostly after events that occurred later; `paid_before_placed` of them are
    placements written just after their own payment.
    """

    files: tuple[str, ...]
    lines: int
    blank_lines: int
    events_by_type: dict[str, int]
    duplicates: int
    conflicts: int
    rejected: dict[str, int]
    quarantined: dict[str, int]
    late_events: int
    paid_before_placed: int

    @property
    def valid_events(self) -> int:
        return sum(self.events_by_type.values())

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def report(self) -> str:
        """A human-readable account of the traffic, one count per line."""

        def block(title: str, total: int, counts: dict[str, int]) -> list[str]:
            return [f"{title:<29}{total}"] + [f"  {k:<27}{n}" for k, n in counts.items()]

        return "\n".join(
            [
                f"{'files':<29}{', '.join(self.files)}",
                f"{'lines (non-blank)':<29}{self.lines}",
                f"{'blank lines':<29}{self.blank_lines}",
                *block("valid events", self.valid_events, self.events_by_type),
                f"{'duplicates':<29}{self.duplicates}",
                f"{'event_id conflicts':<29}{self.conflicts}",
                f"{'late events':<29}{self.late_events}",
                f"{'  of which placed after paid':<29}{self.paid_before_placed}",
                *block("rejected lines", self.rejected_total, self.rejected),
                *block("quarantine-worthy events", self.quarantined_total, self.quarantined),
            ]
        )
