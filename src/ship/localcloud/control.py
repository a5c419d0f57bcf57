"""Start, stop and probe the local cloud (``python -m ship.localcloud serve``).

Who runs is the kernel's answer, not a pidfile's: the serve process holds
``statelock`` on its state directory for its life, and ``up``/``down`` take
turns on the directory's control lock, so any number of them at once end as if
run one after the other. Error messages quote only what the instance being
started wrote to the log.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ship import procfs
from ship.errors import ShipError
from ship.localcloud import DEFAULT_HOST, DEFAULT_PORT, SERVICE_NAME, statelock

LOGFILE = "localcloud.log"
INFOFILE = "localcloud.json"  # written by the serve process once it holds the lock
EXIT_WITH_ENV = "SHIP_LOCAL_EXIT_WITH"  # a pid: a local cloud started meanwhile stops when it exits
# Seconds between two looks at a starting local cloud: it answers ~1 s after its start (a
# refused connection costs next to nothing), and every command that starts one waits for it.
START_POLL = 0.05


def probe(endpoint: str, timeout: float = 1.0) -> dict | None:
    """Our emulator's /_ship/health document at ``endpoint``, or None."""
    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + "/_ship/health", timeout=timeout) as resp:
            info = json.loads(resp.read() or b"{}")
    except (OSError, ValueError, urllib.error.URLError):
        return None
    if isinstance(info, dict) and info.get("service") == SERVICE_NAME:
        return info
    return None


def identify(endpoint: str, timeout: float = 5.0) -> str:
    """"ours" (the local cloud answers), "foreign" (something else answers), "none" (nothing listens),
    or "unknown" (no answer in time: busy, perhaps). Only "foreign" is a positive finding."""
    try:
        with urllib.request.urlopen(endpoint.rstrip("/") + "/_ship/health", timeout=timeout) as resp:
            body = resp.read(65536)
    except urllib.error.HTTPError:
        return "foreign"  # it speaks HTTP, and our /_ship/health never fails
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, ConnectionRefusedError):
            return "none"
        return "unknown" if isinstance(reason, (TimeoutError, socket.timeout)) else "foreign"
    except (TimeoutError, socket.timeout):
        return "unknown"
    except (OSError, ValueError):
        return "foreign"  # not HTTP at all
    try:
        info = json.loads(body or b"{}")
    except ValueError:
        return "foreign"
    return "ours" if isinstance(info, dict) and info.get("service") == SERVICE_NAME else "foreign"


def describe_port(port: int) -> str:
    """" (pid 123 (cmd))" for messages about who holds ``port``, or ""."""
    holder = _port_holder(port)
    return f" ({holder})" if holder else ""


