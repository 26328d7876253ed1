"""Parse one raw NDJSON line into an event envelope, or say exactly why it is rejected.

The payload is cut verbatim out of the line (never re-serialized), so Bronze keeps GRID's text
byte for byte and money is never touched by a float.

Lines are read by orjson, which only has to find the structure here: every value Bronze keeps
is a string or verbatim text. A line orjson refuses (its grammar is strict RFC 8259; Python's
also takes NaN, lone surrogates and huge numbers) or whose envelope holds a number (hashed
exactly) is read again by the standard library's decoder, the grammar of record.

Most lines are GRID's own compact layout, and those take a shorter road (`_plain_line`): one
regular expression proves the line is exactly `{"event_id":..,"event_type":..,"occurred_at":..,
["source":..,]"payload":{...}}` with envelope strings that need no unescaping, orjson checks the
payload alone, and the same instant parser and hash give the same envelope as the general path
(about 5 µs a line instead of 11). Any line it cannot prove is read by the general path, which
stays the definition (`parse_line_exact`); `test_envelope_fast_path.py` proves the two equal.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

# Every number becomes a Decimal: exact, and 10 and 10.0 compare as the same JSON value.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=Decimal)
_scan_once = _DECODER.scan_once  # pyright: ignore[reportAttributeAccessIssue]
_WHITESPACE = json.decoder.WHITESPACE  # type: ignore[attr-defined]
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]

DEFAULT_SOURCE = "unknown"


class Envelope(NamedTuple):
    event_id: str
    event_type: str
    occurred_at: datetime
    source: str
    payload_text: str
    envelope_hash: str  # canonical hash of every member but the payload

    def same_content(self, envelope_hash: str, payload_text: str) -> bool:
        """Whether another occurrence (its envelope hash and payload text) is the same JSON value.

        Cheap in the usual case (identical spelling); parses both payloads only when the text
        differs, which happens for a handful of re-sent events, never per line.
        """
        if envelope_hash != self.envelope_hash:
            return False
        if payload_text == self.payload_text:
            return True
        try:
            return payload_hash(payload_text) == payload_hash(self.payload_text)
        except (NumberTooLarge, RecursionError):
            return False  # not comparable as values: only the same text is the same event


class Rejection(NamedTuple):
    reason: str


class _NotAnObject(ValueError):
    pass


class NumberTooLarge(ValueError):
    """A JSON number too large to have one canonical form of reasonable size."""


# Python's own bound on converting digits to an int; a number beyond it is no value that any
# consumer of Bronze could convert, and spelling it out in full (for the hash) would be unbounded.
MAX_NUMBER_DIGITS = 4300


def _scan_object(line: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Decode a top-level JSON object, also returning each member's exact source text."""
    idx = _WHITESPACE.match(line, 0).end()
    if line[idx : idx + 1] != "{":
        _DECODER.decode(line)  # raises JSONDecodeError for non-JSON; otherwise it is a non-object
        raise _NotAnObject
    values: dict[str, Any] = {}
    texts: dict[str, str] = {}
    idx = _WHITESPACE.match(line, idx + 1).end()
    if line[idx : idx + 1] == "}":
        idx += 1
    else:
        while True:
            if line[idx : idx + 1] != '"':
                raise json.JSONDecodeError("Expecting property name in double quotes", line, idx)
            key, idx = _scanstring(line, idx + 1)
            idx = _WHITESPACE.match(line, idx).end()
            if line[idx : idx + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", line, idx)
            idx = _WHITESPACE.match(line, idx + 1).end()
            try:
                value, end = _scan_once(line, idx)
            except StopIteration as exc:
                raise json.JSONDecodeError("Expecting value", line, exc.value) from None
            values[key] = value
            texts[key] = line[idx:end]
            idx = _WHITESPACE.match(line, end).end()
            sep = line[idx : idx + 1]
            idx = _WHITESPACE.match(line, idx + 1).end()
            if sep == "}":
                break
            if sep != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", line, idx)
    if _WHITESPACE.match(line, idx).end() != len(line):
        raise json.JSONDecodeError("Extra data", line, idx)
    return values, texts


def _payload_text_fast(line: str, payload: dict[str, Any]) -> str | None:
    """The payload's source text when it is the object's last member (GRID's usual layout).

    A `"payload"` key (preceded by `{` or `,`, so not the tail of another key) whose value,
    up to the line's closing brace, parses on its own can only be a top-level member; it
    must also equal the payload already decoded.
    """
    close = len(line.rstrip()) - 1  # the closing brace of the (valid) top-level object
    position = line.rfind('"payload"', 0, close)
    while position != -1:
        before = position - 1
        while before >= 0 and line[before] in " \t\r\n":
            before -= 1
        colon = _WHITESPACE.match(line, position + 9).end()
        if before >= 0 and line[before] in "{," and line[colon : colon + 1] == ":":
            start = _WHITESPACE.match(line, colon + 1).end()
            text = line[start:close].rstrip()
            try:
                if orjson.loads(text) == payload:
                    return text
            except orjson.JSONDecodeError:
                pass  # a nested "payload" key: its value is followed by more closing braces
        position = line.rfind('"payload"', 0, position)
    return None


def _decode_exact(line: str) -> tuple[dict[str, Any], str | None]:
    """`_decode` by the standard library alone: numbers exact, its grammar and messages."""
    values = _DECODER.decode(line)  # C scanner; raises JSONDecodeError on invalid JSON
    if not isinstance(values, dict):
        raise _NotAnObject
    if not isinstance(values.get("payload"), dict):
        return values, None
    return values, _scan_object(line)[1]["payload"]


def _decode(line: str) -> tuple[dict[str, Any], str | None]:
    """The envelope's members and the payload's verbatim text (None if there is no object)."""
    try:
        values = orjson.loads(line)
    except orjson.JSONDecodeError:
        return _decode_exact(line)
    if type(values) is not dict:
        raise _NotAnObject
    for key, value in values.items():
        if type(value) is not str and key != "payload":
            return _decode_exact(line)  # a number in the envelope is hashed exactly
    payload = values.get("payload")
    if type(payload) is not dict:
        return values, None
    text = _payload_text_fast(line, payload)
    if text is None:
        text = _scan_object(line)[1]["payload"]
    return values, text


def _canonical_number(value: Decimal) -> dict[str, str]:
    # Tagged so that 1.50 and 1.5 hash alike (same JSON value) but never like the string "1.5".
    if not value.is_finite() or abs(value.adjusted()) > MAX_NUMBER_DIGITS:
        raise NumberTooLarge("exponent")  # checked first: normalize() would overflow
    normal = value.normalize()
    if len(normal.as_tuple().digits) > MAX_NUMBER_DIGITS:
        raise NumberTooLarge("digits")
    return {"$number": format(normal, "f")}


def content_hash(value: Any) -> str:
    """Hash of a JSON value: equal for the same value whatever key order, spacing or number form."""
    canonical = json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_canonical_number,
    )
    # surrogatepass: a lone surrogate is valid JSON (Bronze keeps it) and must hash, not raise.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def envelope_hash(values: dict[str, Any]) -> str:
    """Canonical hash of every envelope member but the payload.

    Members are usually plain strings, hashed length-prefixed (unambiguous) without a JSON
    encoder; any other value goes through the canonical JSON of `content_hash`.
    """
    members = {key: _member_text(value) for key, value in values.items() if key != "payload"}
    parts = [f"{len(key)}:{key}{len(members[key])}:{members[key]}" for key in sorted(members)]
    return hashlib.sha256("".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _member_text(value: Any) -> str:
    return value if type(value) is str else "\x00" + content_hash(value)


def payload_hash(payload_text: str) -> str:
    return content_hash(_DECODER.decode(payload_text))


def parse_instant(value: Any) -> datetime | str:
    """An ISO-8601 instant with an explicit offset, as UTC; or the reason it is not one."""
    if not isinstance(value, str) or not value.strip():
        return "invalid_occurred_at"
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return "invalid_occurred_at"
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return "occurred_at_without_offset"
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is a valid spelling of an instant before year 1
        return "invalid_occurred_at"


# A JSON string that is its own value: printable ASCII without '"' or '\\' (so no escapes, and
# a length in characters is the length Python counts).
_PLAIN = r'"([ !#-\[\]-~]*)"'
# GRID's compact layout: the four envelope members in this order (`source` optional), the
# payload object last, nothing else, no whitespace. Keys spelled with escapes, other members,
# another order or any spacing go to the general path.
_PLAIN_LINE = re.compile(
    rf'\{{"event_id":{_PLAIN},"event_type":{_PLAIN},"occurred_at":{_PLAIN}'
    rf'(?:,"source":{_PLAIN})?,"payload":(\{{.*\}})\}}',
    re.DOTALL,
)


# orjson reads JSON nested up to 1,024 deep; Python's reader stops short of its recursion limit
# (1,000), which also counts the stack already in use. A fast path vouches for no text holding
# more brackets than this, so that depth never decides anything there.
MAX_BRACKETS = 200


def too_deep(text: str) -> bool:
    """Whether `text` may be nested deeper than a fast path vouches for."""
    return len(text) > MAX_BRACKETS and text.count("[") + text.count("{") > MAX_BRACKETS


def _plain_line(raw: str) -> Envelope | None:
    """The envelope of a line in GRID's compact layout that is certainly valid; None for any
    other line (the general path decides it).

    The expression fixes every member but the payload, whose text it captures whole; orjson
    accepting that text as one JSON value makes it one object (it starts with `{` and ends
    with `}`), hence the line one valid object with exactly these members. Python's grammar
    accepts whatever orjson does. Values are then checked and hashed as `parse_line_exact`
    does (`parse_instant`, `envelope_hash`'s length-prefixed members, here in sorted order)."""
    match = _PLAIN_LINE.fullmatch(raw)
    if match is None:
        return None
    event_id, event_type, at_text, source, payload_text = match.groups()
    if not event_id.strip() or not event_type.strip():
        return None
    occurred_at = parse_instant(at_text)
    if type(occurred_at) is str or too_deep(payload_text):
        return None
    try:
        orjson.loads(payload_text)
    except orjson.JSONDecodeError:
        return None
    members = (
        f"8:event_id{len(event_id)}:{event_id}10:event_type{len(event_type)}:{event_type}"
        f"11:occurred_at{len(at_text)}:{at_text}"
    )
    if source is None:
        source = DEFAULT_SOURCE
    else:
        members += f"6:source{len(source)}:{source}"
    return Envelope(
        event_id,
        event_type,
        occurred_at,  # type: ignore[arg-type]
        source,
        payload_text,
        hashlib.sha256(members.encode("ascii")).hexdigest(),
    )


def parse_line(raw: str) -> Envelope | Rejection | None:
    """None for a blank line; an Envelope for a valid event; otherwise a Rejection."""
    return _plain_line(raw) or parse_line_exact(raw)


def parse_line_exact(raw: str) -> Envelope | Rejection | None:
    """`parse_line` by the general path alone: the grammar of record."""
    if not raw.strip():
        return None
    try:
        values, payload_text = _decode(raw)
    except _NotAnObject:
        return Rejection("not_a_json_object")
    except json.JSONDecodeError as exc:
        return Rejection(f"invalid_json: {exc.msg}")
    except RecursionError:
        return Rejection("invalid_json: nested too deeply")
    except decimal.InvalidOperation:  # an exponent beyond what Decimal itself can hold
        return Rejection("number_too_large")

    reasons: list[str] = []
    for name in ("event_id", "event_type"):
        if name not in values:
            reasons.append(f"missing_{name}")
        elif not isinstance(values[name], str) or not values[name].strip():
            reasons.append(f"invalid_{name}")
        elif not _is_unicode(values[name]):
            reasons.append("invalid_unicode")
    occurred_at: datetime | str = "missing_occurred_at"
    if "occurred_at" in values:
        occurred_at = parse_instant(values["occurred_at"])
    if isinstance(occurred_at, str):
        reasons.append(occurred_at)
    source = values.get("source", DEFAULT_SOURCE)
    if source is None:
        source = DEFAULT_SOURCE
    elif not isinstance(source, str):
        reasons.append("invalid_source")
    elif not _is_unicode(source):
        reasons.append("invalid_unicode")
    if "payload" not in values:
        reasons.append("missing_payload")
    elif not isinstance(values["payload"], dict):
        reasons.append("invalid_payload")
    try:
        hashed = envelope_hash(values)
    except NumberTooLarge:
        reasons.append("number_too_large")
    if reasons:
        return Rejection("; ".join(dict.fromkeys(reasons)))
    assert isinstance(occurred_at, datetime)
    return Envelope(
        event_id=values["event_id"],
        event_type=values["event_type"],
        occurred_at=occurred_at,
        source=source,
        payload_text=payload_text or "",
        envelope_hash=hashed,
    )


def _is_unicode(text: str) -> bool:
    """False for a string holding a lone surrogate (`"\\ud800"` is valid JSON, but no Unicode
    text: it cannot be stored as UTF-8)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
