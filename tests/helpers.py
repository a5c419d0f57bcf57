"""Small helpers shared by the test suites."""

import subprocess
import threading
import time
from collections import Counter
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


class Traffic:
    """Steady requests in a background thread while a ``with`` block runs. Every answer is kept in
    ``seen`` as (status, the body's version), a request that failed as (its error, None).

    ``get`` makes one request and returns (status, JSON body), as the e2e Stack's ``get`` does."""

    def __init__(self, get: Callable[[], tuple[int, dict]], pause: float = 0.02):
        self.get, self.pause = get, pause
        self.seen: list[tuple[int | str, str | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.pause):
            try:
                status, body = self.get()
            except OSError as err:
                self.seen.append((str(err), None))
                continue
            self.seen.append((status, body.get("version")))

    @property
    def failures(self) -> list[int | str]:
        """What answered other than 200, and the errors, in order."""
        return [status for status, _ in self.seen if status != 200]

    @property
    def versions(self) -> Counter:
        """How many 200 answers each version gave."""
        return Counter(version for status, version in self.seen if status == 200)

    def __enter__(self) -> "Traffic":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
