"""One generation run: the event families wired together and the loop that plays the shop forward.

The loop writes one line per turn until the budget is spent. Each turn one draw decides between
a bad line, a re-delivery, a conflict, or the shop's own story; the story always takes the
earliest scheduled event that is due, and otherwise makes something happen now (an order, a
product change, an unknown event type) and moves the clock on by a random gap.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from grid_sim.catalog import Catalog
from grid_sim.delivery import HEARTBEAT_TICK, ON_TIME, Delivery
from grid_sim.hostile import Hostile
from grid_sim.landing import LandingWriter
from grid_sim.orders import Orders
from grid_sim.payments import Payments
from grid_sim.platform import Platform
from grid_sim.producer import Producer
from grid_sim.profile import HOUR_MS, TrafficProfile
from grid_sim.summary import TrafficSummary


class _Traffic:
    """A run's families, sharing one producer (random source and clock) and one delivery."""

    def __init__(
        self,
        out_dir: Path,
        n_events: int,
        seed: int,
        n_files: int,
        gzip_every: int,
        profile: TrafficProfile,
    ) -> None:
        self.n_events = n_events
        self.producer = Producer(seed, profile)
        self.writer = LandingWriter(
            out_dir, n_events, n_files, gzip_every, self.producer.rnd, profile.blank_share
        )
        self.delivery = Delivery(self.producer, self.writer)
        self.catalog = Catalog(self.producer, self.delivery)
        self.platform = Platform(self.producer, self.delivery)
        payments = Payments(self.producer, self.delivery)
        self.orders = Orders(self.producer, self.delivery, self.catalog, payments)
        self.hostile = Hostile(
            self.producer, self.delivery, self.writer, self.catalog, self.orders, self.platform
        )

    def spontaneous(self) -> None:
        """Something happens now: an order, a product change, or an event of another kind."""
        profile, deliver = self.producer.profile, self.delivery.deliver
        r = self.producer.rnd()
        if r < profile.bad_share:
            event, qkind = self.hostile.broken_domain_event()
            deliver(event, qkind, ON_TIME)
        elif r < profile.order_below:
            self.orders.place()
        elif r < profile.product_update_below:
            deliver(self.catalog.update(), None, ON_TIME)
        else:
            deliver(self.platform.unknown_event(), None, ON_TIME)

    def loop(self) -> None:
        """Write lines until the budget is spent, always taking the earliest thing due next."""
        producer, delivery, hostile, writer = (
            self.producer,
            self.delivery,
            self.hostile,
            self.writer,
        )
        profile, rnd, expovariate = producer.profile, producer.rnd, producer.rng.expovariate
        bad_cut = profile.bad_share
        dup_cut = bad_cut + profile.duplicate_share
        conflict_cut = dup_cut + profile.conflict_share
        while writer.written < self.n_events:
            r = rnd()
            if r < bad_cut:
                hostile.reject_line()
            elif r < dup_cut and delivery.ring:
                hostile.duplicate()
            elif r < conflict_cut and delivery.ring:
                hostile.conflict()
            elif (due := delivery.next_due()) is not None:
                at, event, qkind, flag = due
                if flag == HEARTBEAT_TICK:
                    event, flag = self.platform.tick(at)
                assert event is not None
                delivery.deliver(event, qkind, flag)
            else:
                self.spontaneous()
                factor = profile.hourly_gap_factor[producer.clock // HOUR_MS % 24]
                producer.clock += int(expovariate(1 / profile.mean_gap_ms) * factor) + 1

    def run(self) -> TrafficSummary:
        try:
            self.catalog.create(self.n_events)
            self.platform.start()
            self.loop()
            self.writer.finish()
        finally:
            self.writer.close()
        delivery, hostile = self.delivery, self.hostile
        return TrafficSummary(
            files=tuple(self.writer.files),
            lines=self.writer.written,
            blank_lines=self.writer.blank,
            events_by_type=dict(sorted(delivery.events_by_type.items())),
            duplicates=hostile.duplicates,
            conflicts=hostile.conflicts,
            rejected=dict(sorted(hostile.rejected.items())),
            quarantined=dict(sorted(delivery.quarantined.items())),
            late_events=delivery.late,
            paid_before_placed=delivery.paid_before_placed,
        )


def generate_traffic(
    out_dir: Path,
    n_events: int,
    seed: int,
    n_files: int = 4,
    bad_share: float | None = None,
    gzip_every: int = 2,
    profile: TrafficProfile | None = None,
) -> TrafficSummary:
    """Write `n_events` non-blank NDJSON lines of simulated GRID traffic into `out_dir`.

    The lines are spread evenly over `n_files` files named `events-0001.ndjson`, ... so that name
    order is write order; every `gzip_every`-th file is gzipped (`.ndjson.gz`; 0 for none). Every
    line counts towards `n_events`: valid events, re-deliveries, conflicts and bad lines alike.
    How the shop and its producers behave is `profile` (the defaults of `TrafficProfile` unless
    given); `bad_share`, when given, replaces the profile's: about that share of the lines break
    the envelope contract, and about half as many valid events break a Silver rule. Orders still
    in flight when the budget runs out stay unfinished. Existing files with the same names are
    overwritten; other files are left alone. The same arguments always write the same bytes.
    """
    if n_events < 0 or n_files < 1 or gzip_every < 0:
        raise ValueError("need n_events >= 0, n_files >= 1, gzip_every >= 0")
    profile = profile or TrafficProfile()
    if bad_share is not None:
        profile = replace(profile, bad_share=bad_share)  # validated like any profile
    out_dir.mkdir(parents=True, exist_ok=True)
    return _Traffic(out_dir, n_events, seed, n_files, gzip_every, profile).run()
