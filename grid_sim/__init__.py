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

It is not part of the product: the `grid_assets` package never imports it, except `grid simulate`
when that command runs. Layout, one module per family of events:

    profile.py    TrafficProfile: every probability, delay and weight, documented
    producer.py   the shared random source, clock, timestamps, event ids and envelope
    catalog.py    product.created / product.updated
    orders.py     order.placed and its lines
    payments.py   order.paid / order.shipped / order.cancelled that follow a placement
    platform.py   system.heartbeat, and event types Silver ignores
    hostile.py    rejected lines, quarantine-worthy events, duplicates, id conflicts
    delivery.py   the schedule, late delivery, the ring of recent lines
    landing.py    the files: even split, gzip, flushing
    traffic.py    the run loop and `generate_traffic`
"""

from grid_sim.profile import TrafficProfile
from grid_sim.summary import TrafficSummary
from grid_sim.traffic import generate_traffic

__all__ = ["TrafficProfile", "TrafficSummary", "generate_traffic"]
