"""Tier 1: Silver's fast path and its Python definition give the same batch for every event.

`silver_rows._build_with_fast_path` (DuckDB certifies what it can, `_build` reads the rest) must
equal `silver_rows._build` (Python's reader and pandera's checks for every event): the same
products, orders and order lines (types, values to the last decimal, order), the same quarantine
reasons and the same outcome per event, on the committed samples, on Northwind, on the
generator's traffic and on generated payloads that sit on the boundary of every rule. The fast
path must also take the plain events: one that certified nothing would pass the comparison and
speed nothing up.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from grid_assets.etl.bronze import ingest_landing
from grid_assets.queries import silver as q
from grid_assets.resources.lakehouse import LakehouseResource
from grid_assets.transform import silver_fast, silver_rows
from grid_assets.transform.silver_rows import BRONZE_EVENTS, SilverBatch
from grid_assets_tests.northwind import (
    find_northwind_dir,
    missing_northwind_message,
    running_in_ci,
    write_northwind_events,
)
from grid_sim import generate_traffic

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
DOMAIN = set(silver_rows.PRODUCT_EVENTS) | set(silver_rows.ORDER_EVENTS)


def _assert_same(events: pa.Table) -> int:
    """Both paths give the same batch; returns how many events the fast path certified."""
    events = events.cast(BRONZE_EVENTS)
    exact: SilverBatch = silver_rows._build(events)
    fast: SilverBatch = silver_rows._build_with_fast_path(events)
    for name in ("products", "orders", "order_items"):
        expected, got = getattr(exact, name), getattr(fast, name)
        assert got.schema == expected.schema, name
        assert got.to_pylist() == expected.to_pylist(), name
    assert fast.quarantine == exact.quarantine
    assert fast.outcomes.to_pylist() == exact.outcomes.to_pylist()
    certified = silver_fast.certify(events).positions()
    outcomes = exact.outcomes.to_pylist()
    for position in certified:  # a certified event is one Python applies
        assert outcomes[position] == "applied"
    return len(certified)


def _bronze_events(landing: Path, tmp_path: Path) -> pa.Table:
    lakehouse = LakehouseResource(duckdb_path=str(tmp_path / "lakehouse.duckdb")).get_lakehouse()
    lakehouse.create_tables()
    ingest_landing(lakehouse, landing)
    with lakehouse.connect() as conn:
        return lakehouse.fetch_arrow(conn, q.unprocessed_events(0, 10**9))


def _domain(events: pa.Table) -> int:
    return sum(t in DOMAIN for t in events.column("event_type").to_pylist())


def test_samples_agree(tmp_path: Path) -> None:
    events = _bronze_events(SAMPLES, tmp_path)
    assert _assert_same(events) >= 0.9 * _domain(events)


def test_northwind_agrees(tmp_path: Path) -> None:
    found = find_northwind_dir()
    if found is None:
        if running_in_ci():
            pytest.fail(missing_northwind_message())
        pytest.skip(missing_northwind_message())
    write_northwind_events(found, tmp_path / "landing")
    events = _bronze_events(tmp_path / "landing", tmp_path)
    assert _assert_same(events) >= 0.9 * _domain(events)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_traffic_agrees(tmp_path: Path, seed: int) -> None:
    generate_traffic(tmp_path / "landing", n_events=3000, seed=seed, n_files=2, bad_share=0.05)
    events = _bronze_events(tmp_path / "landing", tmp_path)
    assert _assert_same(events) >= 0.9 * _domain(events)


def test_benchmark_traffic_is_taken_by_the_fast_path(tmp_path: Path) -> None:
    """At the benchmark's own mix, nearly every domain event is certified."""
    generate_traffic(tmp_path / "landing", n_events=4000, seed=7, n_files=1)
    events = _bronze_events(tmp_path / "landing", tmp_path)
    assert _assert_same(events) > 0.97 * _domain(events)


# --- payloads on every rule's boundary ---------------------------------------------------------

