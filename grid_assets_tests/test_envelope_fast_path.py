"""Tier 1: the envelope fast paths and the general grammar give the same result for every line.

Two fast paths stand before the general one (`parse_line_exact`, the definition): the columnar
certification of a whole block (`envelope_fast.certify`) and, for a line it leaves, the one-line
shortcut of `parse_line` (GRID's compact layout proved by one expression). Every line either
path takes must equal `parse_line_exact`'s Envelope, field for field, instant included; and
`parse_line` must equal it on every line, Rejection reasons included: on the committed samples,
on Northwind, on the benchmark generator's traffic and on generated lines that sit on the
boundary of every rule. The fast paths must also take the clean lines: one that certified
nothing would pass the comparison and speed nothing up.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from grid_assets.ingest.envelope import Envelope, _plain_line, parse_line, parse_line_exact
from grid_assets.ingest.envelope_fast import certify, envelope_of
from grid_assets.ingest.landing import FileRead, LineBlock, scan_landing
from grid_assets_tests.northwind import (
    find_northwind_dir,
    missing_northwind_message,
    running_in_ci,
    write_northwind_events,
)
from grid_sim import generate_traffic

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def _landing_texts(landing: Path) -> list[str]:
    files, unreadable = scan_landing(landing)
    assert files and not unreadable
    return [line.text for file in files for line in FileRead(file).lines() if line.text is not None]


def _certified(texts: list[str]) -> dict[int, Envelope]:
    """The columnar path's envelopes of `texts` taken as one block of lines, by position."""
    encoded = [text.encode("utf-8", "surrogatepass") for text in texts]
    certified = certify(LineBlock.from_lines("events.ndjson", encoded))
    rows = certified.envelopes.to_pylist()
    return {int(i): envelope_of(row) for i, row in zip(certified.index, rows, strict=True)}


def _assert_same(texts: list[str]) -> int:
    """Every path equal line by line; returns how many lines the columnar path certified."""
    columnar = _certified(texts)
    for i, text in enumerate(texts):
        expected = parse_line_exact(text)
        assert parse_line(text) == expected, text
        for envelope in (_plain_line(text), columnar.get(i)):
            if envelope is not None:
                assert envelope == expected, text
                assert isinstance(expected, Envelope)
                assert envelope.occurred_at.utcoffset() == timedelta(0)
    return len(columnar)


def test_samples_agree() -> None:
    texts = _landing_texts(SAMPLES)
    certified = _assert_same(texts)
    valid = sum(isinstance(parse_line_exact(text), Envelope) for text in texts)
    assert certified >= 0.9 * valid


def test_northwind_agrees(tmp_path: Path) -> None:
    found = find_northwind_dir()
    if found is None:
        if running_in_ci():
            pytest.fail(missing_northwind_message())
        pytest.skip(missing_northwind_message())
    count = write_northwind_events(found, tmp_path / "landing")
    texts = _landing_texts(tmp_path / "landing")
    assert len(texts) == count
    assert _assert_same(texts) >= 0.9 * count


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_traffic_agrees(tmp_path: Path, seed: int) -> None:
    generate_traffic(tmp_path, n_events=3000, seed=seed, n_files=2, bad_share=0.05)
    texts = _landing_texts(tmp_path)
    assert _assert_same(texts) > 0.9 * len(texts)


def test_benchmark_traffic_is_taken_by_the_fast_path(tmp_path: Path) -> None:
    """At the benchmark's own mix of bad lines, nearly every line is certified."""
    generate_traffic(tmp_path, n_events=4000, seed=7, n_files=1)
    texts = _landing_texts(tmp_path)
    assert _assert_same(texts) > 0.95 * len(texts)


# --- lines on every rule's boundary -----------------------------------------------------------

