"""Tier 1: the raw line parser, against every envelope rule of the contract."""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grid_assets.ingest import envelope
from grid_assets.ingest.envelope import Envelope, Rejection, content_hash, parse_line

VALID = {
    "event_id": "e-1",
    "event_type": "product.created",
    "occurred_at": "2026-03-01T10:00:00+02:00",
    "source": "grid-web",
    "payload": {"product_id": "P1", "unit_price": 12.50},
}


def _line(**overrides: object) -> str:
    envelope = {**VALID, **overrides}
    return json.dumps({k: v for k, v in envelope.items() if v is not _MISSING})


_MISSING = object()


def test_valid_line_keeps_payload_text_verbatim_and_normalises_instant_to_utc() -> None:
    line = (
        '{"event_id":"e-1","event_type":"x","occurred_at":"2026-03-01T10:00:00+02:00",'
        '"payload": {"unit_price": 12.50,  "n": 1e2}}'
    )
    parsed = parse_line(line)
    assert isinstance(parsed, Envelope)
    assert parsed.payload_text == '{"unit_price": 12.50,  "n": 1e2}'
    assert parsed.occurred_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert parsed.source == "unknown"


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_blank_lines_are_ignored(blank: str) -> None:
    assert parse_line(blank) is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "not_a_json_object"),
        ("42", "not_a_json_object"),
        ('{"event_id": "x",', "invalid_json"),
        ('{"a": 1} trailing', "invalid_json"),
        (_line(event_id=_MISSING), "missing_event_id"),
        (_line(event_id=""), "invalid_event_id"),
        (_line(event_id="   "), "invalid_event_id"),
        (_line(event_id=7), "invalid_event_id"),
        (_line(event_type=_MISSING), "missing_event_type"),
        (_line(event_type=None), "invalid_event_type"),
        (_line(occurred_at=_MISSING), "missing_occurred_at"),
        (_line(occurred_at="2026-03-01T10:00:00"), "occurred_at_without_offset"),
        (_line(occurred_at="2026-03-01"), "occurred_at_without_offset"),
        (_line(occurred_at="yesterday"), "invalid_occurred_at"),
        (_line(occurred_at=1700000000), "invalid_occurred_at"),
        # Valid ISO-8601, but in UTC before year 1 or after 9999: no instant Python can hold.
        (_line(occurred_at="0001-01-01T00:00:00+01:00"), "invalid_occurred_at"),
        (_line(occurred_at="9999-12-31T23:59:59-01:00"), "invalid_occurred_at"),
        (_line(payload=_MISSING), "missing_payload"),
        (_line(payload=[1]), "invalid_payload"),
        (_line(payload="{}"), "invalid_payload"),
        (_line(source=12), "invalid_source"),
    ],
)
def test_each_envelope_rule_is_a_named_rejection(line: str, reason: str) -> None:
    parsed = parse_line(line)
    assert isinstance(parsed, Rejection)
    assert parsed.reason.startswith(reason) or reason in parsed.reason.split("; ")


def test_every_broken_rule_is_reported_at_once() -> None:
    parsed = parse_line('{"occurred_at": "2026-01-01T00:00:00", "payload": 3}')
    assert isinstance(parsed, Rejection)
    assert parsed.reason.split("; ") == [
        "missing_event_id",
        "missing_event_type",
        "occurred_at_without_offset",
        "invalid_payload",
    ]


def same(a: Envelope, b: Envelope) -> bool:
    return a.same_content(b.envelope_hash, b.payload_text)


def test_same_content_is_about_the_json_value_not_its_spelling() -> None:
    a = parse_line(
        '{"event_id":"e","event_type":"t","occurred_at":"2026-01-01T00:00:00Z",'
        '"payload":{"p":1.50,"q":10}}'
    )
    b = parse_line(
        '{ "payload" : {"q":10.0, "p":1.5}, "occurred_at":"2026-01-01T00:00:00Z",'
        ' "event_type":"t","event_id":"e" }'
    )
    c = parse_line(
        '{"event_id":"e","event_type":"t","occurred_at":"2026-01-01T00:00:00Z",'
        '"payload":{"p":"1.5","q":10}}'
    )
    assert isinstance(a, Envelope) and isinstance(b, Envelope) and isinstance(c, Envelope)
    assert same(a, b) and same(b, a)
    assert not same(a, c)  # a string is not the number it spells
    d = parse_line(
        '{"event_id":"e","event_type":"t","occurred_at":"2026-01-01T00:00:00+00:00",'
        '"payload":{"p":1.50,"q":10}}'
    )
    assert isinstance(d, Envelope)
    assert not same(a, d)  # another spelling of the instant is another JSON value


