"""One local cloud per state directory, whatever starts and stops it at the same time.

Each race runs several rounds with real processes (`python -m ship.localcloud up/down`,
as `inv local.up` does) and threads of this process, started together."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import SRC
from ship import procfs
from ship.errors import ShipError
from ship.net import free_port
from ship.localcloud import control, statelock

ROUNDS = 4


def _cli(command: str, state: Path, port: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-m", "ship.localcloud", command, "--state-dir", str(state),
                           "--port", str(port)], capture_output=True, text=True, timeout=240, env=env)


def _serves(state: Path) -> list[int]:
    """Pids of live serve processes for ``state`` (from /proc: ps may cut long command lines). A
    process a serve forks shows the serve's command line until it runs its own program (a
    subprocess between fork and exec, on a busy machine): it is not a second serve."""
    found: dict[int, int | None] = {}
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "serve" in argv and str(state.resolve()) in argv and procfs.alive(int(proc.name)):
            found[int(proc.name)] = procfs.ppid(proc.name)
    return sorted(pid for pid, parent in found.items() if parent not in found)


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _race(*jobs):
    """Run the callables together (released by one barrier); their results in order."""
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


@pytest.fixture
def place(tmp_path):
    state, port = tmp_path / "state", free_port()
    try:
        yield state, port
    finally:
        control.down(state, timeout=30)
        assert _serves(state) == []


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_concurrent_up_starts_one_local_cloud_and_concurrent_down_stops_it(place, round_):
    state, port = place
    results = _race(lambda: _cli("up", state, port), lambda: _cli("up", state, port),
                    lambda: control.up(state, port=port, timeout=60),
                    lambda: control.up(state, port=port, timeout=60))
    for r in results[:2]:
        assert r.returncode == 0, r.stderr
    pids = [json.loads(r.stdout)["pid"] for r in results[:2]] + [r["pid"] for r in results[2:]]
    assert len(pids) == 4 and len(set(pids)) == 1, pids
    assert len(_serves(state)) == 1, _serves(state)
    assert statelock.holder(state) == pids.pop()
    assert control.status(state, port)["lock_pid"] == statelock.holder(state)

    downs = _race(lambda: _cli("down", state, port), lambda: _cli("down", state, port),
                  lambda: control.down(state))
    said = [r.stdout.strip() for r in downs[:2]] + ["stopped" if downs[2] else "not running"]
    assert sorted(said) == ["not running", "not running", "stopped"], said
    assert statelock.holder(state) is None
    assert _serves(state) == [] and _port_closed(port)
    assert control.status(state, port) is None


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_up_and_down_together_end_as_if_run_one_after_the_other(place, round_):
    state, port = place
    if round_ % 2:
        control.up(state, port=port, timeout=60)
    _race(lambda: _cli("up", state, port), lambda: control.down(state), lambda: _cli("up", state, port),
          lambda: _cli("down", state, port))
    owner = statelock.holder(state)
    info = control.status(state, port)
    # whatever order they took, what runs is what status shows and what down stops
    if owner is None:
        assert info is None and _port_closed(port) and _serves(state) == []
    else:
        assert info is not None and info["pid"] == owner and len(_serves(state)) == 1
    assert control.down(state) is (owner is not None)
    assert _port_closed(port) and _serves(state) == []


def test_a_second_serve_on_the_same_state_directory_refuses(place):
    state, port = place
    first = control.up(state, port=port, timeout=60)
    other = free_port()
    result = subprocess.run([sys.executable, "-m", "ship.localcloud", "serve", "--state-dir", str(state),
                             "--port", str(other)], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, PYTHONPATH=str(SRC)))
    assert result.returncode == statelock.EXIT_LOCKED
    assert f"another local cloud (pid {first['pid']}) already serves {state.resolve()}" in result.stderr
    assert _port_closed(other)
    assert control.probe(f"http://127.0.0.1:{port}")["pid"] == first["pid"]


def test_a_killed_local_cloud_releases_its_state_directory(place):
    state, port = place
    first = control.up(state, port=port, timeout=60)
    os.kill(first["pid"], 9)
    second = control.up(state, port=port, timeout=60)
    assert second["pid"] != first["pid"] and statelock.holder(state) == second["pid"]


@pytest.fixture
def stale_log(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / control.LOGFILE).write_text("2026-01-01 an OLDER INSTANCE said this last\n")
    return state


def _fake_python(tmp_path, body: str) -> str:
    exe = tmp_path / "fake-python"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(0o755)
    return str(exe)


def test_a_silent_failure_does_not_quote_an_older_instance(tmp_path, stale_log):
    with pytest.raises(ShipError) as err:
        control.up(stale_log, port=free_port(), timeout=2, python=_fake_python(tmp_path, "exec sleep 60\n"))
    assert "OLDER INSTANCE" not in str(err.value)
    assert "did not answer" in str(err.value) and "it printed nothing" in str(err.value)


def test_a_start_failure_quotes_its_own_last_line(tmp_path, stale_log):
    with pytest.raises(ShipError) as err:
        control.up(stale_log, port=free_port(), timeout=20,
                   python=_fake_python(tmp_path, "echo 'this instance: bad thing' >&2; exit 3\n"))
    assert "OLDER INSTANCE" not in str(err.value)
    assert "exited during start (this instance: bad thing)" in str(err.value)
