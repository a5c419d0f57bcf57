"""Start, stop and probe the local cloud (``python -m ship.localcloud serve``)."""

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

from ship.errors import ShipError
from ship.localcloud import DEFAULT_HOST, DEFAULT_PORT, SERVICE_NAME

PIDFILE = "localcloud.pid"
LOGFILE = "localcloud.log"


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


def _read_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / PIDFILE).read_text().strip())
    except (OSError, ValueError):
        return None


def _is_our_serve(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":
        return False
    args = [a.decode(errors="replace") for a in argv]
    return "ship.localcloud" in args and "serve" in args


def _last_log_line(log_path: Path) -> str:
    try:
        lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else "no output"


def status(state_dir: str | os.PathLike, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> dict | None:
    """Health info of the emulator on ``host:port`` plus the pid recorded in ``state_dir``."""
    info = probe(_endpoint(host, port))
    if info is None:
        return None
    info = dict(info)
    info["endpoint"] = _endpoint(host, port)
    info["pidfile_pid"] = _read_pid(Path(state_dir))
    return info


def listeners(state_dir: str | os.PathLike, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> list[dict]:
    """The ALB listener -> local port mapping of the running local cloud ([] when it is down)."""
    try:
        with urllib.request.urlopen(_endpoint(host, port) + "/_ship/listeners", timeout=5) as resp:
            table = json.loads(resp.read() or b"[]")
    except (OSError, ValueError, urllib.error.URLError):
        return []
    return table if isinstance(table, list) else []


def up(state_dir: str | os.PathLike, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
       timeout: float = 30, python: str | None = None) -> dict:
    """Start the local cloud detached (or find it running); returns its health info."""
    state = Path(state_dir).resolve()
    endpoint = _endpoint(host, port)
    info = probe(endpoint)
    if info is not None:
        return dict(info, endpoint=endpoint)
    if _port_open(host, port):
        holder = _port_holder(port)
        raise ShipError(
            f"port {port} on {host} is taken by something that is not the local cloud"
            f"{' (' + holder + ')' if holder else ''}: free it, or choose another port with SHIP_LOCAL_PORT")
    state.mkdir(parents=True, exist_ok=True)
    old = _read_pid(state)
    if old and _is_our_serve(old):
        # ours, but not answering on this port (another port, or stuck): stop it first
        down(state)
    log_path = state / LOGFILE
    logf = open(log_path, "ab")
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(
        [python or sys.executable, "-m", "ship.localcloud", "serve", "--host", host, "--port", str(port),
         "--state-dir", str(state)],
        stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        cwd=str(state))
    logf.close()
    (state / PIDFILE).write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (state / PIDFILE).unlink(missing_ok=True)
            raise ShipError(f"the local cloud exited during start ({_last_log_line(log_path)}); "
                            f"see {log_path}")
        info = probe(endpoint, timeout=0.5)
        if info is not None and info.get("pid") == proc.pid:
            return dict(info, endpoint=endpoint)
        time.sleep(0.2)
    _terminate(proc.pid, 5)
    (state / PIDFILE).unlink(missing_ok=True)
    raise ShipError(f"the local cloud did not answer on {endpoint} within {timeout:.0f}s "
                    f"({_last_log_line(log_path)}); see {log_path}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _terminate(pid: int, timeout: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(50):
        _reap(pid)
        if not _alive(pid):
            return
        time.sleep(0.1)


def down(state_dir: str | os.PathLike, timeout: float = 45) -> bool:
    """Stop the local cloud recorded in ``state_dir`` and every task it started.
    Returns True when a running local cloud was stopped."""
    from ship.localcloud.runtime.process import kill_leftover_tasks

    state = Path(state_dir).resolve()
    pid = _read_pid(state)
    stopped = False
    if pid and _is_our_serve(pid):
        _terminate(pid, timeout)
        stopped = True
    (state / PIDFILE).unlink(missing_ok=True)
    kill_leftover_tasks(state / "tasks")
    return stopped