_PLAIN_INSTANTS = st.builds(
    lambda y, mo, d, h, mi, sec, digits, zone: (
        f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{sec:02d}{digits and '.' + digits}{zone}"
    ),
    st.integers(1990, 2040),
    st.integers(1, 12),
    st.integers(1, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.text("0123456789", max_size=6),
    st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", "-03:30", "+14:00", "-12:00", "+23:59"]),
)
_BOUNDARY_INSTANTS = [
    "2026-03-01T10:00:00Z",
    "2026-03-01T10:00:00+00:00",
    "2026-03-01T10:00:00-00:00",
    "2026-03-01T10:00:00+14:00",
    "2026-03-01T10:00:00-12:00",
    "2026-03-01T10:00:00+23:59",
    "2026-03-01T10:00:00+24:00",
    "2026-03-01T10:00:00+05:30:15",
    "2026-03-01T10:00:00+0530",
    "2026-03-01T10:00:00+05",
    "2026-03-01T10:00:00",
    "2026-03-01",
    "2026-03-01 10:00:00Z",
    "2026-03-01x10:00:00Z",
    "2026-03-01T10:00Z",
    "2026-03-01T10:00:60Z",
    "2016-12-31T23:59:60Z",
    "2026-03-01T24:00:00Z",
    "2026-02-29T10:00:00Z",
    "2024-02-29T10:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-13-01T10:00:00Z",
    "2026-00-01T10:00:00Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "1899-12-31T23:59:59Z",
    "1900-01-01T00:00:00Z",
    "2999-12-31T23:59:59.999999Z",
    "20260301T100000Z",
    " 2026-03-01T10:00:00Z",
    "2026-03-01T10:00:00Z ",
    "2026-03-01T10:00:00z",
    "2026-03-01t10:00:00Z",
    "2026-03-01T10:00:00,5Z",
    "2026-03-01T10:00:00.Z",
    "",
    "yesterday",
    "1900-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z",
    "2100-02-29T00:00:00Z",
    "2026-04-31T00:00:00Z",
    "0002-01-01T00:00:00+23:59",
    "9998-12-31T23:59:59-23:59",
    "1970-01-01T00:00:00.000001-00:01",
    "1969-12-31T23:59:59.999999+00:01",
]
_INSTANTS = st.one_of(
    _PLAIN_INSTANTS,
    _PLAIN_INSTANTS,
    st.sampled_from(_BOUNDARY_INSTANTS),
    st.builds(
        lambda digits, zone: f"2026-03-01T10:00:00.{digits}{zone}",
        st.text("0123456789", min_size=0, max_size=9),
        st.sampled_from(["Z", "+01:00", "-03:30", ""]),
    ),
    st.builds(
        lambda y, mo, d, h, mi, s: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z",
        st.integers(0, 9999),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 61),
    ),
)
_TEXT = st.one_of(
    st.uuids().map(str),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12),
    st.sampled_from(
        ["e-1", "", " ", "  x  ", "payload", '"payload":', "a,b}", "x\\y", "é", "\u2028"]
    ),
    st.text(max_size=8),
    st.text(st.characters(codec="ascii"), max_size=8),
)
_NUMBER_TEXTS = st.sampled_from(
    [
        "1",
        "-0",
        "12.50",
        "1e2",
        "1E+2",
        "1e99999",
        "1e999999999999999999999",
        "-1e-99999",
        "9" * 4301,
        "0." + "1" * 5000,
        "NaN",
        "-Infinity",
        "Infinity",
        "1.5e308",
        # DuckDB's JSON reader takes these too; Python refuses all of them
        "nan",
        "-nan",
        "inf",
        "+Infinity",
        "INFINITY",
        "-Inf",
    ]
)


