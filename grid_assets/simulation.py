"""Deterministic generator of realistic GRID event traffic for a landing folder.

The generator plays a small shop forward in time: a product catalogue is created first, then
customers place orders that are later paid, shipped or cancelled, products change price, category or
availability, and the platform sends heartbeats. On top of that clean story it layers what real
producers do: late and out-of-order delivery, exact re-deliveries (sometimes re-serialized),
`event_id` reuse with different content, lines that break the envelope contract, and domain events
that break a Silver rule. Every irregularity is counted in the returned `TrafficSummary`, so tests
and benchmarks can compare what the pipeline did with what it was fed.

It streams: lines are written as they are produced and the only state kept is per entity (products,
orders still in flight) or of fixed size (a ring of recent lines to re-deliver), so a million events
cost the same memory as a thousand. Nothing reads the clock or the environment: the same arguments
always produce the same bytes.

The frequent events are rendered with f-strings rather than the JSON encoder: every string in them
comes from this module's own vocabulary (no quotes, backslashes or control characters), and
skipping the encoder roughly halves the time a million-event benchmark input takes.
"""

from __future__ import annotations

import gzip
import heapq
import json
import random
from bisect import bisect
from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from pathlib import Path
from typing import IO, Any

# 2026-01-05T00:00:00Z in milliseconds since the Unix epoch: a fixed origin keeps output
# independent of when the generator runs.
BASE_MS = 1_767_571_200_000
_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_EPOCH = date(1970, 1, 1)
# Lookup tables: formatting integers is the costliest part of rendering a timestamp.
_MINUTE_SECOND = tuple(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))
_MILLIS = tuple(f"{ms:03d}" for ms in range(1000))
_UUID_RANDOM_BITS = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4_BITS = (0x4000 << 64) | (0x8000 << 48)

# Shares of written lines; bad input is controlled separately by `bad_share`.
DUPLICATE_SHARE = 0.01
CONFLICT_SHARE = 0.003
LATE_SHARE = 0.03
PAID_BEFORE_PLACED_SHARE = 0.03
BLANK_SHARE = 0.002

# Mean time between spontaneous events (orders, product changes, ...), stretched at night.
_MEAN_GAP_MS = 300_000
_HOURLY_GAP_FACTOR = (3,) * 5 + (2.5, 2, 1.5, 1.2) + (1,) * 11 + (1.2, 1.5, 2, 2.5)  # by UTC hour
_FLUSH_EVERY = 2048
_RING_SIZE = 512

# category: (min price, max price in cents, product nouns)
CATEGORIES: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "Beverages": (199, 2499, ("Cold Brew", "Green Tea", "Sparkling Water", "Café Blend")),
    "Bakery": (149, 1299, ("Sourdough", "Croissant", "Bagels", "Rye Loaf", "Brioche")),
    "Dairy": (129, 1899, ("Crème Fraîche", "Greek Yogurt", "Aged Cheddar", "Oat Milk")),
    "Produce": (99, 999, ("Avocados", "Jalapeño Peppers", "Blueberries", "Fuji Apples")),
    "Pantry": (199, 3499, ("Olive Oil", "Basmati Rice", "Pasta", "Peanut Butter", "Honey")),
    "Household": (249, 4999, ("Dish Soap", "Paper Towels", "Laundry Pods", "Trash Bags")),
    "Personal Care": (299, 5999, ("Shampoo", "Toothpaste", "Sunscreen", "Hand Cream")),
    "Electronics": (999, 19999, ("USB-C Cable", "Earbuds", "Power Bank", "Smart Plug")),
}
_CATEGORY_NAMES = tuple(CATEGORIES)
_ADJECTIVES = ("Organic", "Classic", "Premium", "Everyday", "Family Size", "Mini", "Artisan", "Eco")
_OFFSETS = (("+02:00", 120), ("-05:00", -300), ("+05:30", 330), ("+09:00", 540), ("-08:00", -480))
_CANCEL_REASONS = ("customer_request", "payment_failed", "out_of_stock", "fraud_suspected")
_CARRIERS = ("UPS", "FedEx", "DHL", "USPS")
_UNKNOWN_TYPES = ("customer.signed_up", "cart.abandoned", "review.posted")

