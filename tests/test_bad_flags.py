"""Bad flag values, missing credentials and foreign programs through the real menu:
one line saying what to do, exit 1, nothing started (no local cloud, no Terraform)."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from helpers import ROOT, processes_mentioning
from ship.net import free_port

INV = str(Path(sys.executable).parent / "inv")


@pytest.fixture
def menu(tmp_path):
    state = tmp_path / "state"
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update(SHIP_STATE_DIR=str(state), SHIP_LOCAL_PORT=str(free_port()), HOME=str(tmp_path),
                AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-creds"),
                AWS_EC2_METADATA_DISABLED="true")

    def run(*args, **extra):
        return subprocess.run([INV, *args], cwd=ROOT, env={**base, **extra}, capture_output=True, text=True,
                              timeout=120)

    run.state = state
    yield run
    assert processes_mentioning(str(state)) == []


def one_line(result, code: int = 1) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stdout + result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("args, expected", [
    (["prune", "--env=local", "--keep=abc"], "error: --keep='abc' is not a whole number: give e.g. --keep=5"),
    (["prune", "--env=local", "--keep=-1"], "error: --keep=-1 must be at least 1"),
    (["prune", "--env=local", "--keep=0"], "error: --keep=0 must be at least 1"),
    (["deploy", "--env=local", "--timeout=soon"], "error: --timeout='soon' is not a whole number"),
    (["release", "--env=local", "--timeout=soon"], "error: --timeout='soon' is not a whole number"),
    (["rollback", "--env=local", "--timeout=1.5x"], "error: --timeout='1.5x' is not a whole number"),
    (["redeploy", "--env=local", "--timeout=0"], "error: --timeout=0 must be at least 1"),
    (["promote", "--from=local", "--to=local-prod", "--timeout=soon"], "error: --timeout='soon' is not a whole"),
    (["smoke", "--env=local", "--requests=many"], "error: --requests='many' is not a whole number"),
    (["local.up", "--port=http"], "error: --port='http' is not a whole number: give e.g. --port=4566"),
    (["local.up", "--port=70000"], "error: --port=70000 is not a port"),
    (["local.up", "--exit-with=me"], "error: --exit-with='me' is not a whole number: give e.g. --exit-with=$$"),
    (["local.up", "--exit-with=99999999"],
     "error: process 99999999, which the local cloud should exit with, is not running"),
])
def test_bad_flag_values_are_one_line(menu, args, expected):
    assert one_line(menu(*args)).startswith(expected)


def test_a_bad_exit_with_pid_in_the_environment_is_one_line(menu):
    line = one_line(menu("local.up", SHIP_LOCAL_EXIT_WITH="me"))
    assert line == "error: SHIP_LOCAL_EXIT_WITH='me' is not a process id: unset it or give the pid the local " \
                   "cloud should exit with"


def test_promote_without_to_asks_for_to(menu):
    line = one_line(menu("promote", "--from=local"), code=2)
    assert line.startswith("error: say which environment: --to=NAME (")


@pytest.mark.parametrize("args", [
    ["deploy", "--env=staging"], ["destroy", "--env=staging"], ["bootstrap", "--env=staging"],
    ["infra.plan", "--env=staging"], ["infra.apply", "--env=staging"], ["infra.destroy", "--env=staging"],
    ["status", "--env=staging"], ["logs", "--env=staging"], ["images", "--env=staging"],
    ["prune", "--env=staging"], ["rollback", "--env=staging"], ["redeploy", "--env=staging"],
    ["release", "--env=production"], ["smoke", "--env=production"], ["deploy", "--env=staging", "--tag=abc"],
    ["promote", "--from=staging", "--to=production"],
])
def test_missing_aws_credentials_are_one_line(menu, args):
    line = one_line(menu(*args))
    assert "no AWS credentials found for" in line and "aws configure" in line, line
    assert not (menu.state / "locks").exists(), "a command that could not start left its lock file"


def test_a_missing_profile_is_one_line(menu):
    line = one_line(menu("status", "--env=staging", AWS_PROFILE="nope"))
    assert "AWS credentials for staging" in line and "nope" in line


class _Page(http.server.BaseHTTPRequestHandler):
    def _page(self):
        body = b"<!DOCTYPE html><html><body><h1>Someone else's app</h1></body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _page

    def log_message(self, *args):
        pass


def test_status_against_a_foreign_program_on_the_emulator_port(menu):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        line = one_line(menu("status", "--env=local", SHIP_LOCAL_PORT=str(port)))
    finally:
        server.shutdown()
        server.server_close()
    assert f"http://127.0.0.1:{port} answers, but it is not the local cloud (pid {os.getpid()}" in line
    assert "SHIP_LOCAL_PORT" in line and "<" not in line and "html" not in line.lower()
