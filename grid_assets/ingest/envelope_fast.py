"""Bronze's fast path: the envelopes of a whole block of landing lines, decided in columns.

Most landing lines are GRID's compact layout, `{"event_id":..,"event_type":..,"occurred_at":..,
["source":..,]"payload":{...}}`, with envelope strings that need no unescaping. For those, a
block at a time and without a Python object per line:

- one regular expression (RE2, Arrow's kernel) and the line's last two characters prove the
  layout `envelope._PLAIN_LINE` takes: members in this order, plain printable ASCII strings,
  payload last;
- the members are cut at their quotes, found for all lines at once (numpy);
- `occurred_at` is certified only in the form `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)`
  with every field in its calendar range (years 2 to 9998, so that applying the offset cannot
  leave the calendar), and converted by integer arithmetic: the instant `parse_instant` gives;
- the payload is certified by DuckDB's JSON reader (yyjson, in C++, no Python object per
  value) when `envelope.too_deep` does not doubt it (Python's depth limit depends on the stack in
  use) and it holds nothing that reader is lenient about (`_LENIENT`): then Python's grammar
  reads it too;
- the envelope hash is `envelope_hash`'s length-prefixed members.

A line any step cannot prove is left to `parse_line`, which stays the definition;
`test_envelope_fast_path.py` proves the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from grid_assets.ingest.arrow import pc
from grid_assets.ingest.envelope import DEFAULT_SOURCE, MAX_BRACKETS, Envelope, too_deep
from grid_assets.ingest.landing import NEWLINE, LineBlock
from grid_assets.scratch import beside, scratch_with

_PLAIN = r'"[ !#-\[\]-~]*"'
# envelope._PLAIN_LINE is this head, then anything but a newline (a line has none), then `}}`
# ending the line: the expression (RE2, anchored) only reads the head, not the payload.
LAYOUT_HEAD = (
    rf'^\{{"event_id":{_PLAIN},"event_type":{_PLAIN},"occurred_at":{_PLAIN}'
    rf'(?:,"source":{_PLAIN})?,"payload":\{{'
)
INSTANT = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})$"
)
_QUOTE = ord('"')
_BRACE = ord("}")
_ZULU = ord("Z")
_MINUS = ord("-")
_SOURCE_KEY = ord("s")  # `,"source"` rather than `,"payload"` after occurred_at
# Spans cut per line: gap, event_id, gap, event_type, gap, occurred_at, gap, source, gap,
# payload, gap.
_FIELDS = 11
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_UTC_INSTANT = pa.timestamp("us", tz="UTC")
# What DuckDB's JSON reader takes and Python's refuses: a comma before `]` or `}`; `inf`,
# `infinity` or `nan` in any case, signed or not (Python reads `NaN`, `Infinity` and `-Infinity`
# only); a number with an exponent Python's Decimal cannot hold (any number with an exponent is
# doubted). Matched anywhere, strings included: a false alarm only costs a Python read.
_LENIENT = (
    r",[ \t\n\r]*[\]}]"
    r"|[:,\[][ \t\n\r]*[-+]?(?:[iI]|[nN][aA])"
    r"|[:,\[][ \t\n\r]*-?[0-9]+(?:\.[0-9]+)?[eE]"
)
# CASE: the reader never sees a payload that is not a candidate (one `too_deep` doubts).
_VALID_JSON = """
SELECT CASE WHEN candidate THEN json_valid(payload) ELSE false END AS valid FROM payloads
"""


@dataclass(frozen=True)
class Certified:
    """The lines of a block proven valid (`index`: their positions, increasing) and, in the same
    order, their envelopes: event_id, event_type, occurred_at, source, payload, envelope_hash."""

    index: np.ndarray
    envelopes: pa.Table

    @classmethod
    def none(cls) -> Certified:
        return cls(np.zeros(0, np.int64), _empty())


def envelope_of(row: dict) -> Envelope:
    """The Envelope of one row of `Certified.envelopes` (or any table with its columns)."""
    return Envelope(
        row["event_id"],
        row["event_type"],
        row["occurred_at"],
        row["source"],
        row["payload"],
        row["envelope_hash"],
    )


def certify(block: LineBlock) -> Certified:
    if not len(block):
        return Certified.none()
    data = np.frombuffer(block.data, np.uint8)
    starts, ends = block.starts, block.ends
    stops = ends - (data[ends - 1] == NEWLINE)  # a line without its newline
    last, before = (data.take(stops - k, mode="clip") for k in (1, 2))  # clip: never outside
    closed = (stops - starts >= 2) & (last == _BRACE) & (before == _BRACE)
    index = np.flatnonzero(_utf8_head(_lines(block.data, starts, ends)) & closed)
    if len(index):
        envelopes, proven = _envelopes(data, block.data, starts[index], stops[index])
        index, envelopes = index[proven], envelopes.filter(pa.array(proven))
        return Certified(index, envelopes)
    return Certified.none()


def _lines(data: bytes, starts: np.ndarray, ends: np.ndarray) -> pa.Array:
    """`data[starts[i]:ends[i]]` for every i, as one binary array viewing `data` (a block's
    lines lie back to back: each starts where the one before ends)."""
    offsets = np.append(starts[:1], ends)
    return pa.Array.from_buffers(
        pa.large_binary(), len(starts), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _utf8_head(lines: pa.Array) -> np.ndarray:
    """Which lines are UTF-8 and start with the compact layout's head."""
    try:
        text = lines.cast(pa.large_string())
    except pa.ArrowInvalid:  # some line is not UTF-8: those are left to the general path
        utf8 = [_is_utf8(line) for line in lines.to_pylist()]
        text = pc.if_else(pa.array(utf8), lines, pa.scalar(b"", lines.type)).cast(pa.large_string())
    return pc.match_substring_regex(text, LAYOUT_HEAD).to_numpy(zero_copy_only=False)


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _envelopes(
    data: np.ndarray, raw: bytes, starts: np.ndarray, stops: np.ndarray
) -> tuple[pa.Table, np.ndarray]:
    """The members of lines known to be in the compact layout, and which of them are proven."""
    quotes = np.flatnonzero(data == _QUOTE)
    first = np.searchsorted(quotes, starts)

    def quote(k: int) -> np.ndarray:
        return quotes[first + k]

    at_end = quote(11)
    has_source = data[quote(12) + 1] == _SOURCE_KEY
    payload_key_end = np.where(has_source, _quote_or(quotes, first, 17), quote(13))
    bounds = np.stack(
        [
            starts,
            quote(2) + 1,
            quote(3),
            quote(6) + 1,
            quote(7),
            quote(10) + 1,
            at_end,
            np.where(has_source, _quote_or(quotes, first, 14) + 1, at_end),
            np.where(has_source, _quote_or(quotes, first, 15), at_end),
            payload_key_end + 2,  # after `":`
            stops - 1,  # before the envelope's closing brace
        ],
        axis=1,
    )
    count = len(starts)
    offsets = np.append(bounds.reshape(-1), stops[-1])
    fields = pa.Array.from_buffers(
        pa.large_string(), _FIELDS * count, [None, pa.py_buffer(offsets), pa.py_buffer(raw)]
    )

    def field(k: int) -> pa.Array:
        return fields.take(pa.array(np.arange(k, _FIELDS * count, _FIELDS)))

    event_id, event_type, at_text, source, payload = (field(k) for k in (1, 3, 5, 7, 9))
    # Hashed by DuckDB on a thread of its own (it releases the GIL) while this one goes on.
    hashes = beside(_hashes, event_id, event_type, at_text, source, has_source)
    occurred_us, instant_ok = _instants(data, at_text, bounds[:, 5], bounds[:, 6])
    proven = instant_ok & _not_blank(event_id) & _not_blank(event_type)
    # Only a payload longer than MAX_BRACKETS bytes can hold that many: `too_deep` decides those.
    long = np.flatnonzero(proven & (bounds[:, 10] - bounds[:, 9] > MAX_BRACKETS))
    if len(long):
        deep = [too_deep(text) for text in payload.take(pa.array(long)).to_pylist()]
        proven[long[np.array(deep, bool)]] = False
    proven &= _json(payload, proven)
    source = pc.if_else(pa.array(has_source), source, pa.scalar(DEFAULT_SOURCE, source.type))
    envelopes = pa.table(
        {
            "event_id": event_id,
            "event_type": event_type,
            "occurred_at": pa.array(np.where(proven, occurred_us, 0), _UTC_INSTANT),
            "source": source,
            "payload": payload,
            "envelope_hash": hashes.result(),
        }
    )
    return envelopes, proven


