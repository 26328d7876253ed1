"""Silver's fast path: DuckDB reads and checks, in C++, the payloads it can prove within the rules.

`silver_rows._build` (Python's JSON reader, pandera's checks) is the definition of Silver, and it
costs about 30 µs an event. Most events are plain: one statement per batch, in a private
in-memory DuckDB (never the lakehouse), proves which domain events certainly pass every rule and
lays out their rows; only the others go through `_build`. An event is certified only when all of
these hold (anything else, or any doubt, is Python's to decide, which also finds its reasons):

- Its payload text holds none of what the two JSON readers take differently, anywhere (strings
  included: a false alarm only costs a Python read): `\\u` escapes of surrogates or NUL,
  `NaN`/`Infinity`, a number with an exponent, a run of 17 or more digits and dots (so every
  number has at most 15 significant digits and reads back exactly from a double), 7 or more
  digits after a dot (so every number has at most 6 decimals), more brackets than the nesting
  limit allows. It is a JSON object without a repeated key, and so is each order line (DuckDB
  reads the first of a repeated key, Python the last).
- Every value Silver reads is of the one plain form the rules certainly accept: ids and category
  strings with a visible ASCII character (so not blank to `str.strip`); `name`/`customer_id`
  missing, null or a string; money a JSON number or a string of 1-12 digits with at most 6
  decimals and no sign or spaces, read exactly as DECIMAL(18, 6) from its text; a discount
  missing, null or such money below 1; a quantity a JSON integer 1..2^31-1; a currency missing
  or three ASCII letters; `active` missing or a boolean; `items` a non-empty array of objects.

Certified events are `applied` and produce the same rows, in the same order, as `_build` would;
`test_silver_fast_path.py` proves it on the samples, Northwind, the generator's traffic and
generated payloads on every rule's boundary.

The statement runs in the Dagster process on the batch it already holds, so both engines use it.
A Databricks SQL warehouse could run the same certification itself (`regexp_like` for the
doubts, `json_object_keys` for repeated keys, `get_json_object`/`from_json` for the values,
`TRY_CAST ... AS DECIMAL(18, 6)`), writing the certified rows with one MERGE per batch so that
Bronze's payloads never travel to the Dagster process. What stops it today: Spark's JSON
functions read some inputs differently from DuckDB's (repeated keys, number spellings), so each
guard here would need its own differential proof against Spark (the local Spark tier of the
tests could run it; it has not been written), and only the rows Spark cannot prove would then be
fetched for Python.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from grid_assets.ingest.arrow import pc
from grid_assets.scratch import beside, scratch_with
from grid_assets.transform.payload import MAX_PAYLOAD_DEPTH

# Every JSON number follows one of `:,[` (and whitespace): a digit run there that ends in an
# exponent is a number with an exponent; anywhere else (`"1Z8F9918E292"`) it is text.
_DOUBT = (
    r"\\u[dD]|\\u0000|NaN|Infinity|[0-9.]{17}|\.[0-9]{7}"
    r"|[:,\[][ \t\n\r]*-?[0-9]+(\.[0-9]+)?[eE]"
)
_VISIBLE = "[!-~]"
_MONEY_TEXT = r"[0-9]{1,12}(\.[0-9]{0,6})?"
_MONEY_NUMBER = r"[0-9]{1,12}(\.[0-9]{1,6})?"
_QUANTITY_MAX = 2**31 - 1
_DOMAIN = (
    "product.created",
    "product.updated",
    "order.placed",
    "order.paid",
    "order.shipped",
    "order.cancelled",
)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Silver reads these members of a payload, by kind of event (`t[i]` their JSON types, `s[i]`
# their values as text: a string's value, a number's shortest spelling, true/false; SQL NULL
# when missing). An order status event (paid, shipped, cancelled) is read for its order_id only.
_PRODUCT_PATHS = ("product_id", "name", "category", "unit_price", "currency", "active")
_PLACED_PATHS = ("order_id", "customer_id", "currency", "items")
_LINE_PATHS = ("product_id", "quantity", "unit_price", "discount")
_STATUS_PATHS = ("order_id",)
_STATUS_EVENTS = ("order.paid", "order.shipped", "order.cancelled")


def _at(names: tuple[str, ...], name: str) -> int:
    return names.index(name) + 1  # SQL lists count from 1


def _paths(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(_lit(f"$.{name}") for name in names) + "]"


def _text(i: int) -> str:
    """A string that is not blank."""
    return f"(t[{i}] = 'VARCHAR' AND regexp_matches(s[{i}], '{_VISIBLE}'))"


def _optional_text(i: int) -> str:
    return f"coalesce(t[{i}] IN ('VARCHAR', 'NULL'), true)"


def _money(i: int) -> str:
    return (
        f"((t[{i}] = 'VARCHAR' AND regexp_full_match(s[{i}], {_lit(_MONEY_TEXT)})) "
        f"OR (t[{i}] IN ('UBIGINT', 'BIGINT', 'DOUBLE') "
        f"AND regexp_full_match(s[{i}], {_lit(_MONEY_NUMBER)})))"
    )


def _amount(i: int) -> str:
    """The money's exact value: its string, or the number's shortest spelling (at most 15
    significant digits, so the same decimal)."""
    return f"TRY_CAST(s[{i}] AS DECIMAL(18, 6))"


def _currency(i: int) -> str:
    letters = f"regexp_full_match(s[{i}], '[A-Za-z]{{3}}')"
    return f"(t[{i}] IS NULL OR (t[{i}] = 'VARCHAR' AND {letters}))"


_PAIRWISE_KEYS = 6


def _distinct_keys(keys: str) -> str:
    """The key list `keys` holds no key twice. Objects here have a handful of keys: up to six
    are compared pairwise (DuckDB compares short strings inline), about three times cheaper
    than `list_distinct`, which decides the longer ones."""

    def pairs(n: int) -> str:
        different = [
            f"{keys}[{i}] <> {keys}[{j}]" for i in range(1, n) for j in range(i + 1, n + 1)
        ]
        return " AND ".join(different) or "true"

    cases = " ".join(f"WHEN {n} THEN {pairs(n)}" for n in range(_PAIRWISE_KEYS + 1))
    return f"CASE len({keys}) {cases} ELSE len({keys}) = len(list_distinct({keys})) END"


P = {name: _at(_PRODUCT_PATHS, name) for name in _PRODUCT_PATHS}
PL = {name: _at(_PLACED_PATHS, name) for name in _PLACED_PATHS}
L = {name: _at(_LINE_PATHS, name) for name in _LINE_PATHS}

# Each step its own table: a JSON function must only ever see text already found valid (it
# fails the whole statement otherwise), and each payload is parsed as few times as possible.
_SCRIPT = f"""
CREATE OR REPLACE TEMP TABLE readable AS
WITH keyed AS MATERIALIZED (  -- `k` computed once: inlined, each use of it would parse again
    SELECT
        pos,
        event_type,
        payload,
        -- Guarded again: the filter below is not guaranteed to run first. [] unless an object.
        CASE WHEN json_valid(payload) THEN json_keys(payload) END AS k
    FROM events
    WHERE event_type IN ({", ".join(map(_lit, _DOMAIN))})
      AND NOT doubt  -- `_DOUBT` found in the payload (by Arrow: twice as fast as here)
      AND (strlen(payload) <= {2 * MAX_PAYLOAD_DEPTH}
           OR strlen(payload) - strlen(replace(replace(payload, '{{', ''), '[', ''))
              <= {MAX_PAYLOAD_DEPTH})
      AND json_valid(payload))