def _endpoint(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _port_holder(port: int) -> str | None:
    """Best effort: "pid 123 (python3 -m foo)" of the process listening on ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])
    if not inodes:
        return None
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    cmd = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                    return f"pid {pid_dir.name} ({cmd[:80]})"
        except OSError:
            continue
    return None


def _last_log_lines(log_path: Path, offset: int, count: int = 1) -> str:
    """The last lines this instance wrote (from ``offset`` on): never an older instance's."""
    try:
        with open(log_path, "rb") as fh:
            fh.seek(offset)
            text = fh.read(1 << 20).decode(errors="replace")
    except OSError:
        return "it wrote no log"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " / ".join(lines[-count:]) if lines else "it printed nothing"


def status(state_dir: str | os.PathLike, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> dict | None:
    """Health info of the emulator on ``host:port`` plus the pid holding ``state_dir``'s lock."""
    info = probe(_endpoint(host, port))
    if info is None:
        return None
    info = dict(info)
    info["endpoint"] = _endpoint(host, port)
    info["lock_pid"] = statelock.holder(Path(state_dir).resolve())
    return info


def listeners(state_dir: str | os.PathLike, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> list[dict]:
    """The ALB listener -> local port mapping of the running local cloud ([] when it is down)."""
    try:
        with urllib.request.urlopen(_endpoint(host, port) + "/_ship/listeners", timeout=5) as resp:
            table = json.loads(resp.read() or b"[]")
    except (OSError, ValueError, urllib.error.URLError):
        return []
    return table if isinstance(table, list) else []


def listener_lines(table: list[dict], port: int = DEFAULT_PORT) -> list[str]:
    """One line per listener of ``listeners()``: its local URL and, on the listener a load
    balancer's host name reaches, ``http://<name>.elb.localhost:<port>/`` (``port``: the
    emulator's)."""
    from ship.localcloud.alb.hostnames import served_port

    ports: dict[str, list[int]] = {}
    for row in table:
        ports.setdefault(str(row.get("load_balancer_name")), []).append(int(row.get("port") or 0))
    lines = []
    for row in table:
        name, listener_port = str(row.get("load_balancer_name")), int(row.get("port") or 0)
        line = f"{name}:{listener_port} -> {row.get('url')}"
        if row.get("host_name") and listener_port == served_port(ports[name]):
            line += f" and http://{row['host_name']}:{port}/"
        lines.append(line)
    return lines


def _writable_state(state: Path) -> None:
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ShipError(f"cannot create the state directory {state} ({exc.strerror}): "
                        "point SHIP_STATE_DIR at a writable directory") from None


def exit_with_from_env() -> int | None:
    """The pid in $SHIP_LOCAL_EXIT_WITH (a test session sets its own), or None."""
    raw = (os.environ.get(EXIT_WITH_ENV) or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) <= 0:
        raise ShipError(f"{EXIT_WITH_ENV}={raw!r} is not a process id: unset it or give the pid the local cloud "
                        "should exit with")
    return int(raw)


def up(state_dir: str | os.PathLike, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
       timeout: float = 90, python: str | None = None, exit_with: int | None = None) -> dict:
    """Start the local cloud detached (or find it running); returns its health info.

    It answers within a few seconds on an idle machine (restoring a saved state included); the
    ``timeout`` bounds a start that hangs, and is generous because a loaded machine (several test
    sessions at once) stretches a start many times over.

    Safe to call from many processes at once: they take turns (``statelock.control``),
    and whoever comes second finds the first one's local cloud.

    ``exit_with`` (default: $SHIP_LOCAL_EXIT_WITH): a local cloud started here stops, with
    every task it runs, when that process exits (a test session, a script); one found
    running keeps the life it was started with."""
    state = Path(state_dir).resolve()
    endpoint = _endpoint(host, port)
    if exit_with is None:
        exit_with = exit_with_from_env()
    if exit_with is not None:
        if not procfs.alive(exit_with):
            raise ShipError(f"process {exit_with}, which the local cloud should exit with, is not running")
    _writable_state(state)
    with statelock.control(state, timeout=timeout + 120):
        for _attempt in range(3):
            owner = statelock.holder(state)
            if owner == -1:
                raise ShipError(f"the local cloud of {state} is held by a process this machine cannot see "
                                "(another pid namespace, e.g. a container): stop it there")
            if owner is not None:
                info = _adopt(state, owner, endpoint, timeout)
                if info is not None:
                    return info
                continue
            info = probe(endpoint)
            if info is not None:
                # the local cloud of another state directory (or of a container) answers here
                return dict(info, endpoint=endpoint)
            if _port_open(host, port):
                holder = _port_holder(port)
                raise ShipError(
                    f"port {port} on {host} is taken by something that is not the local cloud"
                    f"{' (' + holder + ')' if holder else ''}: free it, or choose another port with SHIP_LOCAL_PORT")
            info = _start(state, host, port, timeout, python, exit_with)
            if info is not None:
                return info
        raise ShipError(f"the local cloud of {state} kept changing hands while starting; run the command again")


def _adopt(state: Path, owner: int, endpoint: str, timeout: float) -> dict | None:
    """The running local cloud of ``state`` if it answers on ``endpoint``; else stop it (None).

    It may still be starting (its starter was interrupted): give it ``timeout``."""
    deadline = time.monotonic() + timeout
    while statelock.holder(state) == owner:
        info = probe(endpoint, timeout=0.5)
        if info is not None and info.get("pid") == owner:
            return dict(info, endpoint=endpoint)
        recorded = _recorded(state)
        other_port = recorded.get("pid") == owner and recorded.get("port") != int(endpoint.rsplit(":", 1)[1])
        if other_port or time.monotonic() > deadline:
            # ours, but on another port or stuck: stop it and start on the port asked for
            _stop(state, owner, 45)
            return None
        time.sleep(0.2)
    return None  # it went away meanwhile


def _recorded(state: Path) -> dict:
    """What the serve holding the lock wrote about itself (host, port); {} if unreadable."""
    try:
        data = json.loads((state / INFOFILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _start(state: Path, host: str, port: int, timeout: float, python: str | None,
           exit_with: int | None = None) -> dict | None:
    """Spawn a serve process and wait until it answers; None if another serve took the lock first."""
    endpoint = _endpoint(host, port)
    log_path = state / LOGFILE
    with open(log_path, "ab") as logf:
        offset = logf.tell()
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("PYTHONUNBUFFERED", "1")
        proc = subprocess.Popen(
            [python or sys.executable, "-m", "ship.localcloud", "serve", "--host", host, "--port", str(port),
             "--state-dir", str(state), *(["--exit-with", str(exit_with)] if exit_with else [])],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, env=env,
            cwd=str(state))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code == statelock.EXIT_LOCKED:
            return None
        if code is not None:
            raise ShipError(f"the local cloud exited during start ({_last_log_lines(log_path, offset)}); "
                            f"see {log_path}")
        info = probe(endpoint, timeout=0.5)
        if info is not None and info.get("pid") == proc.pid:
            return dict(info, endpoint=endpoint)
        time.sleep(START_POLL)
    _terminate(proc.pid, 5)
    _reap(proc.pid)
    raise ShipError(f"the local cloud did not answer on {endpoint} within {timeout:.0f}s "
                    f"({_last_log_lines(log_path, offset)}); see {log_path}")


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie counts as exited); a child of ours is reaped."""
    _reap(pid)
    return not procfs.alive(pid)


def _terminate(pid: int, timeout: float, done=None) -> None:
    """SIGTERM, then SIGKILL to the process group after ``timeout``; wait until ``done()``."""
    if pid <= 0:
        raise ValueError(f"refusing to signal pid {pid}")
    done = done or (lambda: _gone(pid))
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(100):
        _reap(pid)
        if done():
            return
        time.sleep(0.1)


def _stop(state: Path, owner: int, timeout: float) -> None:
    """Stop the serve holding ``state``'s lock: done when the kernel has released the lock."""
    _terminate(owner, timeout, done=lambda: statelock.holder(state) != owner)


def down(state_dir: str | os.PathLike, timeout: float = 45) -> bool:
    """Stop the local cloud of ``state_dir`` and every task it started (its saved state stays
    for the next start). Returns True when a running local cloud was stopped."""
    state = Path(state_dir).resolve()
    if not state.is_dir():
        return False
    with statelock.control(state, timeout=timeout + 120):
        return _down(state, timeout)


def _down(state: Path, timeout: float) -> bool:
    from ship.localcloud.runtime.process_runner import kill_leftover_tasks

    owner = statelock.holder(state)
    if owner is not None and owner > 0:
        _stop(state, owner, timeout)
    # what a crashed local cloud left behind (nothing holds the lock now)
    kill_leftover_tasks(state / "tasks")
    return owner is not None


def reset(state_dir: str | os.PathLike, timeout: float = 45) -> tuple[bool, list[str]]:
    """Stop the local cloud of ``state_dir`` and forget what it holds (``persistence.wipe``), with no
    start of another in between. Returns (a running one was stopped, what was removed)."""
    from ship.localcloud import persistence

    state = Path(state_dir).resolve()
    if not state.is_dir():
        return False, []
    with statelock.control(state, timeout=timeout + 120):
        stopped = _down(state, timeout)
        return stopped, persistence.wipe(state)