def _json_scalar_text(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(_NUMBER_TEXTS)
    if kind == 1:
        return json.dumps(draw(_TEXT), ensure_ascii=draw(st.booleans()))
    if kind == 2:
        return draw(
            st.sampled_from(['"\\u0000"', '"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '"\\/"'])
        )
    if kind == 3:
        return draw(st.sampled_from(["true", "false", "null"]))
    if kind == 4:
        return draw(st.sampled_from(['"a\\"b"', '"\\\\"', '"\\t"', '"tab\tin"', '"é"']))
    if kind == 5:
        return json.dumps(draw(st.integers(-(10**20), 10**20)))
    if kind == 6:
        return json.dumps(str(draw(st.decimals(allow_nan=False, allow_infinity=False, places=2))))
    return json.dumps(draw(st.text(max_size=10)), ensure_ascii=draw(st.booleans()))


@st.composite
def _payload_text(draw: st.DrawFn, depth: int = 0) -> str:
    """A JSON object's text, spaced, spelled and nested in the ways producers do (and worse)."""
    ws = draw(st.sampled_from(["", " ", "\t", "\r", "  \n"]))
    members = []
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(['"payload"', '"a"', '"é"', '"a"', '"event_id"', '"\\u0061"']))
        if depth < 2 and draw(st.integers(0, 3)) == 0:
            value = draw(_payload_text(depth + 1))
        elif draw(st.integers(0, 5)) == 0:
            value = "[" + ",".join(_json_scalar_text(draw) for _ in range(2)) + "]"
        else:
            value = _json_scalar_text(draw)
        members.append(f"{key}{ws}:{ws}{value}")
    text = "{" + ws + ("," + ws).join(members) + ws + "}"
    twist = draw(st.integers(0, 30))
    if twist == 0:
        text = text[:-1] + ",}"  # a trailing comma
    elif twist == 4:
        text = '{"a":[1,' + ws + "]}"  # a trailing comma in an array
    elif twist == 1:
        text = '{"a":' + "[" * 300 + "]" * 300 + "}"  # nested past any limit
    elif twist == 2:
        text = '{"a":' + "[" * 1200 + "]" * 1200 + "}"  # beyond Python's recursion limit
    elif twist == 3:
        # between Python's recursion limit (which also counts the stack in use) and orjson's
        depth = draw(st.integers(990, 1030))
        text = '{"a":' + "[" * depth + "]" * depth + "}"
    return text


@st.composite
def _envelope_lines(draw: st.DrawFn) -> str:
    """An envelope line: GRID's layout, then members dropped, doubled, reordered, retyped,
    respaced, escaped, with the payload first, in the middle or last."""
    members: list[tuple[str, str]] = [
        ("event_id", json.dumps(draw(st.one_of(st.uuids().map(str), _TEXT)))),
        ("event_type", json.dumps(draw(st.sampled_from(["order.placed"] * 6 + ["", " ", "é"])))),
        ("occurred_at", json.dumps(draw(_INSTANTS))),
    ]
    if draw(st.booleans()):
        members.append(("source", draw(st.sampled_from(['"grid-web"', '""', "null", "12", '" "']))))
    members.append(
        (
            "payload",
            draw(st.one_of(*[_payload_text()] * 8, st.sampled_from(["[]", '"{}"', "null"]))),
        )
    )
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 1, 2]))):
        change = draw(st.integers(0, 7))
        index = draw(st.integers(0, len(members) - 1))
        key, value = members[index]
        if change == 0:
            del members[index]
        elif change == 1:
            members.insert(
                draw(st.integers(0, len(members))),
                (key, draw(st.sampled_from([value, '"other"', '{"b":1}']))),
            )
        elif change == 2:
            members.insert(draw(st.integers(0, len(members))), members.pop(index))
        elif change == 3:
            members[index] = (key, draw(_NUMBER_TEXTS))
        elif change == 4:
            members[index] = (key, draw(st.sampled_from(['"\\u0065-1"', '"\\ud800"', '"e\\"1"'])))
        elif change == 5:
            spelled = draw(st.sampled_from(["pay\\u006coad", "event_\\u0069d", "Event_id", "x"]))
            members[index] = (spelled, value)
        elif change == 6:
            members[index] = (key, json.dumps(draw(_TEXT), ensure_ascii=False))
        else:
            members.append(("extra", '"x"'))
    ws = draw(st.sampled_from(["", "", "", " ", "\t", "\r", " \n "]))
    sep = draw(st.sampled_from([",", ",", ",", ", ", " ,", ",\t"]))
    colon = draw(st.sampled_from([":", ":", ":", ": ", " : "]))
    line = "{" + ws + sep.join(f'"{k}"{colon}{v}' for k, v in members) + ws + "}"
    frame = draw(st.integers(0, 19))
    if frame == 0:
        line = draw(st.sampled_from(["\ufeff", " ", "\t", "\x0c", "\xa0"])) + line
    elif frame == 1:
        line = line + draw(st.sampled_from([" ", "\r", "\x0c", "\xa0", "x", ",", "}", "{}"]))
    elif frame == 2:
        line = line[: draw(st.integers(0, len(line)))]
    return line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_envelope_lines(), min_size=1, max_size=20))
def test_boundary_lines_agree(lines: list[str]) -> None:
    # Steer the search toward lines the fast path takes, so that both sides of each rule are seen.
    target(float(_assert_same(lines)))


# GRID's payloads, and what a broken producer or a hostile line puts into them: JSON's tokens,
# what lenient readers take (comments, quotes, inf/nan, trailing commas), escapes, odd characters.
_GRID_PAYLOADS = (
    '{"order_id":"o-1","customer_id":"c-9","items":[{"product_id":"p-1","quantity":2,'
    '"unit_price":"9.50","discount":0.1}],"currency":"USD"}',
    '{"product_id":"p","name":"N","category":"c","unit_price":12.5,"active":true,"x":null,'
    '"y":[1,-2.5,3e2,{}],"z":{"a":[]}}',
)
_TOKENS = (
    *",]}[{:\"\\-+.eE01 \t'/*#x",
    *("NaN", "nan", "Inf", "inf", "Infinity", "-nan", "INF", "true", "null", "TRUE", "Null"),
    *("//", "/*", "0x", "00", "-0", "1e999999999999999999999", "2e-3", "1E5", "9" * 400),
    *("\\u", "d800", "\\uDE00", "\\U0041", "\\x41", "\\0", "\\/", "\\a", "\\b"),
    *("\x00", "\x01", "\x1f", "\x7f", "\x80", "\xa0", "\u2028", "\u3000", "\ufeff"),
    *("]]", "}}", ",,", "::", ",]", ",}", "undefined"),
)


