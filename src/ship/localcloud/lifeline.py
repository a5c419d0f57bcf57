"""Tie a process's life to another's: ``watch(pid, on_exit)`` calls ``on_exit`` once ``pid``
has exited, however it died (SIGKILL included).

``PR_SET_PDEATHSIG`` cannot do this for the local cloud: it is started detached
(its own session, its starter may exit at once), and the signal follows the
*thread* that forked, not the process one names. So the pid is watched: with a
pidfd where the kernel has one (Linux 5.3+: readable once the process has
exited, immune to pid reuse), else by polling ``/proc/<pid>/stat`` for the start
time seen at the beginning (a reused pid is a new start time).
"""

from __future__ import annotations

import logging
import os
import select
import threading
from typing import Callable

from ship import procfs

log = logging.getLogger("ship.localcloud.lifeline")

POLL = 0.5


def _wait_pidfd(fd: int, stop: threading.Event) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not stop.is_set():
        if poller.poll(int(POLL * 1000)):
            return


def _wait_polling(pid: int, stop: threading.Event) -> None:
    start = procfs.live_start_time(pid)   # None without /proc (or once it has exited): procfs.alive below
    while not stop.wait(POLL):
        if start is not None:
            if procfs.live_start_time(pid) != start:
                return
        elif not procfs.alive(pid):
            return


def watch(pid: int, on_exit: Callable[[], None], name: str = "lifeline") -> threading.Event:
    """Call ``on_exit()`` (on a daemon thread) when ``pid`` exits; set the returned event to stop
    watching. ``pid`` must be alive when this is called (check with ``procfs.alive``)."""
    stop = threading.Event()
    fd: int | None = None
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None                                  # older kernel or not Linux: poll

    def run() -> None:
        try:
            if fd is not None:
                _wait_pidfd(fd, stop)
            else:
                _wait_polling(pid, stop)
        finally:
            if fd is not None:
                os.close(fd)
        if not stop.is_set():
            log.info("process %s has exited", pid)
            try:
                on_exit()
            except Exception:
                log.exception("reacting to the exit of process %s failed", pid)

    threading.Thread(target=run, name=name, daemon=True).start()
    return stop
