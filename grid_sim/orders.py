"""Orders and their lines: `order.placed`, sometimes placed again with a new basket.

What follows a placement (payment, cancellation, shipping) is scheduled by `grid_sim.payments`
at the moment the order is placed, so an order's whole life is drawn in one go.
"""

from __future__ import annotations

from bisect import bisect
from itertools import accumulate

from grid_sim.catalog import Catalog
from grid_sim.delivery import ON_TIME, Delivery
from grid_sim.payments import Payments
from grid_sim.producer import Producer

# An order line's rendered `discount` member and its percentage: most lines have none, said
# three ways (omitted, 0, "0"); the rest a promotion, usually as a string. Their weights are the
# profile's `discount_weights`, in this order.
DISCOUNTS = (
    ("", 0),
    (',"discount":0', 0),
    (',"discount":"0"', 0),
    (',"discount":"0.05"', 5),
    (',"discount":"0.1"', 10),
    (',"discount":"0.15"', 15),
    (',"discount":"0.2"', 20),
    (',"discount":0.05', 5),
    (',"discount":0.1', 10),
    (',"discount":0.15', 15),
    (',"discount":0.2', 20),
)


def placed_payload(order_id: str | None, customer_id: str, items: list[str], usd: bool) -> str:
    order = f'"order_id":"{order_id}",' if order_id is not None else ""
    currency = ',"currency":"USD"' if usd else ""
    return f'{{{order}"customer_id":"{customer_id}","items":[{",".join(items)}]{currency}}}'


class Orders:
    """Places orders from the catalogue's current products and numbers them."""

    def __init__(
        self, producer: Producer, delivery: Delivery, catalog: Catalog, payments: Payments
    ) -> None:
        profile = producer.profile
        if len(profile.discount_weights) != len(DISCOUNTS):
            raise ValueError(f"discount_weights needs {len(DISCOUNTS)} weights")
        self.producer = producer
        self.delivery = delivery
        self.catalog = catalog
        self.payments = payments
        self.order_seq = 0
        # Cumulative weights: one draw and a bisect pick a weighted outcome.
        self._line_count_cum = tuple(accumulate(profile.line_count_weights))
        self._quantity_cum = tuple(accumulate(profile.quantity_weights))
        self._discount_cum = tuple(accumulate(profile.discount_weights))

    def next_order_id(self) -> str:
        self.order_seq += 1
        return f"O-{self.order_seq:07d}"

    def items(self) -> tuple[list[str], int]:
        """Rendered order lines and their exact total in 1/1_000_000 of a dollar."""
        rnd, products, profile = self.producer.rnd, self.catalog.products, self.producer.profile
        line_count_cum, quantity_cum, discount_cum = (
            self._line_count_cum,
            self._quantity_cum,
            self._discount_cum,
        )
        items: list[str] = []
        total = 0
        for _ in range(bisect(line_count_cum, rnd() * line_count_cum[-1]) + 1):
            product = products[int(rnd() * len(products))]
            if not product.active:  # inactive products can only slip in via a stale basket
                product = products[int(rnd() * len(products))]
            product_id = product.product_id
            if rnd() < profile.unknown_product_share:  # a product GRID never announced
                product_id = f"P-9{int(rnd() * 10_000):04d}"
            quantity = bisect(quantity_cum, rnd() * quantity_cum[-1]) + 1
            as_number = product.number_json and rnd() < profile.price_as_number_share
            price = product.number_json if as_number else product.price_json
            discount, percent = DISCOUNTS[bisect(discount_cum, rnd() * discount_cum[-1])]
            items.append(
                f'{{"product_id":"{product_id}","quantity":{quantity},'
                f'"unit_price":{price}{discount}}}'
            )
            total += quantity * product.price * (100 - percent)
        return items, total

    def place(self) -> None:
        """Place an order and schedule the rest of its life: payment, shipping, cancellation."""
        producer, profile = self.producer, self.producer.profile
        rnd = producer.rnd
        at = producer.clock
        order_id = self.next_order_id()
        customer_id = producer.customer_id()
        source = "grid-web" if rnd() < profile.web_share else "grid-mobile"
        usd = rnd() < profile.explicit_usd_share
        items, total = self.items()
        payload = placed_payload(order_id, customer_id, items, usd)
        placed = producer.envelope("order.placed", at, source, payload)
        if rnd() < profile.basket_edit_share:
            # The customer edits the basket before paying: a newer `order.placed` replaces it.
            at += profile.basket_edit_min_ms + int(rnd() * profile.basket_edit_span_ms)
            items, total = self.items()
            payload = placed_payload(order_id, customer_id, items, usd)
            edited = producer.envelope("order.placed", at, source, payload)
            self.delivery.schedule(at, edited, None, ON_TIME)

        flag, placed_at = self.payments.follow(order_id, at, total)
        if flag == ON_TIME:
            self.delivery.deliver(placed, None, ON_TIME)  # it happens now: no need to queue it
        else:
            self.delivery.schedule(placed_at, placed, None, flag)
