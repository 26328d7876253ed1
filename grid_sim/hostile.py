"""What real producers do besides the clean story: bad lines, Silver breakers, re-deliveries.

- a rejected line breaks the envelope contract in exactly one way (`REJECT_KINDS`);
- a quarantine-worthy event is a valid envelope whose payload breaks exactly one Silver rule
  (`QUARANTINE_KINDS`);
- a duplicate re-delivers a recent line, sometimes re-serialized (same JSON value, other bytes);
- a conflict reuses a recent `event_id` for different content.

Kinds take turns rather than being drawn, so even a small sample holds every one of them.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from grid_sim.catalog import Catalog
from grid_sim.delivery import Delivery
from grid_sim.landing import LandingWriter
from grid_sim.orders import Orders, placed_payload
from grid_sim.platform import Platform
from grid_sim.producer import BASE_MS, Event, Producer, money

REJECT_KINDS = (
    "not_json",
    "not_an_object",
    "missing_event_id",
    "empty_event_id",
    "missing_event_type",
    "missing_occurred_at",
    "invalid_occurred_at",
    "occurred_at_without_offset",
    "missing_payload",
    "payload_not_an_object",
)
QUARANTINE_KINDS = (
    "missing_product_id",
    "missing_category",
    "negative_unit_price",
    "unit_price_too_precise",
    "zero_quantity",
    "fractional_quantity",
    "discount_out_of_range",
    "empty_items",
    "missing_order_id",
)
_PRODUCT_KINDS = ("missing_product_id", "missing_category", "unit_price_too_precise")


class Hostile:
    """Makes the irregular input and counts it."""

    def __init__(
        self,
        producer: Producer,
        delivery: Delivery,
        writer: LandingWriter,
        catalog: Catalog,
        orders: Orders,
        platform: Platform,
    ) -> None:
        self.producer = producer
        self.delivery = delivery
        self.writer = writer
        self.catalog = catalog
        self.orders = orders
        self.platform = platform
        self._reject_turn = self._quarantine_turn = 0
        self.rejected: Counter[str] = Counter()
        self.duplicates = 0
        self.conflicts = 0

    def broken_domain_event(self) -> tuple[Event, str]:
        """A valid envelope whose payload breaks exactly one Silver rule, and that rule."""
        producer = self.producer
        kind = QUARANTINE_KINDS[self._quarantine_turn % len(QUARANTINE_KINDS)]
        self._quarantine_turn += 1
        if kind in _PRODUCT_KINDS:
            product = producer.pick(self.catalog.products)
            payload = self.catalog.payload(product)
            if kind == "unit_price_too_precise":
                payload["unit_price"] = money(product.price) + "00001"
            else:
                del payload["product_id" if kind == "missing_product_id" else "category"]
            return producer.envelope(
                "product.updated", producer.clock, "grid-catalog", producer.dumps(payload)
            ), kind

        order_id: str | None = self.orders.next_order_id()
        items, _ = self.orders.items()
        item = {
            "product_id": producer.pick(self.catalog.products).product_id,
            "quantity": 2,
            "unit_price": "9.99",
        }
        if kind == "negative_unit_price":
            item["unit_price"] = "-9.99"
        elif kind == "zero_quantity":
            item["quantity"] = 0
        elif kind == "fractional_quantity":
            item["quantity"] = 1.5
        elif kind == "discount_out_of_range":
            item["discount"] = producer.pick(("1.5", 1.5))
        elif kind == "empty_items":
            items = []
        else:
            order_id = None
        if kind not in ("empty_items", "missing_order_id"):
            items[0] = producer.dumps(item)
        payload_json = placed_payload(order_id, "C-000001", items, True)
        return producer.envelope("order.placed", producer.clock, "grid-web", payload_json), kind

    def reject_line(self) -> None:
        """Write a line that breaks the envelope contract in exactly one way."""
        producer = self.producer
        kind = REJECT_KINDS[self._reject_turn % len(REJECT_KINDS)]
        self._reject_turn += 1
        event: dict[str, Any] = {
            "event_id": producer.event_id(),
            "event_type": "order.paid",
            "occurred_at": producer.occurred(producer.clock),
            "source": "grid-checkout",
            "payload": {"order_id": f"O-{int(producer.rnd() * self.orders.order_seq) + 1:07d}"},
        }
        if kind == "not_json":
            text = producer.dumps(event)
            line = producer.pick(
                (
                    text[: 1 + int(producer.rnd() * (len(text) - 2))],  # a write cut short
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                    repr(event),  # a Python dict's repr: single quotes
                )
            )
        elif kind == "not_an_object":
            line = producer.pick(
                (f"[{producer.dumps(event)}]", "42", '"order.paid"', "null", "[1,2,3]")
            )
        else:
            if kind in ("missing_event_id", "missing_event_type", "missing_occurred_at"):
                del event[kind.removeprefix("missing_")]
            elif kind == "missing_payload":
                del event["payload"]
            elif kind == "empty_event_id":
                event["event_id"] = ""
            elif kind == "invalid_occurred_at":
                bad = ("yesterday", "2026-13-45T25:61:00Z", "2026-02-30T10:00:00Z", "", BASE_MS)
                event["occurred_at"] = producer.pick(bad)
            elif kind == "occurred_at_without_offset":
                event["occurred_at"] = producer.iso(producer.clock)[:-1]
            else:
                event["payload"] = producer.pick(("order_id=O-1", ["O-1"], None, 7))
            line = producer.dumps(event)
        self.rejected[kind] += 1
        self.writer.write_line(line)

    def duplicate(self) -> None:
        """Re-deliver a recent line: the same JSON value, sometimes in other bytes."""
        line = self.producer.pick(self.delivery.ring)
        if self.producer.rnd() < self.producer.profile.reserialized_duplicate_share:
            # Keys reversed, spaces, non-ASCII escaped.
            line = json.dumps(dict(reversed(json.loads(line).items())), separators=(", ", ": "))
        self.duplicates += 1
        self.writer.write_line(line)

    def conflict(self) -> None:
        """Reuse a recent line's `event_id` for different content."""
        original = json.loads(self.producer.pick(self.delivery.ring))
        if self.producer.rnd() < self.producer.profile.replay_conflict_share:
            # A replay tool re-sent the event with its own source stamped on it.
            line = self.producer.dumps(dict(original, source="grid-replay"))
        else:
            # A producer bug reused an id for an unrelated event.
            line, _ = self.platform.heartbeat(self.producer.clock, original["event_id"])
        self.conflicts += 1
        self.writer.write_line(line)
