"""When events reach the landing folder: due ones in time order, some held back to arrive late.

Events that happen later in an entity's life (a payment, a shipment, a heartbeat) wait on a heap
until the clock reaches them. A first-seen valid event may still be held back and written well
after events that occurred later. Every delivered line also enters a fixed-size ring of recent
lines, which re-deliveries and `event_id` conflicts pick from.
"""

from __future__ import annotations

import heapq
from collections import Counter

from grid_sim.landing import LandingWriter
from grid_sim.producer import Event, Producer
from grid_sim.profile import HOUR_MS

# How a heap entry came to be scheduled.
ON_TIME, LATE, HELD_FOR_PAYMENT, HEARTBEAT_TICK = 0, 1, 2, 3


class Delivery:
    """The run's schedule of pending events, its ring of recent lines and what it delivered."""

    def __init__(self, producer: Producer, writer: LandingWriter) -> None:
        self.producer = producer
        self.writer = writer
        self.heap: list[tuple[int, int, Event | None, str | None, int]] = []
        self._seq = 0
        self.ring: list[str] = []
        self._ring_next = 0
        self.events_by_type: Counter[str] = Counter()
        self.quarantined: Counter[str] = Counter()
        self.late = 0
        self.paid_before_placed = 0

    def schedule(self, at: int, event: Event | None, qkind: str | None, flag: int) -> None:
        """Deliver `event` (breaking Silver rule `qkind`, if any) once the clock reaches `at`."""
        self._seq += 1
        heapq.heappush(self.heap, (at, self._seq, event, qkind, flag))

    def next_due(self) -> tuple[int, Event | None, str | None, int] | None:
        """The earliest scheduled entry if it is due now (at, event, qkind, flag), else None."""
        heap = self.heap
        if heap and heap[0][0] <= self.producer.clock:
            at, _, event, qkind, flag = heapq.heappop(heap)
            return at, event, qkind, flag
        return None

    def deliver(self, event: Event, qkind: str | None, flag: int) -> None:
        """Write a first-seen valid event, or hold it back to arrive late."""
        producer, profile = self.producer, self.producer.profile
        if flag == ON_TIME and producer.rnd() < profile.late_share:
            # Mostly minutes to an hour or two late; the rest many hours to days, far enough to
            # land in a later file than events that occurred after it.
            if producer.rnd() < profile.late_short_share:
                delay = int(producer.rng.expovariate(1 / profile.late_short_mean_ms))
            else:
                delay = profile.late_long_min_hours * HOUR_MS + int(
                    producer.rnd() * profile.late_long_span_hours * HOUR_MS
                )
            self.schedule(producer.clock + delay, event, qkind, LATE)
            return
        if flag != ON_TIME:
            self.late += 1
            self.paid_before_placed += flag == HELD_FOR_PAYMENT
        line, event_type = event
        self.events_by_type[event_type] += 1
        if qkind is not None:
            self.quarantined[qkind] += 1
        if len(self.ring) < profile.recent_lines:
            self.ring.append(line)
        else:
            self.ring[self._ring_next] = line
            self._ring_next = (self._ring_next + 1) % profile.recent_lines
        self.writer.write_line(line)
