"""What the data plane asks of a runner: the task to run (``TaskSpec``), the handle
it gets back (``TaskHandle``) and the calls of ``Runner``. ``ProcessRunner``
(runtime.process_runner) and ``ContainerRunner`` (runtime.container_runner) implement it; the
data plane picks one with ``Runner.can_run``.

* ``start`` runs the task's essential container and streams its output, one
  line at a time, to a callback; it raises ``ImageError`` (an ECS-like reason)
  when the task cannot start;
* ``poll`` is the exit code once the container has exited, else None; a
  container killed for its memory also gets ``TaskHandle.reason``
  (``limits.OOM_REASON``, as ECS reports it);
* ``stop`` sends SIGTERM, then SIGKILL after ``timeout`` seconds, and returns
  the exit code (negative for a signal, as ``subprocess``);
* ``exec`` runs a command inside the running task, as the container health
  check does, and returns its exit code (None when it outlived ``timeout``).
"""

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
    cpu: str | None = None     # the task's cpu units and memory MiB (task definition or RunTask override)
    memory: str | None = None


@dataclass
class TaskHandle:
    task_id: str
    host: str
    port: int
    pid: int | None
    proc: subprocess.Popen | None = None
    exit_code: int | None = None
    reader: threading.Thread | None = None
    env: dict[str, str] = field(default_factory=dict)   # what a command run inside the task sees
    cwd: str | None = None
    reason: str | None = None      # why the container exited, as ECS's container ``reason`` (an OOM kill)


class Runner(Protocol):
    """``kind`` ("process", "container") and ``limits`` (how tasks are held to their cpu and
    memory here, one line) are reported by /_ship/health."""

    @property
    def kind(self) -> str: ...

    @property
    def limits(self) -> str: ...

    def can_run(self, image: ResolvedImage) -> bool: ...

    def prepare(self, image: ResolvedImage) -> None:
        """Make ``image`` ready to start (unpacked, installed) before any task needs it, the
        way a host pulls an image ahead of time; a later ``start`` then finds it done."""

    def start(self, spec: TaskSpec, on_output: OutputCallback) -> TaskHandle: ...

    def poll(self, handle: TaskHandle) -> int | None: ...

    def stop(self, handle: TaskHandle, timeout: float) -> int | None: ...

    def exec(self, handle: TaskHandle, argv: list[str], timeout: float) -> int | None: ...


# --------------------------------------------------------------------------
# spawning with a parent-death signal, from one long-lived thread
# --------------------------------------------------------------------------

def pump_output(proc: subprocess.Popen, on_output: OutputCallback) -> None:
    """Hand each line ``proc`` writes to ``on_output`` until it closes its output."""
    for raw in iter(proc.stdout.readline, b""):  # type: ignore[union-attr]  # started with stdout=PIPE
        try:
            on_output(raw.decode("utf-8", "replace").rstrip("\n"))
        except Exception:  # never let logging kill the reader
            log.exception("log callback failed")
    proc.stdout.close()  # type: ignore[union-attr]
