"""Live progress of `grid run` on a terminal, drawn from the run itself.

Two sources, both from inside the run: Dagster's event stream of the run (which step started,
finished, failed or was skipped, and each check's result), and the units of work's per-batch
reports (`etl.progress`: files and lines read by Bronze, events applied by Silver). One line
per finished step stays on screen; the running step is a spinner line below them. Nothing is
drawn unless both stdout and stderr are a terminal: pipes, files and `--json` stay quiet.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.text import Text

from grid_assets.etl import progress
from grid_assets.etl.progress import StepProgress

if TYPE_CHECKING:
    import dagster as dg


def on_a_terminal() -> bool:
    streams = (sys.stdout, sys.stderr)
    return all(s.isatty() for s in streams) and os.environ.get("TERM") != "dumb"


class RunProgress:
    """Follows one run and draws it on `console` (stderr) while `following` is active."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._step: str | None = None
        self._started = time.monotonic()
        self._batch: StepProgress | None = None
        self._batch_at = 0.0
        self._checks: dict[str, tuple[str, str | None]] = {}  # step -> (check, failed severity)
        self._steps_done = 0
        self._spinner = Spinner("dots", text="starting the run")
        self._live = Live(
            self, console=console, refresh_per_second=4, transient=True, redirect_stderr=True
        )

    # -- the run's reports -------------------------------------------------------------------
    def on_batch(self, update: StepProgress) -> None:  # any thread
        with self._lock:
            self._batch = update
            self._batch_at = time.monotonic()

    def on_event(self, entry: dg.EventLogEntry) -> None:  # the run's thread
        import dagster as dg

        event = entry.dagster_event
        step = entry.step_key
        if event is None or step is None:
            return
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            with self._lock:
                self._step, self._started, self._batch = step, time.monotonic(), None
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            label = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            failed = None if evaluation.passed else evaluation.severity.value
            self._checks[step] = (label, failed)
        elif kind in (
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.STEP_SKIPPED,
        ):
            self._finished(step, kind.value)

    def _finished(self, step: str, kind: str) -> None:
        with self._lock:
            detail = self._detail(time.monotonic()) if self._step == step else ""
            elapsed = time.monotonic() - self._started
            if self._step == step:
                self._step, self._batch = None, None
            self._steps_done += 1
        check, failed = self._checks.get(step, (None, None))
        name = escape(f"check {check}" if check else step)
        if kind == "STEP_SKIPPED":
            line = f"[dim]- {name} skipped[/dim]"
        elif kind == "STEP_FAILURE":
            line = f"[red]✗[/red] {name} failed · {elapsed:.1f} s"
        elif failed is not None:
            colour = "red" if failed == "ERROR" else "yellow"
            line = f"[{colour}]✗[/{colour}] {name} · FAILED ({failed}) · {elapsed:.1f} s"
        else:
            outcome = " · passed" if check else ""
            detail = f" · {escape(detail)}" if detail else ""
            line = f"[green]✓[/green] {name}{outcome}{detail} · {elapsed:.1f} s"
        self.console.print(line, highlight=False)

    # -- drawing -----------------------------------------------------------------------------
    def _detail(self, now: float) -> str:
        """The running step's counts and rate, from its last stored batch."""
        batch = self._batch
        if batch is None:
            return ""
        seconds = max(self._batch_at - self._started, 1e-3)
        parts = [f"{batch.done:,} {batch.unit}"]
        if batch.step == "bronze":
            parts.insert(0, f"files {batch.files_done}/{batch.files_total}")
        if batch.done:
            parts.append(f"{batch.done / seconds:,.0f} {batch.unit}/s")
        return " · ".join(parts)

    def __rich__(self) -> Spinner:
        now = time.monotonic()
        with self._lock:
            if self._step is None:
                text = "next step" if self._steps_done else "starting the run"
            else:
                parts = [self._step, self._detail(now), f"{now - self._started:.0f} s"]
                text = " · ".join(filter(None, parts))
        self._spinner.update(text=Text(text))
        return self._spinner

    @contextmanager
    def following(self, instance: dg.DagsterInstance, run_id: str) -> Iterator[None]:
        """Draw while the block runs the run `run_id` on `instance`."""
        instance.add_event_listener(run_id, self.on_event)
        with ExitStack() as stack:
            stack.enter_context(self._live)
            stack.enter_context(progress.listening(self.on_batch))
            yield


@contextmanager
def follow_on_terminal(
    instance: dg.DagsterInstance, run_id: str, enabled: bool = True
) -> Iterator[None]:
    """Live progress of the run on stderr if `enabled` and on a terminal; otherwise nothing."""
    if not (enabled and on_a_terminal()):
        yield
        return
    with RunProgress(Console(stderr=True)).following(instance, run_id):
        yield
