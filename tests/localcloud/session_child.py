"""A test session of its own, which test_session_lifetime.py starts and then kills: it starts a
local cloud (the ``cloud`` fixture) and a replica, writes what it started to
$SHIP_LIFETIME_REPORT and waits to be killed. Not collected otherwise (not a test_*.py name).

With $SHIP_LIFETIME_CONTAINER_CONFIG (the config blob of an image the container engine has),
the replica is a container of that image instead of a process."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from conftest import build_process_image, push_image
from ship import oci

NET = {"awsvpcConfiguration": {"subnets": ["subnet-12345678"], "securityGroups": ["sg-12345678"]}}


@pytest.fixture
def teardown():
    """With $SHIP_LIFETIME_SLOW_TEARDOWN, a teardown that takes a while (as `inv destroy` does), run
    before the local cloud's; it says when it begins."""
    yield
    if os.environ.get("SHIP_LIFETIME_SLOW_TEARDOWN"):
        Path(os.environ["SHIP_LIFETIME_REPORT"] + ".teardown").touch()
        time.sleep(60)


def test_start_a_local_cloud_and_a_replica_then_wait_to_be_killed(cloud, teardown):
    ecs, ecr, logs = cloud.client("ecs"), cloud.client("ecr"), cloud.client("logs")
    ecr.create_repository(repositoryName="demo")
    container = {"name": "app", "essential": True, "memory": 256, "portMappings": [{"containerPort": 8000}],
                 "logConfiguration": {"logDriver": "awslogs", "options": {
                     "awslogs-group": "/ecs/life", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "l"}}}
    config_file = os.environ.get("SHIP_LIFETIME_CONTAINER_CONFIG")
    if config_file:
        container["image"] = push_image(ecr, "demo", "c", Path(config_file).read_bytes(), b"unused layer",
                                        config_media_type=oci.OCI_CONFIG_MEDIA_TYPE)
        # a server that ends on SIGTERM, as a replica's server does (the container's first process
        # gets no default action for it: `python -m http.server` would wait for the SIGKILL)
        container["command"] = ["python3", "-c", "import http.server, signal, sys; "
                                "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); "
                                "http.server.test(http.server.SimpleHTTPRequestHandler, port=8000)"]
    else:
        container["image"] = push_image(ecr, "demo", "v1", *build_process_image("v1"))
    logs.create_log_group(logGroupName="/ecs/life")
    ecs.create_cluster(clusterName="life")
    td = ecs.register_task_definition(family="life", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                      cpu="256", memory="512", containerDefinitions=[container])[
        "taskDefinition"]["taskDefinitionArn"]
    arn = ecs.run_task(cluster="life", taskDefinition=td, launchType="FARGATE", networkConfiguration=NET,
                       startedBy="replica")["tasks"][0]["taskArn"]
    deadline = time.monotonic() + 120
    while True:
        [task] = ecs.describe_tasks(cluster="life", tasks=[arn])["tasks"]
        assert task["lastStatus"] != "STOPPED", task
        if task["lastStatus"] == "RUNNING":
            break
        assert time.monotonic() < deadline, task
        time.sleep(0.2)
    report = {"pytest": os.getpid(), "serve": cloud.info["pid"], "state": str(cloud.state_dir),
              "ports": [int(cloud.endpoint.rsplit(":", 1)[1]), task["containers"][0]["networkBindings"][0]["hostPort"]]}
    tmp = Path(os.environ["SHIP_LIFETIME_REPORT"] + ".tmp")
    tmp.write_text(json.dumps(report))
    tmp.rename(os.environ["SHIP_LIFETIME_REPORT"])
    threading.Event().wait()                   # until the session is killed