def _mutated_payload_line(rng: random.Random) -> str:
    """A compact line whose payload had one to three tokens inserted, characters deleted or
    replaced, anywhere in it: mostly not JSON, sometimes JSON only to a lenient reader."""
    payload = rng.choice(_GRID_PAYLOADS)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(payload) + 1)
        change = rng.random()
        if change < 0.6:
            payload = payload[:at] + rng.choice(_TOKENS) + payload[at:]
        elif change < 0.85:
            payload = payload[:at] + payload[at + rng.randint(1, 3) :]
        else:
            payload = payload[:at] + rng.choice(_TOKENS) + payload[at + 1 :]
    return (
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z","payload":'
        + payload
        + "}"
    )


@settings(max_examples=100, deadline=None)
@given(st.randoms(use_true_random=False))
def test_mutated_payloads_agree(rng: random.Random) -> None:
    """Mutations drawn uniformly over the payload (a strategy's integers favour its start):
    about one line in 700 is then a payload only DuckDB's reader takes."""
    _assert_same([_mutated_payload_line(rng) for _ in range(200)])


def test_boundary_instants_agree() -> None:
    """Each instant on a calendar or offset boundary, in a compact line, on every path; the
    columnar path takes the valid ones in its form."""
    lines = [
        '{"event_id":"e","event_type":"t","occurred_at":' + json.dumps(at) + ',"payload":{}}'
        for at in _BOUNDARY_INSTANTS
    ]
    assert _assert_same(lines) >= 12


@pytest.mark.parametrize(
    "line",
    [
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z","payload":{}}',
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00.5+14:00",'
        '"source":"","payload":{"a": [1, {"payload": {}}]}}',
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00.123456-00:00",'
        '"source":"s","payload":{"n":"Café","x":"\\ud83d\\ude00","payload":"}"}}',
    ],
)
def test_compact_layouts_are_certified(line: str) -> None:
    """An empty source, spacing, escapes and non-ASCII text inside the payload stay fast."""
    envelope = _plain_line(line)
    assert envelope is not None
    assert envelope == parse_line_exact(line)
    assert _certified([line]) == {0: envelope}


@pytest.mark.parametrize(
    "line",
    [
        # a repeated key: Python reads the last
        '{"event_id":"a","event_id":"b","event_type":"t","occurred_at":"2026-03-01T10:00:00Z",'
        '"payload":{}}',
        # Python refuses a trailing comma; accepts NaN and a lone surrogate (orjson does not)
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z","payload":{"a":1,}}',
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z","payload":{"a":NaN}}',
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z",'
        '"payload":{"a":"\\ud800"}}',
        # what DuckDB's JSON reader is lenient about: trailing commas, inf and nan in any case,
        # exponents (Python refuses these two: beyond Decimal)
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z",'
        '"payload":{"a":[1,2, ]}}',
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z",'
        '"payload":{"a":{"b":1,\n}}}',
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z","payload":{"a":nan}}',
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z",'
        '"payload":{"a":[-inf]}}',
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z",'
        '"payload":{"a": +Infinity}}',
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z",'
        '"payload":{"a":1e999999999999999999999}}',
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z",'
        '"payload":{"a":-2.5E+999999999999999999999}}',
        # a blank id, an instant Python refuses, an escaped envelope string
        '{"event_id":" ","event_type":"t","occurred_at":"2026-03-01T10:00:00Z","payload":{}}',
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T24:00:00Z","payload":{}}',
        '{"event_id":"e\\u0031","event_type":"t","occurred_at":"2026-03-01T10:00:00Z","payload":{}}',
        # two payloads: the expression would capture both as one text, which is no JSON value
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z",'
        '"payload":{"a":1},"payload":{"b":2}}',
        # another member after the payload
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z",'
        '"payload":{"a":1},"x":{"b":2}}',
        # nested deeper than Python reads (orjson, whose limit is higher, would accept it)
        '{"event_id":"e","event_type":"t","occurred_at":"2026-03-01T10:00:00Z",'
        '"payload":{"a":' + "[" * 1000 + "]" * 1000 + "}}",
    ],
)
def test_doubtful_lines_go_to_the_general_path(line: str) -> None:
    assert _plain_line(line) is None
    assert _certified([line]) == {}
