"""The check's output: one line per check, printed as soon as it is known, secrets masked.

PASS|FAIL|SKIP  <check>  <what was found>  (hint: <what to do>)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from grid_assets.lakehouse.databricks import call_within
from grid_assets.logging_redaction import redact

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
NAME_WIDTH = 33
# What importing a client may take before its call's own timeout starts (pyspark included).
IMPORT_ALLOWANCE_S = 60.0

T = TypeVar("T")


def bounded(fn: Callable[[], T], seconds: float) -> T:
    """`fn()`, or `Deadline` if it is still running after `seconds`."""
    return call_within(fn, seconds, thread_name="grid-config-check")


def one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(redact(f"{type(exc).__name__}: {exc}").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def warn(text: str) -> None:
    """A clean-up that failed: worth a line, but not a check of its own."""
    print(redact(f"WARN  {text}"), flush=True)


class Report:
    """Prints each result as soon as it is known; remembers which checks failed or skipped."""

    def __init__(self) -> None:
        self.results: dict[str, str] = {}

    def line(self, status: str, name: str, detail: str, hint: str = "") -> str:
        self.results[name] = status
        text = f"{status}  {name:<{NAME_WIDTH}}  {detail}"
        if hint:
            text += f"  (hint: {hint})"
        print(redact(text), flush=True)
        return status

    def ok(self, *names: str) -> bool:
        return all(self.results.get(n) == PASS for n in names)

    def skip_unless(self, name: str, *needs: str) -> bool:
        """Report `name` as SKIP (and return True) unless every check in `needs` passed."""
        blocked = [n for n in needs if self.results.get(n) != PASS]
        if blocked:
            self.line(SKIP, name, "not run: needs " + ", ".join(blocked))
        return bool(blocked)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(s == PASS for s in self.results.values())