# An order line's rendered `discount` member, its percentage and weight: most lines have none,
# said three ways (omitted, 0, "0"); the rest a promotion, usually as a string.
_DISCOUNTS = (
    ("", 0, 40),
    (',"discount":0', 0, 20),
    (',"discount":"0"', 0, 20),
    (',"discount":"0.05"', 5, 4),
    (',"discount":"0.1"', 10, 4),
    (',"discount":"0.15"', 15, 4),
    (',"discount":"0.2"', 20, 4),
    (',"discount":0.05', 5, 1),
    (',"discount":0.1', 10, 1),
    (',"discount":0.15', 15, 1),
    (',"discount":0.2', 20, 1),
)
_DISCOUNT_CUM = tuple(accumulate(weight for _, _, weight in _DISCOUNTS))
_QUANTITY_CUM = tuple(accumulate((60, 20, 10, 5, 3, 2)))  # 1..6 units
_LINE_COUNT_CUM = tuple(accumulate((45, 25, 14, 9, 5, 2)))  # 1..6 lines per order

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

# A rendered NDJSON line and its event type.
Event = tuple[str, str]

# How a heap entry came to be scheduled.
_ON_TIME, _LATE, _HELD_FOR_PAYMENT, _HEARTBEAT_TICK = 0, 1, 2, 3


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


def money(ten_thousandths: int) -> str:
    """Format an amount kept in 1/10000 units: two decimals unless it needs four."""
    sign = "-" if ten_thousandths < 0 else ""
    whole, frac = divmod(abs(ten_thousandths), 10_000)
    if frac % 100 == 0:
        return f"{sign}{whole}.{frac // 100:02d}"
    return f"{sign}{whole}.{frac:04d}"


@dataclass(slots=True)
class _Product:
    product_id: str
    name: str
    category: str
    price: int = 0  # in 1/10000 of a dollar: exact, and room for sub-cent bulk prices
    active: bool = True
    price_json: str = ""  # the price as a JSON string, '"12.50"'
    number_json: str = ""  # as a JSON number, '12.5'; empty unless a whole number of cents

    def reprice(self, price: int) -> None:
        self.price = price
        text = money(price)
        self.price_json = f'"{text}"'
        # A float's shortest repr of a two-decimal amount is exactly that amount, so a JSON
        # number rendered this way never carries more digits than the price has.
        self.number_json = repr(float(text)) if price % 100 == 0 else ""