def _quote_or(quotes: np.ndarray, first: np.ndarray, k: int) -> np.ndarray:
    """Quote `k` of each line, or the last quote of the block where a line has fewer (those
    lines have no source member, and the value is not used)."""
    return quotes[np.minimum(first + k, len(quotes) - 1)]


def _not_blank(strings: pa.Array) -> np.ndarray:
    # Printable ASCII: the only character `str.strip()` removes is the space.
    return pc.match_substring_regex(strings, "[^ ]").to_numpy(zero_copy_only=False)


def _json(payload: pa.Array, candidates: np.ndarray) -> np.ndarray:
    """Whether each candidate payload is JSON Python's grammar reads (False for the others)."""
    with scratch_with(payloads=pa.table({"payload": payload, "candidate": candidates})) as db:
        valid = db.sql(_VALID_JSON).to_arrow_table().column("valid").to_numpy()
    # Arrow's regular expressions (RE2) run about twice as fast here as DuckDB's.
    lenient = pc.match_substring_regex(payload, _LENIENT).to_numpy(zero_copy_only=False)
    return valid & ~lenient


def _instants(
    data: np.ndarray, text: pa.Array, begin: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Microseconds since the epoch (UTC) of each `occurred_at` text (at `data[begin:end]`), and
    whether it is in the certified form with every field in range."""
    form = pc.match_substring_regex(text, INSTANT).to_numpy(zero_copy_only=False)
    # The text's characters as digits, one column at a time (garbage outside the form, never
    # read out of bounds): "YYYY-MM-DDTHH:MM:SS" at 0-18, the fraction from 20, the zone last.
    last = len(data) - 1

    def cell(column: int | np.ndarray) -> np.ndarray:
        return data[np.clip(begin + column, 0, last)].astype(np.int32) - ord("0")

    def number(*columns: int) -> np.ndarray:
        total = cell(columns[0])
        for column in columns[1:]:
            total = total * 10 + cell(column)
        return total.astype(np.int64)

    year, month, day = number(0, 1, 2, 3), number(5, 6), number(8, 9)
    hour, minute, second = number(11, 12), number(14, 15), number(17, 18)
    length = end - begin
    zulu = cell(length - 1) == _ZULU - ord("0")
    zone_at = np.where(zulu, length - 1, length - 6)  # 'Z', or the sign of +HH:MM
    sign = np.where(cell(zone_at) == _MINUS - ord("0"), -1, 1)
    offset_hours = np.where(zulu, 0, cell(zone_at + 1) * 10 + cell(zone_at + 2))
    offset_minutes = np.where(zulu, 0, cell(zone_at + 4) * 10 + cell(zone_at + 5))
    fraction_digits = zone_at - 20  # after "YYYY-MM-DDTHH:MM:SS."; <= 0 without one
    micro = np.zeros(len(begin), np.int64)
    for k in range(6):  # digit k of the fraction, 0 where the fraction is shorter
        micro = micro * 10 + np.where(k < fraction_digits, cell(20 + k), 0)

    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
    in_range = (
        (year >= 2)
        & (year <= 9998)
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= month_days)
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
        & (offset_hours <= 23)
        & (offset_minutes <= 59)
    )
    # Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    y = year - (month <= 2)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146_097 + day_of_era - 719_468
    seconds = days * 86_400 + hour * 3_600 + minute * 60 + second
    seconds -= sign * (offset_hours * 3_600 + offset_minutes * 60)
    return seconds * 1_000_000 + micro, form & in_range


def _hashes(
    event_id: pa.Array, event_type: pa.Array, at_text: pa.Array, source: pa.Array, has_source
) -> pa.Array:
    """`envelope_hash`: SHA-256 of the length-prefixed members (ASCII: a length in bytes is one
    in characters), hashed by DuckDB in C++."""

    def text(value: str) -> pa.Scalar:
        return pa.scalar(value, pa.large_string())

    def member(key: str, value: pa.Array) -> pa.Array:
        length = pc.binary_length(value).cast(pa.large_string())
        prefix = text(f"{len(key)}:{key}")
        return pc.binary_join_element_wise(prefix, length, text(":"), value, text(""))

    members = pc.binary_join_element_wise(
        member("event_id", event_id),
        member("event_type", event_type),
        member("occurred_at", at_text),
        pc.if_else(pa.array(has_source), member("source", source), text("")),
        text(""),
    )
    with scratch_with(members=pa.table({"m": members})) as db:
        return db.sql("SELECT sha256(m) AS h FROM members").to_arrow_table().column("h")


def _empty() -> pa.Table:
    text = pa.array([], pa.large_string())
    return pa.table(
        {
            "event_id": text,
            "event_type": text,
            "occurred_at": pa.array([], _UTC_INSTANT),
            "source": text,
            "payload": text,
            "envelope_hash": text,
        }
    )
