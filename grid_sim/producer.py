"""What every simulated GRID producer shares: the random source, the clock and the envelope.

One `Producer` is made per generation run and handed to every event family, so they all draw
from the same `random.Random` in the order the run calls them: that order is what makes a seed
reproduce the same bytes, so a family must never draw ahead or keep a generator of its own.

The frequent events are rendered with f-strings rather than the JSON encoder: every string in them
comes from the generator's own vocabulary (no quotes, backslashes or control characters), and
skipping the encoder roughly halves the time a million-event benchmark input takes.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from typing import Any

from grid_sim.profile import HOUR_MS, TrafficProfile

# 2026-01-05T00:00:00Z in milliseconds since the Unix epoch: a fixed origin keeps output
# independent of when the generator runs.
BASE_MS = 1_767_571_200_000
_EPOCH = date(1970, 1, 1)
# Lookup tables: formatting integers is the costliest part of rendering a timestamp.
_MINUTE_SECOND = tuple(f"{m:02d}:{s:02d}" for m in range(60) for s in range(60))
_MILLIS = tuple(f"{ms:03d}" for ms in range(1000))
_UUID_RANDOM_BITS = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4_BITS = (0x4000 << 64) | (0x8000 << 48)
# Local offsets some producers report instants in: (suffix, minutes east of UTC).
OFFSETS = (("+02:00", 120), ("-05:00", -300), ("+05:30", 330), ("+09:00", 540), ("-08:00", -480))

# A rendered NDJSON line and its event type.
Event = tuple[str, str]


def money(ten_thousandths: int) -> str:
    """Format an amount kept in 1/10000 units: two decimals unless it needs four."""
    sign = "-" if ten_thousandths < 0 else ""
    whole, frac = divmod(abs(ten_thousandths), 10_000)
    if frac % 100 == 0:
        return f"{sign}{whole}.{frac // 100:02d}"
    return f"{sign}{whole}.{frac:04d}"


class Producer:
    """The run's random source, its clock (`clock`, ms since the epoch) and envelope rendering."""

    def __init__(self, seed: int, profile: TrafficProfile) -> None:
        self.profile = profile
        self.rng = random.Random(seed)
        self.rnd = self.rng.random
        self.clock = BASE_MS
        self.dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self._hours: dict[int, str] = {}

    def pick(self, options: tuple[Any, ...] | list[Any]) -> Any:
        return options[int(self.rnd() * len(options))]

    def customer_id(self) -> str:
        return f"C-{int(self.rnd() * self.profile.customers) + 1:06d}"

    def event_id(self) -> str:
        # Version 4 and the RFC 4122 variant, so ids look like what GRID's producers emit.
        h = f"{(self.rng.getrandbits(128) & _UUID_RANDOM_BITS) | _UUID_V4_BITS:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def iso(self, ms: int, suffix: str = "Z", offset_minutes: int = 0) -> str:
        hour, rem = divmod(ms + offset_minutes * 60_000, HOUR_MS)
        prefix = self._hours.get(hour)
        if prefix is None:
            day, hour_of_day = divmod(hour, 24)
            prefix = f"{(_EPOCH + timedelta(days=day)).isoformat()}T{hour_of_day:02d}:"
            if len(self._hours) > 256:  # events cluster around the clock: a small cache suffices
                self._hours.clear()
            self._hours[hour] = prefix
        return f"{prefix}{_MINUTE_SECOND[rem // 1000]}.{_MILLIS[rem % 1000]}{suffix}"

    def occurred(self, ms: int) -> str:
        # Most producers speak UTC; some report the same instant in local time with its offset.
        if self.rnd() < self.profile.utc_share:
            return self.iso(ms)
        return self.iso(ms, *self.pick(OFFSETS))

    def envelope(
        self, event_type: str, ms: int, source: str, payload_json: str, event_id: str = ""
    ) -> Event:
        head = (
            f'{{"event_id":"{event_id or self.event_id()}","event_type":"{event_type}",'
            f'"occurred_at":"{self.occurred(ms)}"'
        )
        if self.rnd() < self.profile.source_omitted_share:  # `source` is optional
            return f'{head},"payload":{payload_json}}}', event_type
        return f'{head},"source":"{source}","payload":{payload_json}}}', event_type
