"""The traffic generator, checked by re-reading what it wrote with an independent reader.

The reader below applies the raw-event contract on its own terms (it shares no code with the
generator), so a summary that miscounts, or a line that is not what the summary says it is,
fails here before it can mislead a pipeline test or a benchmark.
"""

from __future__ import annotations

import gzip
import json
import re
import shlex
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from grid_assets_tests.conftest import REPO_ROOT, SAMPLES_DIR
from grid_sim import TrafficProfile, TrafficSummary, generate_traffic

OFFSET_SUFFIX = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
PRICE_TEXT = re.compile(r"^\d+\.\d{2}(\d{2})?$")
MORE_THAN_SIX_DECIMALS = re.compile(r"\d\.\d{7,}")
SAMPLE_EVENTS = 6000


def read_lines(out_dir: Path, files: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """(file name, line) in ingestion order: files by name, then lines in order."""
    for name in sorted(files):
        raw = (out_dir / name).read_bytes()
        if name.endswith(".gz"):
            raw = gzip.decompress(raw)
        text = raw.decode("utf-8")  # strict: a byte that is not UTF-8 fails here
        assert text == "" or text.endswith("\n"), f"{name} does not end with a newline"
        for line in text.split("\n")[:-1]:
            yield name, line


def decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int), value  # not NaN or infinity
    return max(0, -exponent)


def envelope_problem(value: Any) -> str | None:
    """Why a decoded line is not a valid envelope, in the generator's vocabulary."""
    if not isinstance(value, dict):
        return "not_an_object"
    if "event_id" not in value:
        return "missing_event_id"
    if not isinstance(value["event_id"], str) or not value["event_id"]:
        return "empty_event_id"
    if "event_type" not in value:
        return "missing_event_type"
    if "occurred_at" not in value:
        return "missing_occurred_at"
    occurred_at = value["occurred_at"]
    if not isinstance(occurred_at, str):
        return "invalid_occurred_at"
    try:
        parsed = datetime.fromisoformat(occurred_at)
    except ValueError:
        return "invalid_occurred_at"
    if parsed.tzinfo is None:
        return "occurred_at_without_offset"
    if "payload" not in value:
        return "missing_payload"
    if not isinstance(value["payload"], dict):
        return "payload_not_an_object"
    return None


def silver_problems(event_type: str, payload: dict[str, Any]) -> list[str]:
    """The Silver rules a valid envelope's payload breaks (money parsed as Decimal)."""

    def bad_price(value: Any) -> list[str]:
        amount = Decimal(value)
        if amount < 0:
            return ["negative_unit_price"]
        return ["unit_price_too_precise"] if decimal_places(amount) > 6 else []

    problems: list[str] = []
    if event_type.startswith("product."):
        problems += [] if "product_id" in payload else ["missing_product_id"]
        problems += [] if "category" in payload else ["missing_category"]
        problems += bad_price(payload["unit_price"])
    elif event_type == "order.placed":
        problems += [] if "order_id" in payload else ["missing_order_id"]
        problems += [] if payload["items"] else ["empty_items"]
        for item in payload["items"]:
            quantity = item["quantity"]
            if not isinstance(quantity, int) or isinstance(quantity, bool):
                problems.append("fractional_quantity")
            elif quantity <= 0:
                problems.append("zero_quantity")
            problems += bad_price(item["unit_price"])
            if not 0 <= Decimal(item.get("discount", 0)) < 1:
                problems.append("discount_out_of_range")
    elif event_type.startswith("order."):
        problems += [] if "order_id" in payload else ["missing_order_id"]
    return problems


@dataclass
class Tally:
    """What an independent reader finds in the generated files."""

    lines: int = 0
    blank_lines: int = 0
    events_by_type: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    conflicts: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    # First-seen valid events: (file, raw line, decoded value, Silver rules broken).
    events: list[tuple[str, str, dict[str, Any], list[str]]] = field(default_factory=list)


def tally(out_dir: Path, files: tuple[str, ...]) -> Tally:
    found = Tally()
    seen: dict[str, Any] = {}
    for name, line in read_lines(out_dir, files):
        if not line.strip():
            found.blank_lines += 1
            continue
        found.lines += 1
        try:
            value = json.loads(line, parse_float=Decimal)
        except ValueError:
            found.rejected["not_json"] += 1
            continue
        problem = envelope_problem(value)
        if problem is not None:
            found.rejected[problem] += 1
        elif value["event_id"] in seen:
            if seen[value["event_id"]] == value:
                found.duplicates += 1
            else:
                found.conflicts += 1
        else:
            seen[value["event_id"]] = value
            found.events_by_type[value["event_type"]] += 1
            problems = silver_problems(value["event_type"], value["payload"])
            # The generator breaks exactly one rule per quarantine-worthy event.
            assert len(problems) <= 1, (problems, line)
            found.quarantined.update(problems)
            found.events.append((name, line, value, problems))
    return found


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrafficSummary, Tally]:
    out_dir = tmp_path_factory.mktemp("traffic")
    summary = generate_traffic(out_dir, SAMPLE_EVENTS, seed=11)
    return out_dir, summary, tally(out_dir, summary.files)


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    runs = {}
    for label, seed in (("a", 3), ("b", 3), ("c", 4)):
        summary = generate_traffic(tmp_path / label, 1500, seed=seed, n_files=3, gzip_every=1)
        runs[label] = (summary, {n: (tmp_path / label / n).read_bytes() for n in summary.files})
    assert runs["a"] == runs["b"]
    assert runs["a"][1].keys() == runs["c"][1].keys()
    assert runs["a"][1] != runs["c"][1]


