"""Limits without cgroups: rlimits, a nice value and a watchdog thread per task.

* memory: each process of the task gets ``RLIMIT_DATA`` at twice the task's
  memory (the kernel's backstop), and the watchdog samples the resident memory
  of the task's process tree every ``TICK``; above the limit (confirmed with
  the proportional set size, so pages forked workers share count once) it
  SIGKILLs the largest process, as the kernel's OOM killer would in a cgroup,
  and the task's exit is then an OOM kill;
* cpu: the task's cpu units are a quota enforced by pausing its process group
  (SIGSTOP, then SIGCONT) when it has used more than its share, measured over
  the tree's CPU time (``limits.Bucket``); the container's cpu shares become a
  nice value.

What this cannot do that a cgroup does: see processes a task detaches from its
tree (a double fork), or stop an allocation faster than one sample (a single
allocation above twice the limit fails inside the task with ENOMEM/MemoryError
instead).
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import threading
import time
from pathlib import Path

from ship import procfs
from ship.localcloud.runtime import limits as L

log = logging.getLogger("ship.localcloud.runtime.watchdog")

TICK = 0.1
MAX_PROCESSES = 4096
_PAGE = resource.getpagesize()


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (through /proc/<pid>/task/<tid>/children)."""
    out: list[int] = []
    todo = [pid]
    while todo and len(out) < MAX_PROCESSES:
        p = todo.pop()
        out.append(p)
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                todo.extend(int(c) for c in Path(f"/proc/{p}/task/{tid}/children").read_text().split())
            except (OSError, ValueError):
                continue
    return out


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return _rss(pid)


class WatchedTask:
    """One task held to its limits by rlimits and a watchdog thread."""

    def __init__(self, task_id: str, limits: L.Limits, tick: float = TICK):
        self.task_id, self.limits, self.tick = task_id, limits, tick
        self._oom = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._data = L.data_rlimit(limits)
        self._nice = L.nice_for_shares(limits.cpu_shares)
        self.pauses = 0                       # how often the task was paused for its CPU use

    # -- in the task's process, before exec
    def preexec(self) -> None:
        if self._data:
            resource.setrlimit(resource.RLIMIT_DATA, (self._data, self._data))
        if self._nice:
            os.nice(self._nice)

    def started(self, pid: int) -> None:
        self._pid = pid
        if self.limits.memory_bytes or self.limits.cpus:
            self._thread = threading.Thread(target=self._watch, name=f"limits-{self.task_id[:8]}", daemon=True)
            self._thread.start()

    def oom_killed(self) -> bool:
        return self._oom

    def unthrottle(self) -> None:
        """Stop watching and let the task run (before it is asked to stop)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._signal(signal.SIGCONT)

    def release(self) -> None:
        self.unthrottle()

    # -- the watchdog
    def _signal(self, sig: int) -> None:
        if self._pid is None:
            return
        try:
            os.killpg(self._pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _alive(self) -> bool:
        return self._pid is not None and procfs.cpu_seconds(self._pid) is not None

    def _watch(self) -> None:
        assert self._pid is not None
        bucket = L.Bucket(rate=self.limits.cpus, burst=self.limits.cpus * self.tick) if self.limits.cpus else None
        seen: dict[int, float] = {}
        last = time.monotonic()
        try:
            while not self._stop.wait(self.tick) and self._alive():
                pids = _tree(self._pid)
                if self.limits.memory_bytes:
                    self._check_memory(pids, self.limits.memory_bytes)
                if bucket is None:
                    continue
                now = time.monotonic()
                used, seen = self._cpu_used(pids, seen)
                pause = bucket.step(used, now - last)
                last = now
                if pause > 0:
                    self.pauses += 1
                    self._signal(signal.SIGSTOP)
                    self._stop.wait(pause)
                    self._signal(signal.SIGCONT)
        except Exception:                        # never die silently: the task runs on, unwatched
            log.exception("task %s: the limits watchdog failed; the task runs without limits", self.task_id)
            self._signal(signal.SIGCONT)

    @staticmethod
    def _cpu_used(pids: list[int], seen: dict[int, float]) -> tuple[float, dict[int, float]]:
        now: dict[int, float] = {}
        used = 0.0
        for pid in pids:
            total = procfs.cpu_seconds(pid)
            if total is None:
                continue
            now[pid] = total
            used += max(0.0, total - seen.get(pid, 0.0))
        return used, now

    def _check_memory(self, pids: list[int], limit: int) -> None:
        if sum(_rss(p) for p in pids) <= limit:
            return
        sizes = {p: _pss(p) for p in pids}
        if sum(sizes.values()) <= limit:
            return
        victim = max(sizes, key=lambda p: sizes[p])
        log.info("task %s: %d MiB above its %d MiB: OOM-killing pid %d", self.task_id,
                 (sum(sizes.values()) - limit) // L.MIB, limit // L.MIB, victim)
        self._oom = True
        try:
            os.kill(victim, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class RlimitEnforcer:
    mode = "rlimit"

    def __init__(self, why: str):
        self.description = why

    def setup(self) -> None:
        pass

    def task(self, task_id: str, limits: L.Limits) -> WatchedTask:
        return WatchedTask(task_id, limits)

    def close(self) -> None:
        pass
