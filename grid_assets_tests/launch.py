"""Commands started in the background by tests, so slow start-ups overlap."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Launched:
    """A command started in the background; `wait()` returns it finished, output and timing."""

    args: list[str]
    env: dict[str, str]
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""

    def __post_init__(self) -> None:
        self._process = subprocess.Popen(
            self.args,
            env=self.env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._done = threading.Thread(target=self._collect, daemon=True)
        self._done.start()

    def _collect(self) -> None:
        self.stdout, self.stderr = self._process.communicate()
        self.ended = time.monotonic()
        self.returncode = self._process.returncode

    def wait(self, timeout: float = 240) -> Launched:
        self._done.join(timeout)
        if self._done.is_alive():
            self._process.kill()
            pytest.fail(f"{self.args} still running after {timeout} s")
        return self

    @property
    def elapsed(self) -> float:
        assert self.ended is not None
        return self.ended - self.started

    @property
    def output(self) -> str:
        return self.stdout + self.stderr
