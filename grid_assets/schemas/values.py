"""The value rules of the contract, shared by the pandera checks and the typed conversion, so a
value that passes validation converts exactly (never through a float)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

MONEY_MAX_DECIMALS = 6
MONEY_MAX_INTEGER_DIGITS = 12  # Silver stores DECIMAL(18, 6)
ORDER_STATUSES = ("placed", "paid", "shipped", "cancelled")
QUANTITY_MAX = 2**31 - 1  # Silver stores INT
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_MONEY_LIMIT = Decimal(10) ** MONEY_MAX_INTEGER_DIGITS
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number (already a Decimal or int) or a decimal string with at most six decimal
    places and twelve integer digits; None when it is none of these."""
    kind = type(value)  # exact types: a bool is not a number here
    if kind is Decimal:
        number = value
    elif kind is int:
        number = Decimal(value)
    elif kind is str:
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):  # Decimal() would also take "1_0", "NaN", "1e3"
            return None
        number = Decimal(text)
    else:
        return None
    if not number.is_finite():
        return None
    if number.as_tuple().exponent < -MONEY_MAX_DECIMALS:  # type: ignore[operator]
        return None
    if not -_MONEY_LIMIT < number < _MONEY_LIMIT:
        return None
    return number


def is_money(value: Any) -> bool:
    number = to_decimal(value)
    return number is not None and number >= 0


def is_discount(value: Any) -> bool:
    number = to_decimal(value)
    return number is not None and 0 <= number < 1


def is_positive_int(value: Any) -> bool:
    # A JSON 1.5 or 2.0 arrives as Decimal, never int: only integer literals are quantities.
    return type(value) is int and 0 < value <= QUANTITY_MAX


def is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def is_optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def is_currency(value: Any) -> bool:
    # fullmatch: `$` would also accept "USD\n", which Gold would then group apart from "USD".
    return isinstance(value, str) and bool(_CURRENCY.fullmatch(value))


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)