# Per rule: plain spellings the fast path should take, then spellings on and past the boundary.
MONEY = (
    [
        '"4.49"', '"4."', '"0"', '"999999999999.999999"', '"4.490000"',
        "4.49", "9.0", "0", "0.000001",
    ],
    [
        '".5"', '"000000000001.5"', '" 4.49"', '"4.49 "', '"+4.49"', '"-0"', '"-1.00"', '"1e2"',
        '"1_0"', '"NaN"', '""', '"4.1234567"', '"4.123456"', '"1000000000000"', '"999999999999"',
        '"٣"', "-0", "-0.0", "0.0000001", "4.1000000", "123456789012.5", "999999999999.123",
        "1000000000000", "1E2", "1e-2", "12345678901234", "4.12345678901234567", "-4.5", "true",
        "null", "[]", "{}", "NaN", "Infinity",
        # the most digits a certified number may have, and one more
        "999999999.999999", "99999999999.9999", "999999999999.999999", "9999999999.999999",
    ],
)  # fmt: skip
DISCOUNT = (
    ['"0.1"', "0.15", "0", '"0"', "null", '"0.999999"', "0.999999"],
    [*MONEY[0], *MONEY[1], '"1"', "1", "1.0", '"0.9999999"'],
)
QUANTITY = (
    ["1", "2", "2147483647", "17"],
    ["0", "-1", "2147483648", "1.0", "1e0", '"2"', "true", "null", "99999999999999999999", "-0"],
)
TEXT = (
    ['"P1"', '"Café"', '"a\\"b"', '"\\u00e9x"', '"P\\/1"', '"1Z8F9918E292"', '"a:1e5"', '" P 1 "'],
    [
        '""', '" "', '"\\t"', '"\\u00a0"', '"é"', '"\\ud83d\\ude00"', '"\\ud800"', '"x\\u0000"',
        '"\\n"', "7", "null", "true", "[]",
    ],
)  # fmt: skip
CURRENCY = (
    ['"USD"', '"usd"', '"EuR"'],
    ['"US"', '"USDD"', '""', "null", "5", '"ÜSD"', '"U\\u0053D"'],
)
ACTIVE = (["true", "false"], ["null", '"true"', "1", "0"])


def _member(draw: st.DrawFn, key: str, values: tuple[list[str], list[str]], ws: str) -> list[str]:
    """The member, mostly once with a plain value; sometimes missing, repeated or on a boundary."""
    plain, edge = values
    times = draw(st.sampled_from([1] * 14 + [0, 2]))
    spelled = st.one_of(*[st.sampled_from(plain)] * 7, st.sampled_from(edge))
    return [f'"{key}"{ws}:{ws}{draw(spelled)}' for _ in range(times)]


@st.composite
def _order_line(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 30)) == 0:
        return draw(st.sampled_from(["1", '"x"', "null", "[]", "{}"]))
    ws = draw(st.sampled_from(["", "", " "]))
    members = [
        *_member(draw, "product_id", TEXT, ws),
        *_member(draw, "quantity", QUANTITY, ws),
        *_member(draw, "unit_price", MONEY, ws),
    ]
    if draw(st.booleans()):
        members += _member(draw, "discount", DISCOUNT, ws)
    return "{" + ("," + ws).join(draw(st.permutations(members))) + "}"


@st.composite
def _payload(draw: st.DrawFn, event_type: str) -> str:
    ws = draw(st.sampled_from(["", "", "", " ", "\n", "\t"]))
    if event_type.startswith("product."):
        members = [
            *_member(draw, "product_id", TEXT, ws),
            *_member(draw, "name", TEXT, ws),
            *_member(draw, "category", TEXT, ws),
            *_member(draw, "unit_price", MONEY, ws),
            *_member(draw, "currency", CURRENCY, ws),
            *_member(draw, "active", ACTIVE, ws),
        ]
    else:
        members = _member(draw, "order_id", TEXT, ws)
        if event_type == "order.placed":
            lines = draw(st.lists(_order_line(), min_size=1, max_size=4))
            items = draw(
                st.sampled_from(["[" + ",".join(lines) + "]"] * 20 + ["null", "{}", '"[]"', "[]"])
            )
            members += [
                *_member(draw, "customer_id", TEXT, ws),
                *_member(draw, "currency", CURRENCY, ws),
                *_member(draw, "items", ([items], [items]), ws),
            ]
    extra = draw(
        st.sampled_from(
            [None] * 30
            + ['"note":"x"', '"n":1e400', '"n":NaN', '"deep":' + "[" * 130 + "]" * 130]
            + ['"tags":["1Z8F9918E292"]', '"n":' + "9" * 4301, '"u":"\\udc00"']
        )
    )
    if extra is not None:
        members.append(extra)
    return "{" + ws + ("," + ws).join(draw(st.permutations(members))) + ws + "}"


@st.composite
def _events(draw: st.DrawFn) -> pa.Table:
    kinds = [*silver_rows.PRODUCT_EVENTS, *silver_rows.ORDER_EVENTS]
    mix = st.sampled_from([*kinds, *kinds, "system.heartbeat", "x.y"])
    types = draw(st.lists(mix, min_size=20, max_size=60))
    start = datetime(2026, 3, 1, tzinfo=UTC)
    return pa.table(
        {
            "event_id": [f"e{i}" for i in range(len(types))],
            "ingest_seq": pa.array(range(1, len(types) + 1), pa.int64()),
            "event_type": types,
            "occurred_at": pa.array(
                [start + timedelta(seconds=i) for i in range(len(types))],
                pa.timestamp("us", tz="UTC"),
            ),
            "payload": [draw(_payload(t)) for t in types],
        }
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_events())
def test_boundary_payloads_agree(events: pa.Table) -> None:
    # Steer the search toward payloads the fast path takes, so both sides of each rule are seen.
    target(float(_assert_same(events)))


