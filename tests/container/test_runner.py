"""The local cloud's container runner against the real engine."""

from __future__ import annotations

import time

import pytest
from container_support import SESSION, wait_for
from ship.net import free_port

from ship import oci
from ship.localcloud.runtime.container import ContainerRunner, container_name, remove_leftovers
from ship.localcloud.runtime.images import ResolvedImage
from ship.localcloud.runtime.base import TaskSpec

pytestmark = pytest.mark.container


def _spec(engine, image_tag, task_id, **container):
    image = ResolvedImage(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/hello:{SESSION}", "sha256:" + "0" * 64,
                          oci.OCI_CONFIG_MEDIA_TYPE, {"config": {"ExposedPorts": {"5000/tcp": {}}}})
    image.config_digest = engine.image_id(image_tag)   # what the ECR manifest's config descriptor names
    definition = {"name": "app", "portMappings": [{"containerPort": 5000}], "stopTimeout": 10, **container}
    return TaskSpec(task_id, f"arn:aws:ecs:us-east-1:123456789012:task/c/{task_id}", definition, image, free_port(),
                    {"AWS_REGION": "us-east-1"})


def test_runner_starts_serves_and_stops_a_task(engine, runtime_image, tmp_path):
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path)
    spec = _spec(engine, runtime_image, f"task{SESSION}",
                 environment=[{"name": "GREETING", "value": "from the runner"}])
    lines: list[str] = []
    handle = runner.start(spec, lines.append)
    try:
        assert (handle.host, handle.port) == ("127.0.0.1", spec.port)
        _, body = wait_for(f"http://127.0.0.1:{spec.port}/")
        assert body["message"] == "from the runner"
        assert runner.poll(handle) is None
        assert engine.containers(label=f"ship.localcloud=inst-{SESSION}")
        assert runner.stop(handle, 10) == 0
        assert runner.poll(handle) == 0
        assert any("Booting worker" in line for line in lines), lines[-5:]
        assert engine.container_state(container_name(spec.task_id)) is None, "stopped tasks are removed"
    finally:
        engine.remove_container(container_name(spec.task_id))


def test_runner_reports_the_exit_code_of_a_task_that_exits(engine, runtime_image, tmp_path):
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path)
    spec = _spec(engine, runtime_image, f"exit{SESSION}", entryPoint=["python"],
                 command=["-c", "print('bye'); raise SystemExit(3)"])
    lines: list[str] = []
    handle = runner.start(spec, lines.append)
    try:
        deadline = time.monotonic() + 30
        while runner.poll(handle) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runner.poll(handle) == 3
        assert runner.stop(handle, 5) == 3
        assert "bye" in lines
    finally:
        engine.remove_container(container_name(spec.task_id))


def test_leftovers_are_found_by_label(engine, runtime_image, tmp_path):
    crashed = ContainerRunner(engine, f"old-{SESSION}", tmp_path)
    spec = _spec(engine, runtime_image, f"left{SESSION}")
    crashed.start(spec, lambda line: None)
    try:
        assert remove_leftovers(engine, tmp_path, keep_instance=f"new-{SESSION}") == 1
        assert engine.container_state(container_name(spec.task_id)) is None
    finally:
        engine.remove_container(container_name(spec.task_id))


def test_an_image_the_engine_lacks_is_a_pull_error(engine, runtime_image, tmp_path):
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path)
    spec = _spec(engine, runtime_image, f"miss{SESSION}")
    spec.image.config_digest = "sha256:" + "e" * 64
    try:
        runner.start(spec, lambda line: None)
    except Exception as exc:
        assert str(exc).startswith("CannotPullContainerError:") and "not in" in str(exc)
    else:
        raise AssertionError("start should fail for an image the engine does not have")
