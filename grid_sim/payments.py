"""What follows a placement: `order.paid`, `order.shipped` and `order.cancelled`.

An order is cancelled before payment, abandoned (placed, never paid), or paid; a paid order is
then shipped or cancelled. Occasionally the web tier's queue stalls and the placement itself is
written just after its payment.
"""

from __future__ import annotations

from grid_sim.delivery import HELD_FOR_PAYMENT, ON_TIME, Delivery
from grid_sim.producer import Event, Producer, money
from grid_sim.profile import HOUR_MS

_CANCEL_REASONS = ("customer_request", "payment_failed", "out_of_stock", "fraud_suspected")
_CARRIERS = ("UPS", "FedEx", "DHL", "USPS")


class Payments:
    """Schedules an order's payment, shipment or cancellation when the order is placed."""

    def __init__(self, producer: Producer, delivery: Delivery) -> None:
        self.producer = producer
        self.delivery = delivery

    def cancellation(self, order_id: str, at: int) -> Event:
        payload = f'{{"order_id":"{order_id}","reason":"{self.producer.pick(_CANCEL_REASONS)}"}}'
        return self.producer.envelope("order.cancelled", at, "grid-support", payload)

    def follow(self, order_id: str, at: int, total: int) -> tuple[int, int]:
        """Schedule what follows an order placed at `at` worth `total` (1/1_000_000 dollar).

        Returns how its placement is to be delivered: `ON_TIME` now, or `HELD_FOR_PAYMENT` at
        the instant returned with it."""
        producer, profile, schedule = self.producer, self.producer.profile, self.delivery.schedule
        rnd = producer.rnd
        flag, placed_at = ON_TIME, at
        r = rnd()
        if r < profile.cancel_unpaid_below:
            at += profile.cancel_unpaid_min_ms + int(
                rnd() * profile.cancel_unpaid_span_hours * HOUR_MS
            )
            schedule(at, self.cancellation(order_id, at), None, ON_TIME)
        elif r >= profile.abandon_below:  # those in between are placed, never paid
            at += profile.pay_min_ms + int(rnd() * profile.pay_span_ms)
            amount = money((total + 5_000) // 10_000 * 100)  # half-up to the cent
            payload = f'{{"order_id":"{order_id}","amount":"{amount}","currency":"USD"}}'
            schedule(
                at, producer.envelope("order.paid", at, "grid-checkout", payload), None, ON_TIME
            )
            if rnd() < profile.paid_before_placed_share:
                flag, placed_at = HELD_FOR_PAYMENT, at + 1
            if rnd() < profile.cancel_paid_share:
                at += profile.cancel_paid_min_ms + int(
                    rnd() * profile.cancel_paid_span_hours * HOUR_MS
                )
                schedule(at, self.cancellation(order_id, at), None, ON_TIME)
            else:
                at += profile.ship_min_hours * HOUR_MS + int(
                    rnd() * profile.ship_span_hours * HOUR_MS
                )
                payload = (
                    f'{{"order_id":"{order_id}","carrier":"{producer.pick(_CARRIERS)}",'
                    f'"tracking_number":"1Z{producer.rng.getrandbits(40):010X}"}}'
                )
                shipped = producer.envelope("order.shipped", at, "grid-fulfillment", payload)
                schedule(at, shipped, None, ON_TIME)
        return flag, placed_at