class _Traffic:
    """One generation run: shop state, scheduling heap, output files and counters."""

    def __init__(
        self,
        out_dir: Path,
        n_events: int,
        seed: int,
        n_files: int,
        bad_share: float,
        gzip_every: int,
    ) -> None:
        self.rng = random.Random(seed)
        self.rnd = self.rng.random
        self.out_dir = out_dir
        self.n_events = n_events
        self.n_files = n_files
        self.bad_share = bad_share
        self.gzip_every = gzip_every
        self.dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

        self.clock = BASE_MS
        self.heap: list[tuple[int, int, Event | None, str | None, int]] = []
        self.seq = 0
        self.hours: dict[int, str] = {}
        self.ring: list[str] = []
        self.ring_next = 0
        self.products: list[_Product] = []
        self.order_seq = 0
        self.heartbeat_seq = 0
        self.reject_turn = self.quarantine_turn = 0

        self.files: list[str] = []
        self.raw: IO[bytes] | None = None
        self.handle: IO[bytes] | gzip.GzipFile | None = None
        self.buffer: list[str] = []
        self.boundary = 0
        self.written = 0
        self.blank = 0
        self.events_by_type: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.quarantined: Counter[str] = Counter()
        self.duplicates = 0
        self.conflicts = 0
        self.late = 0
        self.paid_before_placed = 0

    # -- primitives -----------------------------------------------------------------------------

    def pick(self, options: tuple[Any, ...] | list[Any]) -> Any:
        return options[int(self.rnd() * len(options))]

    def event_id(self) -> str:
        # Version 4 and the RFC 4122 variant, so ids look like what GRID's producers emit.
        h = f"{(self.rng.getrandbits(128) & _UUID_RANDOM_BITS) | _UUID_V4_BITS:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def iso(self, ms: int, suffix: str = "Z", offset_minutes: int = 0) -> str:
        hour, rem = divmod(ms + offset_minutes * 60_000, _HOUR_MS)
        prefix = self.hours.get(hour)
        if prefix is None:
            day, hour_of_day = divmod(hour, 24)
            prefix = f"{(_EPOCH + timedelta(days=day)).isoformat()}T{hour_of_day:02d}:"
            if len(self.hours) > 256:  # events cluster around the clock: a small cache suffices
                self.hours.clear()
            self.hours[hour] = prefix
        return f"{prefix}{_MINUTE_SECOND[rem // 1000]}.{_MILLIS[rem % 1000]}{suffix}"

    def occurred(self, ms: int) -> str:
        # Most producers speak UTC; some report the same instant in local time with its offset.
        if self.rnd() < 0.85:
            return self.iso(ms)
        return self.iso(ms, *self.pick(_OFFSETS))

    def envelope(
        self, event_type: str, ms: int, source: str, payload_json: str, event_id: str = ""
    ) -> Event:
        head = (
            f'{{"event_id":"{event_id or self.event_id()}","event_type":"{event_type}",'
            f'"occurred_at":"{self.occurred(ms)}"'
        )
        if self.rnd() < 0.05:  # `source` is optional and some producers leave it out
            return f'{head},"payload":{payload_json}}}', event_type
        return f'{head},"source":"{source}","payload":{payload_json}}}', event_type

    def schedule(self, at: int, event: Event | None, qkind: str | None, flag: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, event, qkind, flag))

    # -- output ---------------------------------------------------------------------------------

    def open_next_file(self) -> None:
        self.close_file()
        index = len(self.files) + 1
        gz = self.gzip_every > 0 and index % self.gzip_every == 0
        name = f"events-{index:0{max(4, len(str(self.n_files)))}d}.ndjson" + (".gz" if gz else "")
        self.files.append(name)
        self.raw = open(self.out_dir / name, "wb")  # noqa: SIM115 (closed by close_file)
        # mtime=0 and no embedded file name keep gzip output byte-identical across runs.
        self.handle = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0, compresslevel=6)
            if gz
            else self.raw
        )
        self.boundary = index * self.n_events // self.n_files

    def flush(self) -> None:
        if self.buffer and self.handle is not None:
            self.handle.write(("\n".join(self.buffer) + "\n").encode("utf-8"))
            self.buffer.clear()

    def close_file(self) -> None:
        self.flush()
        if self.handle is not None and self.handle is not self.raw:
            self.handle.close()
        if self.raw is not None:
            self.raw.close()
        self.handle = self.raw = None

    def write_line(self, line: str) -> None:
        # File k holds lines [(k-1)*n/files, k*n/files): even sizes, name order = write order.
        while self.written >= self.boundary and len(self.files) < self.n_files:
            self.open_next_file()
        if self.rnd() < BLANK_SHARE:
            self.buffer.append("")
            self.blank += 1
        self.buffer.append(line)
        self.written += 1
        if len(self.buffer) >= _FLUSH_EVERY:
            self.flush()

    def deliver(self, event: Event, qkind: str | None, flag: int) -> None:
        """Write a first-seen valid event, or hold it back to arrive late."""
        if flag == _ON_TIME and self.rnd() < LATE_SHARE:
            # Mostly minutes to an hour or two late; one in five between 6 hours and 3 days, far
            # enough to land in a later file than events that occurred after it.
            if self.rnd() < 0.8:
                delay = int(self.rng.expovariate(1 / _HOUR_MS))
            else:
                delay = 6 * _HOUR_MS + int(self.rnd() * 66 * _HOUR_MS)
            self.schedule(self.clock + delay, event, qkind, _LATE)
            return
        if flag != _ON_TIME:
            self.late += 1
            self.paid_before_placed += flag == _HELD_FOR_PAYMENT
        line, event_type = event
        self.events_by_type[event_type] += 1
        if qkind is not None:
            self.quarantined[qkind] += 1
        if len(self.ring) < _RING_SIZE:
            self.ring.append(line)
        else:
            self.ring[self.ring_next] = line
            self.ring_next = (self.ring_next + 1) % _RING_SIZE
        self.write_line(line)

    # -- the shop -------------------------------------------------------------------------------

    def product_payload(self, product: _Product) -> dict[str, Any]:
        use_number = product.number_json and self.rnd() < 0.1
        payload: dict[str, Any] = {
            "product_id": product.product_id,
            "name": product.name,
            "category": product.category,
            "unit_price": float(product.number_json) if use_number else money(product.price),
        }
        # Defaults (`USD`, active) are sometimes left implicit, as the contract allows.
        if self.rnd() < 0.8:
            payload["currency"] = "USD"
        if not product.active or self.rnd() < 0.8:
            payload["active"] = product.active
        return payload

    def create_catalogue(self) -> None:
        at = self.clock
        for i in range(1, max(8, min(500, self.n_events // 40)) + 1):
            category = self.pick(_CATEGORY_NAMES)
            low, high, nouns = CATEGORIES[category]
            name = f"{self.pick(_ADJECTIVES)} {self.pick(nouns)}"
            product = _Product(f"P-{i:05d}", name, category)
            cents = low + int(self.rnd() * (high - low))
            cents = max(cents // 100 * 100 + self.pick((99, 49, 95, 0)), 49)
            sub_cent = int(self.rnd() * 99) + 1 if self.rnd() < 0.03 else 0  # bulk goods
            product.reprice(cents * 100 + sub_cent)
            self.products.append(product)
            payload = self.dumps(self.product_payload(product))
            self.schedule(
                at, self.envelope("product.created", at, "grid-catalog", payload), None, _ON_TIME
            )
            at += 1_000 + int(self.rnd() * 20_000)
        self.clock = at
        self.schedule(BASE_MS + _HOUR_MS, None, None, _HEARTBEAT_TICK)

    def update_product(self) -> Event:
        product = self.pick(self.products)
        r = self.rnd()
        if r < 0.6:
            factor = 1 + (0.05 + self.rnd() * 0.15) * (1 if self.rnd() < 0.6 else -1)
            # Repriced to whole dollars and 99 cents, as the catalogue team does.
            product.reprice((int(product.price * factor) // 10_000 * 100 + 99) * 100)
        elif r < 0.8:
            product.category = self.pick(_CATEGORY_NAMES)
        else:
            product.active = not product.active
        payload = self.dumps(self.product_payload(product))
        return self.envelope("product.updated", self.clock, "grid-catalog", payload)

    def order_items(self) -> tuple[list[str], int]:
        """Rendered order lines and their exact total in 1/1_000_000 of a dollar."""
        rnd, products = self.rnd, self.products
        items: list[str] = []
        total = 0
        for _ in range(bisect(_LINE_COUNT_CUM, rnd() * _LINE_COUNT_CUM[-1]) + 1):
            product = products[int(rnd() * len(products))]
            if not product.active:  # inactive products can only slip in via a stale basket
                product = products[int(rnd() * len(products))]
            product_id = product.product_id
            if rnd() < 0.005:  # a product GRID never announced
                product_id = f"P-9{int(rnd() * 10_000):04d}"
            quantity = bisect(_QUANTITY_CUM, rnd() * _QUANTITY_CUM[-1]) + 1
            price = product.number_json if product.number_json and rnd() < 0.1 else None
            discount, percent, _ = _DISCOUNTS[bisect(_DISCOUNT_CUM, rnd() * _DISCOUNT_CUM[-1])]
            items.append(
                f'{{"product_id":"{product_id}","quantity":{quantity},'
                f'"unit_price":{price or product.price_json}{discount}}}'
            )
            total += quantity * product.price * (100 - percent)
        return items, total

    @staticmethod
    def placed_payload(order_id: str | None, customer_id: str, items: list[str], usd: bool) -> str:
        order = f'"order_id":"{order_id}",' if order_id is not None else ""
        currency = ',"currency":"USD"' if usd else ""
        return f'{{{order}"customer_id":"{customer_id}","items":[{",".join(items)}]{currency}}}'

    def place_order(self) -> None:
        """Place an order and schedule the rest of its life: payment, shipping, cancellation."""
        rnd = self.rnd
        placed_at = at = self.clock
        self.order_seq += 1
        order_id = f"O-{self.order_seq:07d}"
        customer_id = f"C-{int(rnd() * 50_000) + 1:06d}"
        source = "grid-web" if rnd() < 0.7 else "grid-mobile"
        usd = rnd() < 0.9
        items, total = self.order_items()
        placed = self.envelope(
            "order.placed", at, source, self.placed_payload(order_id, customer_id, items, usd)
        )
        if rnd() < 0.03:
            # The customer edits the basket before paying: a newer `order.placed` replaces it.
            at += 60_000 + int(rnd() * 540_000)
            items, total = self.order_items()
            payload = self.placed_payload(order_id, customer_id, items, usd)
            self.schedule(at, self.envelope("order.placed", at, source, payload), None, _ON_TIME)

        placed_flag = _ON_TIME
        r = rnd()
        if r < 0.06:
            at += 300_000 + int(rnd() * 2 * _HOUR_MS)
            self.schedule(at, self.cancellation(order_id, at), None, _ON_TIME)
        elif r >= 0.10:  # the 4% in between are abandoned: placed, never paid
            at += 30_000 + int(rnd() * 1_800_000)
            amount = money((total + 5_000) // 10_000 * 100)  # half-up to the cent
            payload = f'{{"order_id":"{order_id}","amount":"{amount}","currency":"USD"}}'
            paid = self.envelope("order.paid", at, "grid-checkout", payload)
            self.schedule(at, paid, None, _ON_TIME)
            if rnd() < PAID_BEFORE_PLACED_SHARE:
                # The web tier's queue stalls: the placement arrives just after its payment.
                placed_flag, placed_at = _HELD_FOR_PAYMENT, at + 1
            if rnd() < 0.04:
                at += 600_000 + int(rnd() * 6 * _HOUR_MS)
                self.schedule(at, self.cancellation(order_id, at), None, _ON_TIME)
            else:
                at += 2 * _HOUR_MS + int(rnd() * 46 * _HOUR_MS)
                payload = (
                    f'{{"order_id":"{order_id}","carrier":"{self.pick(_CARRIERS)}",'
                    f'"tracking_number":"1Z{self.rng.getrandbits(40):010X}"}}'
                )
                shipped = self.envelope("order.shipped", at, "grid-fulfillment", payload)
                self.schedule(at, shipped, None, _ON_TIME)
        if placed_flag == _ON_TIME:
            self.deliver(placed, None, _ON_TIME)  # it happens now: no need to queue it
        else:
            self.schedule(placed_at, placed, None, placed_flag)

    def cancellation(self, order_id: str, at: int) -> Event:
        payload = f'{{"order_id":"{order_id}","reason":"{self.pick(_CANCEL_REASONS)}"}}'
        return self.envelope("order.cancelled", at, "grid-support", payload)

    def unknown_event(self) -> Event:
        payload = f'{{"customer_id":"C-{int(self.rnd() * 50_000) + 1:06d}"}}'
        return self.envelope(self.pick(_UNKNOWN_TYPES), self.clock, "grid-web", payload)

    def heartbeat(self, at: int, event_id: str = "") -> Event:
        self.heartbeat_seq += 1
        payload = f'{{"seq":{self.heartbeat_seq},"host":"grid-web-{int(self.rnd() * 3) + 1}"}}'
        return self.envelope("system.heartbeat", at, "grid-monitor", payload, event_id)

    # -- irregular input ------------------------------------------------------------------------

    def broken_domain_event(self) -> tuple[Event, str]:
        """A valid envelope whose payload breaks exactly one Silver rule."""
        # Kinds take turns, so even a small sample holds every one of them.
        kind = QUARANTINE_KINDS[self.quarantine_turn % len(QUARANTINE_KINDS)]
        self.quarantine_turn += 1
        if kind in ("missing_product_id", "missing_category", "unit_price_too_precise"):
            product = self.pick(self.products)
            payload = self.product_payload(product)
            if kind == "unit_price_too_precise":
                payload["unit_price"] = money(product.price) + "00001"
            else:
                del payload["product_id" if kind == "missing_product_id" else "category"]
            return self.envelope(
                "product.updated", self.clock, "grid-catalog", self.dumps(payload)
            ), kind

        self.order_seq += 1
        order_id: str | None = f"O-{self.order_seq:07d}"
        items, _ = self.order_items()
        item = {
            "product_id": self.pick(self.products).product_id,
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
            item["discount"] = self.pick(("1.5", 1.5))
        elif kind == "empty_items":
            items = []
        else:
            order_id = None
        if kind not in ("empty_items", "missing_order_id"):
            items[0] = self.dumps(item)
        payload_json = self.placed_payload(order_id, "C-000001", items, True)
        return self.envelope("order.placed", self.clock, "grid-web", payload_json), kind

    def reject_line(self) -> None:
        """A line that breaks the envelope contract in exactly one way."""
        kind = REJECT_KINDS[self.reject_turn % len(REJECT_KINDS)]
        self.reject_turn += 1
        event: dict[str, Any] = {
            "event_id": self.event_id(),
            "event_type": "order.paid",
            "occurred_at": self.occurred(self.clock),
            "source": "grid-checkout",
            "payload": {"order_id": f"O-{int(self.rnd() * self.order_seq) + 1:07d}"},
        }
        if kind == "not_json":
            text = self.dumps(event)
            line = self.pick(
                (
                    text[: 1 + int(self.rnd() * (len(text) - 2))],  # a write cut short
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                    repr(event),  # a Python dict's repr: single quotes
                )
            )
        elif kind == "not_an_object":
            line = self.pick((f"[{self.dumps(event)}]", "42", '"order.paid"', "null", "[1,2,3]"))
        else:
            if kind in ("missing_event_id", "missing_event_type", "missing_occurred_at"):
                del event[kind.removeprefix("missing_")]
            elif kind == "missing_payload":
                del event["payload"]
            elif kind == "empty_event_id":
                event["event_id"] = ""
            elif kind == "invalid_occurred_at":
                bad = ("yesterday", "2026-13-45T25:61:00Z", "2026-02-30T10:00:00Z", "", BASE_MS)
                event["occurred_at"] = self.pick(bad)
            elif kind == "occurred_at_without_offset":
                event["occurred_at"] = self.iso(self.clock)[:-1]
            else:
                event["payload"] = self.pick(("order_id=O-1", ["O-1"], None, 7))
            line = self.dumps(event)
        self.rejected[kind] += 1
        self.write_line(line)

    def duplicate(self) -> None:
        line = self.pick(self.ring)
        if self.rnd() < 0.4:
            # Same JSON value, other bytes: keys reversed, spaces, non-ASCII escaped.
            line = json.dumps(dict(reversed(json.loads(line).items())), separators=(", ", ": "))
        self.duplicates += 1
        self.write_line(line)

    def conflict(self) -> None:
        original = json.loads(self.pick(self.ring))
        if self.rnd() < 0.5:
            # A replay tool re-sent the event with its own source stamped on it.
            line = self.dumps(dict(original, source="grid-replay"))
        else:
            # A producer bug reused an id for an unrelated event.
            line, _ = self.heartbeat(self.clock, original["event_id"])
        self.conflicts += 1
        self.write_line(line)

    # -- main loop ------------------------------------------------------------------------------

    def spontaneous(self) -> None:
        r = self.rnd()
        if r < self.bad_share:
            event, qkind = self.broken_domain_event()
            self.deliver(event, qkind, _ON_TIME)
        elif r < 0.82:
            self.place_order()
        elif r < 0.96:
            self.deliver(self.update_product(), None, _ON_TIME)
        else:
            self.deliver(self.unknown_event(), None, _ON_TIME)

    def loop(self) -> None:
        """Write lines until the budget is spent, always taking the earliest thing due next."""
        rnd, heap = self.rnd, self.heap
        bad_cut = self.bad_share
        dup_cut = bad_cut + DUPLICATE_SHARE
        conflict_cut = dup_cut + CONFLICT_SHARE
        while self.written < self.n_events:
            r = rnd()
            if r < bad_cut:
                self.reject_line()
            elif r < dup_cut and self.ring:
                self.duplicate()
            elif r < conflict_cut and self.ring:
                self.conflict()
            elif heap and heap[0][0] <= self.clock:
                at, _, event, qkind, flag = heapq.heappop(heap)
                if flag == _HEARTBEAT_TICK:
                    self.schedule(at + _HOUR_MS, None, None, _HEARTBEAT_TICK)
                    event, flag = self.heartbeat(at), _ON_TIME
                assert event is not None
                self.deliver(event, qkind, flag)
            else:
                self.spontaneous()
                factor = _HOURLY_GAP_FACTOR[self.clock // _HOUR_MS % 24]
                self.clock += int(self.rng.expovariate(1 / _MEAN_GAP_MS) * factor) + 1

    def run(self) -> TrafficSummary:
        try:
            self.create_catalogue()
            self.loop()
            while len(self.files) < self.n_files:  # files left empty when n_events < n_files
                self.open_next_file()
        finally:
            self.close_file()
        return TrafficSummary(
            files=tuple(self.files),
            lines=self.written,
            blank_lines=self.blank,
            events_by_type=dict(sorted(self.events_by_type.items())),
            duplicates=self.duplicates,
            conflicts=self.conflicts,
            rejected=dict(sorted(self.rejected.items())),
            quarantined=dict(sorted(self.quarantined.items())),
            late_events=self.late,
            paid_before_placed=self.paid_before_placed,
        )


def generate_traffic(
    out_dir: Path,
    n_events: int,
    seed: int,
    n_files: int = 4,
    bad_share: float = 0.02,
    gzip_every: int = 2,
) -> TrafficSummary:
    """Write `n_events` non-blank NDJSON lines of simulated GRID traffic into `out_dir`.

    The lines are spread evenly over `n_files` files named `events-0001.ndjson`, ... so that name
    order is write order; every `gzip_every`-th file is gzipped (`.ndjson.gz`; 0 for none). Every
    line counts towards `n_events`: valid events, re-deliveries, conflicts and bad lines alike.
    About `bad_share` of the lines break the envelope contract, and about half as many valid
    events break a Silver rule. Orders still in flight when the budget runs out stay unfinished.
    Existing files with the same names are overwritten; other files are left alone.
    """
    if n_events < 0 or n_files < 1 or gzip_every < 0 or not 0 <= bad_share <= 0.5:
        raise ValueError("need n_events >= 0, n_files >= 1, gzip_every >= 0, 0 <= bad_share <= 0.5")
    out_dir.mkdir(parents=True, exist_ok=True)
    return _Traffic(out_dir, n_events, seed, n_files, bad_share, gzip_every).run()