SELECT pos, event_type, payload
FROM keyed
WHERE starts_with(payload, '{{')  -- valid JSON: so an object
  AND {_distinct_keys("k")};

CREATE OR REPLACE TEMP TABLE product_rows AS
SELECT
    pos,
    s[{P["product_id"]}] AS product_id,
    s[{P["name"]}] AS name,
    s[{P["category"]}] AS category,
    {_amount(P["unit_price"])} AS unit_price,
    coalesce(s[{P["currency"]}], 'USD') AS currency,
    coalesce(s[{P["active"]}] = 'true', true) AS active
FROM (SELECT pos, json_type(payload, {_paths(_PRODUCT_PATHS)}) AS t,
             json_extract_string(payload, {_paths(_PRODUCT_PATHS)}) AS s
      FROM readable
      WHERE event_type LIKE 'product.%')
WHERE {_text(P["product_id"])} AND {_optional_text(P["name"])} AND {_text(P["category"])}
  AND {_money(P["unit_price"])} AND {_currency(P["currency"])}
  AND coalesce(t[{P["active"]}] = 'BOOLEAN', true);

CREATE OR REPLACE TEMP TABLE placed AS
SELECT
    pos,
    json_type(payload, {_paths(_PLACED_PATHS)}) AS t,
    json_extract_string(payload, {_paths(_PLACED_PATHS[:-1])}) AS s,
    json_extract(payload, '$.items') AS items
FROM readable
WHERE event_type = 'order.placed';

CREATE OR REPLACE TEMP TABLE order_lines AS
SELECT pos, line_number, item
FROM (
    SELECT pos, unnest(lines) AS item, generate_subscripts(lines, 1) AS line_number
    FROM (SELECT pos, CAST(items AS JSON[]) AS lines
          FROM placed
          WHERE t[{PL["items"]}] = 'ARRAY')
);

