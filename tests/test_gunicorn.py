"""gunicorn with the real config file, in a subprocess, on a free port."""

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import ROOT, wait_until
from ship.net import free_port

GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read())


def _wait_healthy(url, proc, deadline=60.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited early with {proc.returncode}")
        try:
            return _get(url, timeout=1)
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def _accepted_by_a_process(server_port: int, client_port: int) -> bool:
    """Whether the server end of this connection is held by a process (accepted), not queued on
    the listener: its socket's inode (from /proc/net/tcp) is among some process's descriptors."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, remote, state, inode = f[1], f[2], f[3], f[9]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == server_port \
                    and int(remote.rsplit(":", 1)[1], 16) == client_port:
                inodes.add(f"socket:[{inode}]")
    for fd_dir in glob.glob("/proc/[0-9]*/fd"):
        try:
            if any(os.readlink(os.path.join(fd_dir, fd)) in inodes for fd in os.listdir(fd_dir)):
                return True
        except OSError:
            continue
    return False


def _read(fh) -> bytes:
    with open(fh.name, "rb") as f:
        return f.read()


@pytest.fixture
def gunicorn_server(tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), WEB_CONCURRENCY="2", APP_VERSION="abc1234",
               GUNICORN_GRACEFUL_TIMEOUT="10")
    env.pop("ECS_CONTAINER_METADATA_URI_V4", None)
    out = open(tmp_path / "gunicorn.log", "w+")
    proc = subprocess.Popen([GUNICORN, "--config", "gunicorn.conf.py", "hello.wsgi:app"],
                            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc, f"http://127.0.0.1:{port}", out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        out.close()


def test_check_config_passes():
    result = subprocess.run([GUNICORN, "--check-config", "--config", "gunicorn.conf.py", "hello.wsgi:app"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_serves_health_and_index_then_exits_cleanly_on_sigterm(gunicorn_server):
    proc, url, out = gunicorn_server
    assert _wait_healthy(url + "/health", proc) == (200, {"status": "ok"})
    status, body = _get(url + "/")
    assert status == 200
    assert body["version"] == "abc1234"
    assert body["instance"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    out.seek(0)
    log = out.read()
    assert "Shutting down: Master" in log
    # The request log line is JSON on stdout.
    assert any(json.loads(line).get("path") == "/" for line in log.splitlines()
               if line.startswith("{") and '"hello.request"' in line)


def test_one_replica_answers_as_one_instance(gunicorn_server):
    """The app is loaded once, before the workers fork: each of them answers with the same
    instance (without a task metadata endpoint, the master's host and pid), as one task does."""
    proc, url, out = gunicorn_server
    _wait_healthy(url + "/health", proc)
    instances = {_get(url + "/")[1]["instance"] for _ in range(40)}
    assert instances == {f"{socket.gethostname()}:{proc.pid}"}


def test_sigterm_drains_an_in_flight_request(gunicorn_server):
    """A request in progress when SIGTERM arrives still gets its full answer."""
    proc, url, out = gunicorn_server
    _wait_healthy(url + "/health", proc)
    import socket

    host, port = url.rsplit("/", 1)[-1].split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    # Send only the headers' first part; once a worker has accepted the connection, it is busy reading it.
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    wait_until(lambda: _accepted_by_a_process(int(port), sock.getsockname()[1]), 10, "a worker to accept")
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: b"Handling signal: term" in _read(out), 10, "gunicorn to take SIGTERM")
    sock.sendall(b"Connection: close\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert proc.wait(timeout=15) == 0


def test_bad_config_stops_startup_with_one_line(tmp_path):
    port = free_port()
    env = dict(os.environ, PORT=str(port), LOG_LEVEL="LOUD", WEB_CONCURRENCY="1")
    result = subprocess.run([GUNICORN, "--config", "gunicorn.conf.py", "hello.wsgi:app"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "configuration error: LOG_LEVEL='LOUD' is not one of" in result.stderr
    assert "Traceback" not in result.stderr.split("configuration error")[0][-200:]


def test_bad_port_is_rejected():
    env = dict(os.environ, PORT="http")
    result = subprocess.run([GUNICORN, "--check-config", "--config", "gunicorn.conf.py", "hello.wsgi:app"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "PORT='http' is not an integer" in result.stderr + result.stdout