def test_the_committed_samples_reproduce_byte_for_byte_with_their_documented_command(
    tmp_path: Path,
) -> None:
    # The command data/samples/README.md gives, run as written but into a scratch folder.
    readme = (SAMPLES_DIR / "README.md").read_text(encoding="utf-8")
    [command] = [line.strip() for line in readme.splitlines() if "simulate_pipeline.py" in line]
    argv = shlex.split(command)
    assert argv[:2] == ["python", "scripts/simulate_pipeline.py"] and "--no-run" in argv, command
    argv[argv.index("--out") + 1] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, *argv[1:]], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    committed = sorted(p.name for p in SAMPLES_DIR.glob("events-*"))
    assert committed and sorted(p.name for p in tmp_path.iterdir()) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (SAMPLES_DIR / name).read_bytes(), name


def test_files_follow_emission_order_and_gzip_every(sample) -> None:
    out_dir, summary, _ = sample
    assert summary.files == (
        "events-0001.ndjson",
        "events-0002.ndjson.gz",
        "events-0003.ndjson",
        "events-0004.ndjson.gz",
    )
    assert sorted(p.name for p in out_dir.iterdir()) == list(summary.files)
    header = (out_dir / "events-0002.ndjson.gz").read_bytes()[:10]
    # Magic number, then a zero mtime and no file name: nothing that varies between runs.
    assert header[:2] == b"\x1f\x8b" and header[4:8] == b"\0\0\0\0" and not header[3] & 0x08


def test_summary_agrees_with_what_the_files_contain(sample) -> None:
    _, summary, found = sample
    assert summary.lines == found.lines == SAMPLE_EVENTS
    assert summary.blank_lines == found.blank_lines
    assert summary.events_by_type == dict(found.events_by_type)
    assert summary.duplicates == found.duplicates
    assert summary.conflicts == found.conflicts
    assert summary.rejected == dict(found.rejected)
    assert summary.quarantined == dict(found.quarantined)


def test_traffic_covers_every_kind_of_event_and_of_bad_input(sample) -> None:
    _, summary, found = sample
    expected_types = {
        "product.created",
        "product.updated",
        "order.placed",
        "order.paid",
        "order.shipped",
        "order.cancelled",
        "system.heartbeat",
    }
    assert expected_types <= found.events_by_type.keys()
    assert found.events_by_type.keys() - expected_types, "no unknown event_type"
    assert not any(t.startswith("pipeline.") for t in found.events_by_type)
    assert len(found.rejected) == 10 and len(found.quarantined) == 9
    assert found.blank_lines and found.duplicates and found.conflicts
    values = [value for _, _, value, _ in found.events]
    assert any("source" not in value for value in values), "source is never omitted"
    announced = {
        v["payload"].get("product_id") for v in values if v["event_type"] == "product.created"
    }
    ordered = {
        item["product_id"]
        for v in values
        if v["event_type"] == "order.placed"
        for item in v["payload"]["items"]
    }
    assert ordered - announced, "no order line names an unknown product"
    # bad_share=0.02 of 6000 lines: about 120 rejects, never wildly off.
    assert 60 <= summary.rejected_total <= 200


def test_every_valid_envelope_has_an_offset_and_both_forms_occur(sample) -> None:
    _, _, found = sample
    suffixes = Counter(
        OFFSET_SUFFIX.search(value["occurred_at"]).group(1)  # type: ignore[union-attr]
        for _, _, value, _ in found.events
    )
    assert suffixes["Z"] and len(suffixes) > 1


def test_money_is_never_serialized_with_more_digits_than_intended(sample) -> None:
    _, _, found = sample
    prices: list[Any] = []
    discounts: list[Any] = []
    for _, line, value, problems in found.events:
        if problems:
            continue
        assert not MORE_THAN_SIX_DECIMALS.search(line), line
        payload = value["payload"]
        if value["event_type"].startswith("product."):
            prices.append(payload["unit_price"])
        elif value["event_type"] == "order.placed":
            prices += [item["unit_price"] for item in payload["items"]]
            discounts += [item["discount"] for item in payload["items"] if "discount" in item]
        elif value["event_type"] == "order.paid":
            assert PRICE_TEXT.match(payload["amount"]), payload
    for price in prices:
        if isinstance(price, Decimal):  # a JSON number: whole cents, nothing a float adds
            assert decimal_places(price) <= 2, price
        else:
            assert PRICE_TEXT.match(price), price
    assert {type(p) for p in prices} == {str, Decimal}
    assert {str(d) for d in discounts} <= {"0", "0.05", "0.1", "0.15", "0.2"}
    assert {type(d) for d in discounts} == {int, str, Decimal}