@pytest.mark.parametrize(
    "payload",
    [
        # a repeated key: DuckDB reads the first, Python the last
        '{"product_id":"P1","category":"c","unit_price":"1.00","unit_price":"-1"}',
        '{"order_id":"O1","items":[{"product_id":"P1","quantity":1,"quantity":0,"unit_price":1}]}',
        # exact decimals: more than six places, more digits than a double holds, an exponent
        '{"product_id":"P1","category":"c","unit_price":4.1000000}',
        '{"product_id":"P1","category":"c","unit_price":999999999999.999999}',
        '{"product_id":"P1","category":"c","unit_price":1E2}',
        # an order line without a member its rules require
        '{"order_id":"O1","items":[{"quantity":2,"discount":0,"product_id":"P1"}]}',
        '{"order_id":"O1","items":[{"quantity":2,"unit_price":"1.00"}]}',
        '{"order_id":"O1","items":[{"product_id":"P1","unit_price":"1.00"}]}',
        # no order line, however the empty list is spelled
        '{"order_id":"O1","items":[ ]}',
        '{"order_id":"O1","items":[\n\t]}',
        # a string Python strips to nothing; a lone surrogate in a member Silver does not read
        '{"product_id":"\\u00a0","category":"c","unit_price":"1"}',
        '{"product_id":"P1","category":"c","unit_price":"1","note":"\\ud800"}',
    ],
)
def test_doubtful_payloads_go_to_python(payload: str) -> None:
    events = pa.table(
        {
            "event_id": ["e"],
            "ingest_seq": pa.array([1], pa.int64()),
            "event_type": ["order.placed" if "order_id" in payload else "product.created"],
            "occurred_at": pa.array([datetime(2026, 3, 1, tzinfo=UTC)], pa.timestamp("us", "UTC")),
            "payload": [payload],
        }
    )
    json.loads(payload)  # each is valid JSON: Bronze would keep it
    assert silver_fast.certify(events).positions().tolist() == []
    assert _assert_same(events) == 0


def test_repeated_keys_are_found_at_every_position() -> None:
    """The repeated-key test (pairwise up to six keys, `list_distinct` beyond) against Python's
    set, for objects of 0 to 9 keys with every pair of positions repeated, and through `certify`
    with the repeat on a member Silver reads, where DuckDB and Python read different values."""
    import duckdb

    lists = []
    for n in range(10):
        keys = [f"k{i}" for i in range(n)]
        lists.append(keys)
        for i in range(n):
            for j in range(i + 1, n):
                lists.append([*keys[:j], keys[i], *keys[j + 1 :]])
    found = duckdb.sql(
        f"SELECT {silver_fast._distinct_keys('k')} AS d FROM (SELECT unnest($lists) AS k)",
        params={"lists": lists},
    ).fetchall()
    assert [d for (d,) in found] == [len(set(k)) == len(k) for k in lists]

    def product(members: list[str]) -> str:
        return "{" + ",".join(members) + "}"

    base = ['"product_id":"P1"', '"category":"c"', '"unit_price":"1.00"']
    base += [f'"x{i}":{i}' for i in range(6)]  # nine members: past the pairwise cases
    payloads = [product(base[:n]) for n in range(3, 10)]
    for n in range(3, 10):
        for at in range(n + 1):
            payloads.append(product([*base[:at], '"unit_price":"-1"', *base[at:n]]))
    events = pa.table(
        {
            "event_id": [f"e{i}" for i in range(len(payloads))],
            "ingest_seq": pa.array(range(1, len(payloads) + 1), pa.int64()),
            "event_type": ["product.created"] * len(payloads),
            "occurred_at": pa.array(
                [datetime(2026, 3, 1, tzinfo=UTC)] * len(payloads), pa.timestamp("us", "UTC")
            ),
            "payload": payloads,
        }
    )
    assert silver_fast.certify(events).positions().tolist() == list(range(7))  # the unrepeated ones
    assert _assert_same(events) == 7


def test_each_payloads_keys_are_listed_once() -> None:
    """The repeated-key test reads the key list some forty times. Computed in a subquery that
    DuckDB may inline, `json_keys` was evaluated at each of those reads, which doubled the
    whole certification: the plan must list it once at most."""
    import duckdb

    readable = silver_fast._SCRIPT.split(";")[0]
    assert "CREATE OR REPLACE TEMP TABLE readable AS" in readable
    query = readable.split(" AS\n", 1)[1]
    db = duckdb.connect()
    db.register(
        "events",
        pa.table(
            {
                "pos": pa.array([0], pa.int64()),
                "event_type": ["order.paid"],
                "payload": ['{"order_id":"O-1"}'],
                "doubt": [False],
            }
        ),
    )
    plan = db.execute("EXPLAIN (FORMAT JSON) " + query).fetchall()[0][1]
    assert plan.count("json_keys") <= 1
    # The same query with the key list in a plain subquery, as it was: inlined everywhere.
    inlined = query.replace("WITH keyed AS MATERIALIZED (", "WITH keyed AS (")
    assert db.execute("EXPLAIN (FORMAT JSON) " + inlined).fetchall()[0][1].count("json_keys") > 10
