"""`grid run`'s start-up and Python's cycle collector: paused while the long-lived objects are
built, which are then frozen, only in the console script's own process (a subprocess here, so
that nothing of this test process is frozen)."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json, sys
from grid_assets import cli

cli._process_ends_with_command = sys.argv[1] == "console"
before = gc.get_freeze_count()
with cli._start_up():
    during = gc.isenabled()
    built = [[i] for i in range(10_000)]
frozen = gc.get_freeze_count() - before
try:
    with cli._start_up():
        raise RuntimeError("start-up failed")
except RuntimeError:
    pass
print(json.dumps({"during": during, "after": gc.isenabled(), "frozen": frozen}))
"""


def _probe(mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def test_the_console_script_builds_start_up_without_collecting_then_freezes_it():
    seen = _probe("console")
    assert seen["during"] is False
    assert seen["after"] is True  # collection resumes, after a failed start-up too
    assert seen["frozen"] >= 10_000  # what start-up built is out of the collector's sight


def test_inside_another_process_start_up_leaves_collection_alone():
    assert _probe("embedded") == {"during": True, "after": True, "frozen": 0}


def test_the_console_script_is_the_process_that_ends_with_the_command():
    probe = (
        "import sys\nfrom grid_assets import cli\n"
        "sys.argv = ['grid', 'version']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print(cli._process_ends_with_command)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "True"
