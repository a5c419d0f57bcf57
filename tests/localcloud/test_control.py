"""Starting and stopping the local cloud, and what must never outlive it."""

from __future__ import annotations

import os
import signal
import socket

import pytest
import requests

from conftest import _pids_under, build_process_image, push_image
from helpers import wait_until
from ship.errors import ShipError
from ship.net import free_port
from ship.localcloud import control

IGNORE_TERM = ("import signal, time, os\n"
               "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
               "print('stubborn', os.getpid(), flush=True)\n"
               "while True: time.sleep(1)\n")


def _run_stubborn_service(cloud):
    ecs, ecr = cloud.client("ecs"), cloud.client("ecr")
    ecr.create_repository(repositoryName="stubborn")
    config, layer = build_process_image("v1")
    image = push_image(ecr, "stubborn", "v1", config, layer)
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(family="s", containerDefinitions=[{
        "name": "app", "image": image, "memory": 128, "stopTimeout": 2,
        "command": ["python", "-c", IGNORE_TERM]}])
    ecs.create_service(cluster="c", serviceName="s", taskDefinition="s", desiredCount=2)
    svc = wait_until(lambda: [s for s in ecs.describe_services(cluster="c", services=["s"])["services"]
                              if s["runningCount"] == 2], 60, "2 running tasks", step=0.25)[0]
    assert svc["deployments"][0]["rolloutState"] == "COMPLETED"
    arns = ecs.list_tasks(cluster="c", serviceName="s")["taskArns"]
    return ecs.describe_tasks(cluster="c", tasks=arns)["tasks"]


def test_health_endpoint_and_idempotent_up(cloud):
    info = requests.get(cloud.endpoint + "/_ship/health", timeout=5).json()
    assert info["service"] == "ship-localcloud"
    assert info["runtime"] in ("process", "process+container")
    assert info["instance"] == cloud.info["instance"]
    again = control.up(cloud.state_dir, port=int(cloud.endpoint.rsplit(":", 1)[1]))
    assert again["instance"] == info["instance"] and again["pid"] == info["pid"]
    st = control.status(cloud.state_dir, int(cloud.endpoint.rsplit(":", 1)[1]))
    assert st["lock_pid"] == info["pid"]
    assert requests.get(cloud.endpoint + "/_ship/listeners", timeout=5).json() == []


def test_up_refuses_a_port_held_by_something_else(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ShipError) as err:
            control.up(tmp_path / "st", port=port, timeout=10)
    msg = str(err.value)
    assert f"port {port}" in msg and "SHIP_LOCAL_PORT" in msg and "\n" not in msg
    assert f"pid {os.getpid()}" in msg


def test_down_stops_tasks_that_ignore_sigterm(cloud):
    tasks = _run_stubborn_service(cloud)
    assert len(tasks) == 2
    assert len(_pids_under(cloud.state_dir)) >= 2
    log = cloud.state_dir / control.LOGFILE
    offset = log.stat().st_size
    # the fixture's teardown calls down() and asserts nothing is left
    assert control.down(cloud.state_dir, timeout=60)
    # the local cloud itself killed each task after its stopTimeout (2 s): down() did not have to kill it
    said = log.read_bytes()[offset:].decode(errors="replace")
    for t in tasks:
        assert f"task {t['taskArn'].rsplit('/', 1)[1]} ignored SIGTERM for 2s: SIGKILL" in said, said[-2000:]
    assert _pids_under(cloud.state_dir) == []
    control.up(cloud.state_dir, port=int(cloud.endpoint.rsplit(":", 1)[1]))  # so the fixture can stop it


def test_tasks_do_not_outlive_a_killed_local_cloud(tmp_path, monkeypatch):
    port = free_port()
    state = tmp_path / "st"
    info = control.up(state, port=port, timeout=60)

    class C:
        endpoint = f"http://127.0.0.1:{port}"

        @staticmethod
        def client(name):
            import boto3

            return boto3.client(name, endpoint_url=C.endpoint, region_name="us-east-1",
                                aws_access_key_id="test", aws_secret_access_key="test")

    try:
        _run_stubborn_service(C)
        assert _pids_under(state)
        os.kill(info["pid"], signal.SIGKILL)
        wait_until(lambda: _pids_under(state) == [], 10, "the tasks gone with their local cloud")
    finally:
        control.down(state)
    assert _pids_under(state) == []
    assert control.probe(C.endpoint) is None
