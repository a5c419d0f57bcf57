"""A test session that is killed leaves nothing running: its local cloud, the cloud's replicas
and containers stop with it, and no port stays open.

Each case starts a real pytest session (session_child.py, under a parent process that stands
for nox or a CI step) that starts a local cloud and a replica, then kills it as CI timeouts
and people do: SIGTERM, Ctrl-C twice (SIGINT to the process group, twice at once), SIGKILL,
and SIGKILL of its parent.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HERE, _pids_under
from helpers import wait_until
from ship import procfs

# The parent: runs the session and, like a shell waiting for its foreground job, lets Ctrl-C reach
# the job alone.
PARENT = ("import signal, subprocess, sys\n"
          "child = subprocess.Popen(sys.argv[1:])\n"
          "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
          "sys.exit(child.wait())\n")


def _sigint_twice(session) -> None:
    """Ctrl-C, and Ctrl-C again while the session tears down (slowly, as an `inv destroy` would)."""
    os.killpg(session.parent.pid, signal.SIGINT)
    wait_until(session.teardown_file.exists, 60, "the session to begin its teardown", step=0.2)
    os.killpg(session.parent.pid, signal.SIGINT)


KILLS = {
    "SIGTERM": lambda s: os.kill(s.report["pytest"], signal.SIGTERM),
    "Ctrl-C twice": _sigint_twice,
    "SIGKILL": lambda s: os.kill(s.report["pytest"], signal.SIGKILL),
    "SIGKILL of its parent": lambda s: os.kill(s.parent.pid, signal.SIGKILL),
}


def _open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _as_from_a_terminal() -> None:
    """Ctrl-C and a hang-up reach the session as they would from a terminal or a CI step, even when
    this run was started in the background or under nohup (which leave SIGINT or SIGHUP ignored,
    and ignored signals are inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


class Session:
    """A pytest session running session_child.py under a parent process, in its own process group."""

    def __init__(self, tmp: Path, env: dict[str, str]):
        self.report_file = tmp / "report.json"
        self.teardown_file = tmp / "report.json.teardown"
        self.output = tmp / "session.log"
        env = dict(os.environ, SHIP_LIFETIME_REPORT=str(self.report_file), **env)
        env.pop("SHIP_LOCAL_EXIT_WITH", None)           # the child session sets its own
        with open(self.output, "wb") as out:
            self.parent = subprocess.Popen(
                [sys.executable, "-c", PARENT, sys.executable, "-m", "pytest", str(HERE / "session_child.py"),
                 "-q", "-p", "no:cacheprovider", f"--basetemp={tmp / 'inner'}"],
                cwd=HERE.parents[1], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_as_from_a_terminal)
        self.report: dict = {}

    def started(self, timeout: float = 180) -> dict:
        def ready():
            if self.report_file.exists():
                return json.loads(self.report_file.read_text())
            if self.parent.poll() is not None:
                raise AssertionError(f"the session ended before it was killed:\n{self.output.read_text()[-3000:]}")
            return None
        self.report = wait_until(ready, timeout, "the session to start its local cloud and replica", step=0.2)
        self.started_at = {pid: procfs.live_start_time(pid) for pid in (self.report["pytest"], self.report["serve"])}
        return self.report

    def _alive(self, pid: int) -> bool:
        """Still the process the report names (pids are reused quickly on a busy machine)."""
        return procfs.alive(pid) and procfs.live_start_time(pid) == self.started_at.get(pid)

    def leftovers(self, engine=None) -> list[str]:
        """What of the session still runs: processes, containers, listening ports."""
        state = Path(self.report["state"])
        left = [f"process {name} {pid}" for name, pid in (("pytest", self.report["pytest"]),
                                                          ("local cloud", self.report["serve"]))
                if self._alive(pid)]
        left += [f"task process {pid}" for pid in _pids_under(state)]
        left += [f"port {port}" for port in self.report["ports"] if _open(port)]
        if engine is not None:
            from ship.localcloud.runtime.container_runner import STATE_LABEL
            left += [f"container {c[:12]}" for c in engine.containers(label=f"{STATE_LABEL}={state.resolve()}")]
        return left

    def logs(self) -> str:
        """The ends of the session's output and of its local cloud's log (for a failure's message)."""
        out = [f"session output:\n{self.output.read_text(errors='replace')[-2000:]}"]
        log = Path(self.report["state"]) / "localcloud.log" if self.report.get("state") else None
        if log is not None and log.exists():
            out.append(f"local cloud log:\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    def clean_up(self, engine=None) -> None:
        """Whatever happened: nothing of this session may outlive the test."""
        from ship.localcloud import control

        for kill in (lambda: os.killpg(self.parent.pid, signal.SIGKILL),
                     lambda: os.kill(self.report.get("pytest", 0) or self.parent.pid, signal.SIGKILL)):
            try:
                kill()
            except (ProcessLookupError, PermissionError):
                pass
        self.parent.wait()
        if self.report.get("state"):
            control.down(self.report["state"], timeout=30)
            if engine is not None:
                from ship.localcloud.runtime.container_runner import remove_leftovers
                remove_leftovers(engine, self.report["state"])


def _check(tmp_path: Path, kill: str, env: dict[str, str], engine=None) -> None:
    if kill == "Ctrl-C twice":
        env = dict(env, SHIP_LIFETIME_SLOW_TEARDOWN="1")
    session = Session(tmp_path, env)
    try:
        session.started()
        assert len(session.leftovers(engine)) >= 3, "the session's local cloud and replica are not running"
        KILLS[kill](session)
        try:
            wait_until(lambda: not session.leftovers(engine), 180, f"nothing left running after {kill}", step=0.2)
        except AssertionError:
            raise AssertionError(f"after {kill}, still running: {session.leftovers(engine)}\n"
                                 f"{session.logs()}") from None
    finally:
        session.clean_up(engine)


@pytest.mark.parametrize("kill", list(KILLS))
def test_a_killed_session_leaves_nothing_running(tmp_path, kill):
    _check(tmp_path, kill, {})


@pytest.mark.container
@pytest.mark.parametrize("kill", ["SIGKILL", "SIGKILL of its parent"])
def test_a_killed_session_leaves_no_container(tmp_path, kill):
    """The replica is a container (the engine's process, not the local cloud's child)."""
    from ship import container_cli

    engine = container_cli.detect()
    if engine is None:
        pytest.skip(container_cli.unavailable_reason())
    image = container_cli.LOCAL_BASE_IMAGE
    if not engine.image_exists(image):
        pytest.skip(f"no {image} here: make it with .ci/podman-setup.sh")
    archive = tmp_path / "image.tar"
    engine.save(image, archive, fmt="docker-archive")
    import tarfile
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))          # type: ignore[arg-type]
        config = tar.extractfile(manifest[0]["Config"]).read()          # type: ignore[union-attr]
    (tmp_path / "config.json").write_bytes(config)
    archive.unlink()
    _check(tmp_path, kill, {"SHIP_LIFETIME_CONTAINER_CONFIG": str(tmp_path / "config.json")}, engine)