def test_some_payments_are_written_before_their_placement(sample) -> None:
    _, summary, found = sample
    placed: set[str] = set()
    paid_first: set[str] = set()
    for _, _, value, _ in found.events:
        order_id = value["payload"].get("order_id")
        if value["event_type"] == "order.placed":
            placed.add(order_id)
        elif value["event_type"] == "order.paid" and order_id not in placed:
            paid_first.add(order_id)
    assert paid_first & placed, "no order.paid precedes its order.placed"
    assert summary.paid_before_placed > 0


def test_some_late_events_land_in_a_later_file_hours_behind(sample) -> None:
    _, summary, found = sample
    latest_by_file: dict[str, datetime] = {}
    behind: list[timedelta] = []
    for name, _, value, _ in found.events:
        occurred = datetime.fromisoformat(value["occurred_at"])
        earlier = [latest for file, latest in latest_by_file.items() if file < name]
        if earlier and occurred < max(earlier):
            behind.append(max(earlier) - occurred)
        latest_by_file[name] = max(latest_by_file.get(name, occurred), occurred)
    assert 0 < len(behind) <= summary.late_events
    assert max(behind) > timedelta(hours=1)


def test_no_bad_input_when_bad_share_is_zero(tmp_path: Path) -> None:
    summary = generate_traffic(tmp_path, 2000, seed=5, n_files=2, bad_share=0)
    found = tally(tmp_path, summary.files)
    assert summary.rejected == {} and summary.quarantined == {}
    assert not found.rejected and not found.quarantined


def test_the_profile_steers_the_traffic(tmp_path: Path) -> None:
    quiet = TrafficProfile(
        duplicate_share=0,
        conflict_share=0,
        late_share=0,
        paid_before_placed_share=0,
        blank_share=0,
    )
    summary = generate_traffic(tmp_path, 2000, seed=5, n_files=1, profile=quiet)
    assert summary.duplicates == summary.conflicts == summary.late_events == 0
    assert summary.blank_lines == 0 and summary.rejected_total > 0
    default = generate_traffic(tmp_path / "default", 2000, seed=5, n_files=1)
    assert default.duplicates and default.conflicts and default.late_events


@pytest.mark.parametrize(
    "changes",
    [{"late_share": 1.5}, {"order_below": 0.99}, {"hourly_gap_factor": (1,) * 23}],
)
def test_a_nonsense_profile_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TrafficProfile(**changes)


def test_fewer_events_than_files_still_writes_every_file(tmp_path: Path) -> None:
    summary = generate_traffic(tmp_path, 2, seed=1, n_files=5, gzip_every=0)
    assert len(summary.files) == 5 and all((tmp_path / n).exists() for n in summary.files)
    assert tally(tmp_path, summary.files).lines == 2


@pytest.mark.parametrize("kwargs", [{"n_files": 0}, {"bad_share": 0.9}, {"gzip_every": -1}])
def test_nonsense_arguments_are_refused(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate_traffic(tmp_path, 10, seed=1, **kwargs)


# Measured in a fresh interpreter by its own peak resident set (VmHWM, that of its address space
# since exec). The test process's peak cannot serve: an earlier test may have pushed it higher
# than this generation ever would, and a child's ru_maxrss starts from its parent's size at
# fork. A warm-up run first puts imports and first-use allocations in the baseline.
_PEAK_GROWTH = r"""
import json, re, sys
from pathlib import Path
from grid_sim import generate_traffic

def peak_kib():
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.M).group(1))

out = Path(sys.argv[1])
generate_traffic(out / "warm-up", 1_000, seed=2, gzip_every=0)
before = peak_kib()
summary = generate_traffic(out, 200_000, seed=2, gzip_every=0)
print(json.dumps({"grown_kib": peak_kib() - before, "files": summary.files}))
"""


def test_200k_events_stream_to_disk_with_flat_memory(tmp_path: Path) -> None:
    if not Path("/proc/self/status").is_file():
        pytest.skip("the peak resident set is read from /proc (Linux)")
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_GROWTH, str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    grown_mib = measured["grown_kib"] / 1024
    # Streaming grows the peak by a few MiB; holding the 200k lines alone would add about 60.
    assert grown_mib < 16, f"peak memory grew by {grown_mib:.0f} MiB"
    non_blank = [
        sum(1 for line in (tmp_path / name).read_bytes().split(b"\n")[:-1] if line)
        for name in measured["files"]
    ]
    assert non_blank == [50_000] * 4
