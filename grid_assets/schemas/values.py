"""The value rules of the contract, shared by the pandera checks and the typed conversion, so a
value that passes validation converts exactly (never through a float)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

MONEY_MAX_DECIMALS = 6
MONEY_MAX_INTEGER_DIGITS = 12  # Silver stores DECIMAL(18, 6)
ORDER_STATUSES = ("placed", "paid", "shipped", "cancelled")
_CURRENCY = re.compile(r"^[A-Za-z]{3}$")


def to_decimal(value: Any) -> Decimal | None:
    """A JSON number (already a Decimal or int) or a decimal string with at most six decimal
    places and twelve integer digits; None when it is none of these."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    if not number.is_finite():
        return None
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MONEY_MAX_DECIMALS:
        return None
    if abs(number) >= Decimal(10) ** MONEY_MAX_INTEGER_DIGITS:
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
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def is_optional_text(value: Any) -> bool:
    return value is None or isinstance(value, str)


def is_currency(value: Any) -> bool:
    return isinstance(value, str) and bool(_CURRENCY.match(value))


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)