CREATE OR REPLACE TEMP TABLE item_rows AS
SELECT
    pos,
    line_number,
    s[{L["product_id"]}] AS product_id,
    TRY_CAST(s[{L["quantity"]}] AS BIGINT) AS quantity,
    {_amount(L["unit_price"])} AS unit_price,
    coalesce({_amount(L["discount"])}, 0) AS discount,
    -- Never NULL: a missing member makes its test NULL, and `NOT plain_line` below must
    -- still see the line (a NULL would let its order through).
    coalesce(json_type(item) = 'OBJECT' AND {_distinct_keys("k")}
        AND {_text(L["product_id"])}
        AND t[{L["quantity"]}] IN ('UBIGINT', 'BIGINT')
        AND coalesce(TRY_CAST(s[{L["quantity"]}] AS BIGINT) BETWEEN 1 AND {_QUANTITY_MAX}, false)
        AND {_money(L["unit_price"])}
        AND (coalesce(t[{L["discount"]}] = 'NULL', true)
             OR ({_money(L["discount"])} AND {_amount(L["discount"])} < 1)), false)
        AS plain_line
FROM (SELECT pos, line_number, item, json_keys(item) AS k,
             json_type(item, {_paths(_LINE_PATHS)}) AS t,
             json_extract_string(item, {_paths(_LINE_PATHS)}) AS s
      FROM order_lines);

CREATE OR REPLACE TEMP TABLE order_rows AS
SELECT
    pos,
    s[{PL["order_id"]}] AS order_id,
    s[{PL["customer_id"]}] AS customer_id,
    'placed' AS status,
    pos AS placed_pos,
    coalesce(s[{PL["currency"]}], 'USD') AS currency
FROM placed
WHERE {_text(PL["order_id"])} AND {_optional_text(PL["customer_id"])}
  AND {_currency(PL["currency"])}
  AND t[{PL["items"]}] = 'ARRAY' AND items <> '[]'  -- json_extract writes it compact
  AND pos NOT IN (SELECT pos FROM item_rows WHERE NOT plain_line)
UNION ALL
SELECT pos, s[1], NULL, split_part(event_type, '.', 2), NULL, NULL
FROM (SELECT pos, event_type, json_type(payload, {_paths(_STATUS_PATHS)}) AS t,
             json_extract_string(payload, {_paths(_STATUS_PATHS)}) AS s
      FROM readable
      WHERE event_type IN ({", ".join(map(_lit, _STATUS_EVENTS))}))
WHERE {_text(1)};
"""

_PRODUCTS = "SELECT * FROM product_rows ORDER BY pos"
_ORDERS = "SELECT * FROM order_rows ORDER BY pos"
_ITEMS_OF_CERTIFIED = (
    "SELECT i.pos, o.order_id, i.line_number, i.product_id, i.quantity, i.unit_price, "
    "i.discount FROM item_rows i JOIN order_rows o ON o.pos = i.pos "
    "ORDER BY i.pos, i.line_number"
)


# Each event is certified on its own, so a batch can be certified in two halves: one on the
# calling thread, one beside it (DuckDB releases the GIL; one DuckDB on two threads parallelises
# these short statements poorly). Below `_SPLIT_FROM` events a second thread is not worth it.
_SPLIT_FROM = 2_000


class Certified:
    """What the statement proved of one batch: row tables with each row's event position."""

    def __init__(self, products: pa.Table, orders: pa.Table, items: pa.Table) -> None:
        self.products = products
        self.orders = orders
        self.items = items

    def then(self, other: Certified) -> Certified:
        """These rows, then `other`'s (positions after these: the order stays by position)."""
        return Certified(
            pa.concat_tables([self.products, other.products]),
            pa.concat_tables([self.orders, other.orders]),
            pa.concat_tables([self.items, other.items]),
        )

    def positions(self) -> np.ndarray:
        """The certified events' positions, increasing (an event is a product's or an order's)."""
        tables = (self.products, self.orders)
        return np.sort(np.concatenate([table.column("pos").to_numpy() for table in tables]))


def certify(events: pa.Table) -> Certified:
    """The domain events of `events` (columns `event_type`, `payload`) that certainly pass every
    rule, with their rows; positions are row numbers in `events`."""
    if events.num_rows < _SPLIT_FROM:
        return _certify(events, 0)
    half = events.num_rows // 2
    second = beside(_certify, events.slice(half), half)
    first = _certify(events.slice(0, half), 0)
    return first.then(second.result())


def _certify(events: pa.Table, start: int) -> Certified:
    """`certify` of `events`, their positions counted from `start`."""
    batch = pa.table(
        {
            "pos": pa.array(range(start, start + events.num_rows), pa.int64()),
            "event_type": events.column("event_type"),
            "payload": events.column("payload"),
            "doubt": pc.match_substring_regex(events.column("payload"), _DOUBT),
        }
    )
    with scratch_with(events=batch) as db:
        db.execute(_SCRIPT)
        return Certified(
            db.sql(_PRODUCTS).to_arrow_table(),
            db.sql(_ORDERS).to_arrow_table(),
            db.sql(_ITEMS_OF_CERTIFIED).to_arrow_table(),
        )
