"""Decode one Bronze payload for Silver, or name the defect that keeps it out of Silver.

Bronze keeps any payload the standard library's JSON reader accepts (its grammar of record),
and that reader takes more than Silver can hold: lone UTF-16 surrogates (`"\\ud800"`, text that
cannot be written as UTF-8), integers beyond Python's 4,300-digit conversion limit, exponents
beyond `Decimal`'s range, nesting deeper than the interpreter's stack, and `NaN`/`Infinity`.
Each of these becomes a quarantine reason of the event (`payload: <defect>`) or, for the
constants, a value no rule accepts, so one such event never stops a batch.

The checks cost next to nothing on ordinary payloads: surrogates are looked for only in text
that contains a `\\ud` escape, and nesting is measured only in text that has more brackets than
the limit allows.
"""

from __future__ import annotations

import decimal
import itertools
import json
import re
from decimal import Decimal
from typing import Any

# Deepest nesting of objects and arrays accepted in a payload, the payload object included.
# A fixed limit (GRID's payloads are 3 deep) keeps the verdict independent of how deep the
# interpreter's stack already is when the payload is decoded.
MAX_PAYLOAD_DEPTH = 128

INVALID_JSON = "payload: invalid_json"
NOT_AN_OBJECT = "payload: not_an_object"
NUMBER_TOO_LARGE = "payload: number_too_large"
NESTED_TOO_DEEPLY = "payload: nested_too_deeply"
INVALID_UNICODE = "payload: invalid_unicode"


class NonFiniteNumber:
    """`NaN`, `Infinity` or `-Infinity` in a payload: not a JSON number, so no rule accepts it
    (a float NaN would pass as a missing value and then fail to convert)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


# Integers stay int so that 1.5 or 2.0 can never pass as a quantity; every other number is exact.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=NonFiniteNumber)
# A JSON string literal (escapes included), to blank out brackets inside strings.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_payload(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The payload object and the defect that quarantines its event, if any.

    The object is None when the text cannot be read at all; with `INVALID_UNICODE` it is
    returned too, so the event's field rules are still checked and reported."""
    if len(text) > 2 * MAX_PAYLOAD_DEPTH and _deeper_than_allowed(text):
        return None, NESTED_TOO_DEEPLY
    try:
        payload = _DECODER.decode(text)
    except json.JSONDecodeError:
        return None, INVALID_JSON
    except (ValueError, decimal.DecimalException):
        # The only other errors of the reader: an integer beyond int()'s digit limit, or an
        # exponent beyond Decimal's range.
        return None, NUMBER_TOO_LARGE
    except RecursionError:
        return None, NESTED_TOO_DEEPLY
    if type(payload) is not dict:
        return None, NOT_AN_OBJECT
    if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(payload):
        return payload, INVALID_UNICODE
    return payload, None


def _deeper_than_allowed(text: str) -> bool:
    if text.count("[") + text.count("{") <= MAX_PAYLOAD_DEPTH:
        return False  # cannot nest deeper than it has brackets
    brackets = _BRACKETS.findall(_STRING.sub("", text))
    steps = (1 if bracket in "[{" else -1 for bracket in brackets)
    return max(itertools.accumulate(steps), default=0) > MAX_PAYLOAD_DEPTH


def _has_lone_surrogate(payload: dict[str, Any]) -> bool:
    """Whether any key or string holds a surrogate code point. The decoder joins a valid
    escaped pair (an emoji's `\\ud83d\\ude00`) into one character, so one left is alone."""
    pending: list[Any] = [payload]
    while pending:
        value = pending.pop()
        kind = type(value)
        if kind is str:
            if _SURROGATE.search(value):
                return True
        elif kind is dict:
            pending.extend(value)
            pending.extend(value.values())
        elif kind is list:
            pending.extend(value)
    return False