def test_same_content_distinguishes_tiny_money_differences() -> None:
    def parsed(price: str) -> Envelope:
        result = parse_line(
            _line(payload={}).replace('"payload": {}', f'"payload": {{"p": {price}}}')
        )
        assert isinstance(result, Envelope)
        return result

    assert same(parsed("0.1"), parsed("0.100000"))
    assert not same(parsed("0.1"), parsed("0.1000001"))
    assert not same(parsed("12345678901234567890.1"), parsed("12345678901234567890.2"))
    # Key order is spelling; a null is a value of its own, unlike a zero or a missing member.
    nested = {"a": [1, {"b": None}], "c": 2}
    assert content_hash(nested) == content_hash({"c": 2, "a": [1, {"b": None}]})
    assert content_hash(nested) != content_hash({"a": [1, {"b": 0}], "c": 2})
    assert content_hash(nested) != content_hash({"a": [1, {}], "c": 2})


# --- the fast reader agrees with the standard library, the grammar of record ------------------

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def _parsed_exactly(line: str):
    """parse_line with every line read by the standard library's decoder alone."""
    original = envelope._decode
    envelope._decode = envelope._decode_exact
    try:
        return parse_line(line)
    finally:
        envelope._decode = original


def _sample_lines() -> list[str]:
    lines = []
    for path in sorted(SAMPLES.iterdir()):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="surrogateescape") as handle:
            lines.extend(line.rstrip("\n") for line in handle)
    return lines


def test_fast_reader_equals_the_standard_library_on_the_samples() -> None:
    lines = _sample_lines()
    assert len(lines) >= 3000
    for line in lines:
        assert parse_line(line) == _parsed_exactly(line), line


HEAD = '"event_id": "e", "event_type": "t", "occurred_at": "2026-01-01T00:00:00Z"'
TRICKY_LINES = [
    # payload not last, nested "payload" keys, a key ending in an escaped "payload", spacing
    '{"payload": {"a": 1}, ' + HEAD + "}",
    "{" + HEAD + ', "payload": {"x": {"payload": {}}}}',
    "{" + HEAD + ', "payload": {"k": 1}, "a\\"payload": {"k": 1}}',
    "{" + HEAD + ',"payload"  :  {"k" : 1.10}  }  ',
    # what only the standard library reads: NaN, a lone surrogate, a huge number
    "{" + HEAD + ', "payload": {"p": NaN}}',
    '{"event_id": "e\\ud800", ' + HEAD[len('"event_id": "e", ') :] + ', "payload": {}}',
    "{" + HEAD + ', "payload": {"p": 1e400}}',
    # numbers in the envelope are hashed exactly
    "{" + HEAD + ', "v": 0.1, "payload": {}}',
    "{" + HEAD + ', "v": 123456789012345678901234567890, "payload": {}}',
    '{"event_id": 7, "event_type": "t", "occurred_at": "2026-01-01T00:00:00Z", "payload": {}}',
    # an envelope member holding a lone surrogate is hashed (then rejected), never raises
    "{" + HEAD + ', "v": {"w": "\\ud800"}, "payload": {}}',
    '{"event_id": {"p": "\\udc00"}, "event_type": "t", "occurred_at": "2026-01-01T00:00:00Z", '
    '"payload": {}}',
    "[1, 2]",
    '{"event_id": "e", "payload": {"a": 1,}}',
]


@pytest.mark.parametrize("line", TRICKY_LINES)
def test_fast_reader_equals_the_standard_library_on_tricky_lines(line: str) -> None:
    assert parse_line(line) == _parsed_exactly(line)


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.decimals(min_value=-(10**6), max_value=10**6, places=7).map(str)
    | st.text(max_size=8)
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["payload", "a", 'b"payload', "k"]) | st.text(max_size=5),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    members=st.dictionaries(
        st.sampled_from(["event_id", "event_type", "occurred_at", "source", "payload", "x"]),
        _json_values | st.just("2026-01-01T00:00:00+01:00"),
    ),
    payload_last=st.booleans(),
    spacing=st.sampled_from([(",", ":"), (", ", ": "), (" ,  ", " :\t")]),
)
def test_fast_reader_equals_the_standard_library_on_generated_lines(
    members: dict, payload_last: bool, spacing: tuple[str, str]
) -> None:
    if payload_last and "payload" in members:
        members = {
            **{k: v for k, v in members.items() if k != "payload"},
            "payload": members["payload"],
        }
    line = json.dumps(members, separators=spacing, ensure_ascii=False)
    assert parse_line(line) == _parsed_exactly(line)


def test_envelope_hash_format_is_stable() -> None:
    """Stored hashes are compared with future re-sends: the format must not drift between
    releases. Members but the payload, sorted by key, each as len:key len:text."""
    line = (
        '{"occurred_at": "2026-01-01T00:00:00Z", "event_type": "order.placed", '
        '"event_id": "e-1", "payload": {"order_id": "o-1"}}'
    )
    canonical = "8:event_id3:e-110:event_type12:order.placed11:occurred_at20:2026-01-01T00:00:00Z"
    parsed = parse_line(line)
    assert isinstance(parsed, Envelope)
    assert parsed.envelope_hash == hashlib.sha256(canonical.encode()).hexdigest()
