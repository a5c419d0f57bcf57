"""Small helpers shared by the test suites."""

import subprocess
import time
from typing import Callable, TypeVar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def processes_mentioning(marker: str) -> list[str]:
    """`pid args` lines of running processes whose command line contains ``marker``."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if marker in line and "ps -eo" not in line]


def wait_until(predicate: Callable[[], T], timeout: float, what: str = "", step: float = 0.05) -> T:
    """The first truthy value of ``predicate()``, polled every ``step`` seconds; AssertionError naming
    ``what`` (and the last value seen) if none comes within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T = predicate()
    while not last:
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate} (last: {last!r})")
        time.sleep(step)
        last = predicate()
    return last
