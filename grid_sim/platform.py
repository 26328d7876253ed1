"""Events from the platform rather than the shop: hourly heartbeats, and types Silver ignores."""

from __future__ import annotations

from grid_sim.delivery import HEARTBEAT_TICK, ON_TIME, Delivery
from grid_sim.producer import BASE_MS, Event, Producer

_UNKNOWN_TYPES = ("customer.signed_up", "cart.abandoned", "review.posted")


class Platform:
    """Numbers heartbeats and keeps their tick on the schedule."""

    def __init__(self, producer: Producer, delivery: Delivery) -> None:
        self.producer = producer
        self.delivery = delivery
        self.heartbeat_seq = 0

    def start(self) -> None:
        """Schedule the first heartbeat, one period after the clock's origin."""
        self.delivery.schedule(
            BASE_MS + self.producer.profile.heartbeat_every_ms, None, None, HEARTBEAT_TICK
        )

    def tick(self, at: int) -> tuple[Event, int]:
        """The heartbeat due at `at` (and the next one scheduled), ready to deliver on time."""
        self.delivery.schedule(
            at + self.producer.profile.heartbeat_every_ms, None, None, HEARTBEAT_TICK
        )
        return self.heartbeat(at), ON_TIME

    def heartbeat(self, at: int, event_id: str = "") -> Event:
        self.heartbeat_seq += 1
        host = int(self.producer.rnd() * self.producer.profile.heartbeat_hosts) + 1
        payload = f'{{"seq":{self.heartbeat_seq},"host":"grid-web-{host}"}}'
        return self.producer.envelope("system.heartbeat", at, "grid-monitor", payload, event_id)

    def unknown_event(self) -> Event:
        payload = f'{{"customer_id":"{self.producer.customer_id()}"}}'
        return self.producer.envelope(
            self.producer.pick(_UNKNOWN_TYPES), self.producer.clock, "grid-web", payload
        )
