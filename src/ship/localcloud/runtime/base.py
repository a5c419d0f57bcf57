"""What the data plane asks of a runner: the task to run (``TaskSpec``), the handle
it gets back (``TaskHandle``) and the calls of ``Runner``. ``ProcessRunner``
(runtime.process) and ``ContainerRunner`` (runtime.container) implement it; the
data plane picks one with ``Runner.can_run``."""

from __future__ import annotations

import logging
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from ship.localcloud.runtime.images import ResolvedImage

log = logging.getLogger("ship.localcloud.runtime")

OutputCallback = Callable[[str], None]


@dataclass
class TaskSpec:
    task_id: str
    task_arn: str
    container: dict            # the task definition's container definition
    image: ResolvedImage
    port: int                  # host port on 127.0.0.1 the task must listen on
    environment: dict[str, str] = field(default_factory=dict)   # extra env (PORT, metadata URI)
    log_file: Path | None = None


@dataclass
class TaskHandle:
    task_id: str
    host: str
    port: int
    pid: int | None
    proc: object = None
    exit_code: int | None = None
    reader: threading.Thread | None = None


class Runner(Protocol):
    def can_run(self, image: ResolvedImage) -> bool: ...

    def prepare(self, image: ResolvedImage) -> None:
        """Make ``image`` ready to start (unpacked, installed) before any task needs it, the
        way a host pulls an image ahead of time; a later ``start`` then finds it done."""

    def start(self, spec: TaskSpec, on_output: OutputCallback) -> TaskHandle: ...

    def poll(self, handle: TaskHandle) -> int | None: ...

    def stop(self, handle: TaskHandle, timeout: float) -> int | None: ...


# --------------------------------------------------------------------------
# spawning with a parent-death signal, from one long-lived thread
# --------------------------------------------------------------------------

def pump_output(proc: subprocess.Popen, on_output: OutputCallback) -> None:
    """Hand each line ``proc`` writes to ``on_output`` until it closes its output."""
    for raw in iter(proc.stdout.readline, b""):
        try:
            on_output(raw.decode("utf-8", "replace").rstrip("\n"))
        except Exception:  # never let logging kill the reader
            log.exception("log callback failed")
    proc.stdout.close()
