"""lifeline.watch: a callback when a process exits, however it dies (pidfd, or /proc polling)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest

from ship import procfs
from ship.localcloud import lifeline


@pytest.fixture(params=["pidfd", "polling"])
def how(request, monkeypatch):
    if request.param == "polling":
        def no_pidfd(pid):
            raise OSError(38, "Function not implemented")
        monkeypatch.setattr(os, "pidfd_open", no_pidfd)
        monkeypatch.setattr(lifeline, "POLL", 0.05)
    return request.param


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_the_callback_runs_when_the_process_dies(how, sig):
    proc = subprocess.Popen(["sleep", "60"])
    try:
        gone = threading.Event()
        assert procfs.alive(proc.pid)
        lifeline.watch(proc.pid, gone.set)
        assert not gone.wait(0.3)
        os.kill(proc.pid, sig)                 # not reaped yet: a zombie counts as exited
        assert gone.wait(10), f"no callback after {sig!r} ({how})"
    finally:
        proc.kill()
        proc.wait()


def test_a_stopped_watch_never_calls_back(how):
    proc = subprocess.Popen(["sleep", "60"])
    try:
        called = threading.Event()
        stop = lifeline.watch(proc.pid, called.set)
        stop.set()
        proc.kill()
        proc.wait()
        assert not called.wait(1.0)
    finally:
        proc.kill()
        proc.wait()
