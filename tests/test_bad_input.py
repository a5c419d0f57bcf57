"""Bad input through the real menu: one line saying what to do, exit 1, nothing created.

These start a private local cloud on a free port (a few seconds) but apply no
Terraform, so they stay in the default test run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from helpers import ROOT, processes_mentioning
from ship.net import free_port

INV = str(Path(sys.executable).parent / "inv")


@pytest.fixture
def menu(tmp_path):
    state, port = tmp_path / "state", free_port()
    env = dict(os.environ, SHIP_STATE_DIR=str(state), SHIP_LOCAL_PORT=str(port), AWS_ACCESS_KEY_ID="test",
               AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")

    def run(*args, **extra):
        return subprocess.run([INV, *args], cwd=ROOT, env={**env, **extra}, capture_output=True, text=True,
                              timeout=180)

    run.port, run.state = port, state
    try:
        yield run
    finally:
        run("local.down")
        assert processes_mentioning(str(state)) == []


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def s3(port):
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def test_missing_state_bucket_hints_at_bootstrap(menu):
    line = one_line(menu("infra.plan", "--env=local"))
    assert "state bucket hello-tfstate-local does not exist: run `inv bootstrap --env=local`" in line
    assert s3(menu.port).list_buckets()["Buckets"] == []
    # bootstrap fixes it, and only creates the bucket.
    result = menu("bootstrap", "--env=local")
    assert result.returncode == 0 and "created state bucket hello-tfstate-local" in result.stdout
    client = s3(menu.port)
    assert client.get_bucket_versioning(Bucket="hello-tfstate-local")["Status"] == "Enabled"
    block = client.get_public_access_block(Bucket="hello-tfstate-local")["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert "already exists" in menu("bootstrap", "--env=local").stdout


def test_missing_terraform_binary_starts_nothing(menu):
    line = one_line(menu("infra.plan", "--env=local", TF_BINARY="no-such-terraform"))
    assert "no-such-terraform not found on PATH: install Terraform" in line
    # Nothing was started for it.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", menu.port)) != 0


def test_port_taken_by_something_else(menu):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", menu.port))
        squatter.listen()
        line = one_line(menu("local.up"))
    assert f"port {menu.port} on 127.0.0.1 is taken by something that is not the local cloud" in line
    assert "SHIP_LOCAL_PORT" in line


def test_a_restart_keeps_the_stack_and_a_reset_is_detected(menu):
    assert menu("local.up").returncode == 0
    # What an apply records: the lineage of the local cloud's state the stack lives in.
    from ship import config, paths
    from ship.stack import record_emulator_identity
    from ship.localcloud import control

    info = control.status(menu.state / "localcloud", port=menu.port)
    old = dict(os.environ)
    try:
        os.environ["SHIP_STATE_DIR"] = str(menu.state)
        assert paths.state_dir() == menu.state
        record_emulator_identity(config.load("local"), info)
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert menu("local.down").returncode == 0
    result = menu("bootstrap", "--env=local")          # starts it again: it remembers
    assert result.returncode == 0, result.stderr
    assert "forgotten" not in result.stdout
    reset = menu("local.reset")
    assert reset.returncode == 0 and "local cloud state forgotten" in reset.stdout, reset.stdout
    result = menu("bootstrap", "--env=local")
    assert result.returncode == 0, result.stderr
    assert "the local cloud's state was reset since local was applied, so it has forgotten it" in result.stdout
    assert menu("local.down").returncode == 0


def test_local_environment_refuses_real_aws(menu):
    line = one_line(menu("status", "--env=local", SHIP_LOCAL_ENDPOINT="https://ecs.us-east-1.amazonaws.com"))
    assert "refusing to use https://ecs.us-east-1.amazonaws.com" in line
