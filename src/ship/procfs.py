"""A process as Linux's /proc shows it: the fields of ``/proc/<pid>/stat``, read in one place.

The line is ``pid (comm) state ppid pgrp session ...`` (proc(5)). ``comm`` is the program's name
as the process set it, spaces and parentheses included, so the fields are split after its *last*
``)``: ``fields(pid)[i]`` is proc(5)'s field ``i + 3``. The indexes used here are named below.
Everything answers None for a process that is gone (or a machine without /proc), never raises;
``alive`` also works without /proc.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC = Path("/proc")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100   # the unit of the time fields

STATE, PPID, PGRP, SESSION, UTIME, STIME, STARTTIME = 0, 1, 2, 3, 11, 12, 19


def fields(pid: int | str, proc: Path = PROC) -> list[str] | None:
    """The fields after the command name, state first; None when there is no such process."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    _, closed, rest = text.rpartition(")")
    found = rest.split()
    return found if closed and len(found) > STARTTIME else None


def state(pid: int | str, proc: Path = PROC) -> str | None:
    """One letter: R running, S sleeping, ..., Z a zombie (exited, not yet waited for)."""
    found = fields(pid, proc)
    return found[STATE] if found else None


def ppid(pid: int | str, proc: Path = PROC) -> int | None:
    found = fields(pid, proc)
    return int(found[PPID]) if found else None


def start_time(pid: int | str, proc: Path = PROC) -> str | None:
    """When the process started, in clock ticks after boot, as /proc writes it: with the pid it
    names one process for good (a pid used again is a later start), so it is kept and compared,
    never computed with."""
    found = fields(pid, proc)
    return found[STARTTIME] if found else None


def live_start_time(pid: int | str, proc: Path = PROC) -> str | None:
    """``start_time`` of a process that has not exited: None for a zombie too."""
    found = fields(pid, proc)
    return None if found is None or found[STATE] in ("Z", "X") else found[STARTTIME]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has). Without /proc, whether
    ``kill(pid, 0)`` finds it."""
    if pid <= 0:
        return False
    if PROC.is_dir():
        return live_start_time(pid) is not None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cpu_ticks(found: list[str]) -> int:
    """User and system CPU time of a stat line's ``fields``, in CLK_TCK ticks."""
    return int(found[UTIME]) + int(found[STIME])


def cpu_seconds(pid: int | str, proc: Path = PROC) -> float | None:
    """The CPU time the process itself has used (its threads, not its children)."""
    found = fields(pid, proc)
    return cpu_ticks(found) / CLK_TCK if found else None


def lower_priority(pid: int, nice: int, proc: Path = PROC) -> None:
    """Give the session that process ``pid`` leads a smaller share of the CPU, ``nice`` (0-19).

    Linux shares the CPU between sessions first when it groups tasks by session
    (``/proc/sys/kernel/sched_autogroup_enabled``, sched(7)), and a process's niceness only orders
    it within its own session. So this sets the niceness of the session's group, which every
    process of the session shares, later ones too (``/proc/<pid>/autogroup``); and that of the
    process group's processes, which their children inherit and which is what counts on a kernel
    that does not group by session. Raising a niceness needs no privilege. A process that later
    starts a session of its own (``setsid``) leaves the group and keeps an ordinary share there.
    Quiet when the process is gone or the kernel has no such groups. Without privilege the kernel
    takes a group's niceness ten times a second at most, machine-wide: a busy moment is waited out
    (a second at most)."""
    try:
        os.setpriority(os.PRIO_PGRP, pid, nice)
    except OSError:
        return
    for _ in range(10):
        try:
            (proc / str(pid) / "autogroup").write_text(f"{nice}\n")
            return
        except BlockingIOError:   # EAGAIN: another group's niceness was set within 0.1 s
            time.sleep(0.1)
        except OSError:
            return
