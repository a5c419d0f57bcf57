"""One local cloud per state directory, decided by the kernel, not by pidfiles.

The ``serve`` process takes a POSIX record lock (``fcntl.lockf``) on
``<state>/localcloud.lock`` before it touches anything else and holds it for
its whole life: the kernel drops it when the process exits, however it dies
(SIGKILL, OOM), and a task process it forks does not inherit it. A second
``serve`` on the same directory fails to take it and exits with
``EXIT_LOCKED``.

The tool side never takes that lock: it asks the kernel who holds it
(``F_GETLK``, which reports the holder's pid) and so cannot disturb a serve
that is starting. Tool commands that start or stop the local cloud serialise
among themselves with ``flock`` on ``<state>/control.lock`` (``flock`` locks
belong to an open file, so two threads of one process exclude each other too).

Caveat of POSIX locks, kept in mind here: a process loses its lock when it
closes *any* descriptor of the file, so the serve process never opens the lock
file a second time (``holder()`` is for other processes).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import sys
import time
from pathlib import Path

from ship.errors import ShipError

LOCKFILE = "localcloud.lock"
CONTROL_LOCKFILE = "control.lock"
EXIT_LOCKED = 75  # EX_TEMPFAIL: another serve holds the state directory


class _LinuxFlock(ctypes.Structure):
    _fields_ = [("l_type", ctypes.c_short), ("l_whence", ctypes.c_short), ("l_start", ctypes.c_int64),
                ("l_len", ctypes.c_int64), ("l_pid", ctypes.c_int)]


class _BsdFlock(ctypes.Structure):
    _fields_ = [("l_start", ctypes.c_int64), ("l_len", ctypes.c_int64), ("l_pid", ctypes.c_int),
                ("l_type", ctypes.c_short), ("l_whence", ctypes.c_short)]


_Flock = _LinuxFlock if sys.platform.startswith("linux") else _BsdFlock


def acquire(state: Path) -> int | None:
    """Serve side: the held lock's descriptor (keep it open), or None when another process holds it."""
    fd = os.open(Path(state) / LOCKFILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return None
        raise
    # For people only (`cat localcloud.lock`); nothing decides by this content.
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def holder(state: Path) -> int | None:
    """Tool side: the pid of the process holding ``state``'s serve lock, or None."""
    try:
        fd = os.open(Path(state) / LOCKFILE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        probe = _Flock(l_type=fcntl.F_WRLCK, l_whence=os.SEEK_SET, l_start=0, l_len=0, l_pid=0)
        answer = _Flock.from_buffer_copy(fcntl.fcntl(fd, fcntl.F_GETLK, bytes(probe)))
    finally:
        os.close(fd)
    if answer.l_type == fcntl.F_UNLCK:
        return None
    return answer.l_pid or -1  # -1: held by a process outside our pid namespace


@contextlib.contextmanager
def control(state: Path, timeout: float = 180.0, poll: float = 0.05):
    """Serialise the tool's start/stop of one state directory's local cloud."""
    path = Path(state) / CONTROL_LOCKFILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        if not path.is_file():
            raise ShipError(f"the state directory {state} is not writable ({exc.strerror}): make it writable or "
                            "point SHIP_STATE_DIR at a writable directory") from None
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # flock needs no write access (stopping still works)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ShipError(f"another command has been starting or stopping the local cloud of {state} "
                                    f"for {timeout:.0f}s; wait for it, or find it with `fuser {path}`") from None
                time.sleep(poll)
        yield
    finally:
        os.close(fd)  # releases the flock
