"""Task lifecycle under injected failures: whatever step of a task's life fails, the
task ends STOPPED with a stoppedReason naming the cause, no worker dies silently,
and the service gets back to its desired count.

The data plane runs in-process on moto (mock_aws) with a runner that starts no
process (``FakeRunner``): the failures are injected into the lifecycle's steps,
which is what is under test. The real runtimes are exercised by test_dataplane,
test_tasks and the e2e suite.
"""

from __future__ import annotations

import pickle
import threading

import boto3
import pytest
from moto import mock_aws

from conftest import build_process_image, push_image
from helpers import wait_until
from ship import oci
from ship.localcloud import emulator
from ship.localcloud.emulator import ecs as ecs_api
from ship.localcloud.fargate import lifecycle
from ship.localcloud.fargate.dataplane import ORPHAN_REASON, DataPlane
from ship.localcloud.runtime.base import TaskHandle

HEALTH_CHECK = {"command": ["CMD-SHELL", "exit 0"], "interval": 5, "timeout": 2, "retries": 1}


class FakeRunner:
    """The Runner protocol without processes: a task runs until stopped or told to exit."""

    def __init__(self):
        self.exits: dict[str, int] = {}
        self.started: list[str] = []
        self.health_code = 0
        self._mu = threading.Lock()

    def can_run(self, image):
        return True

    def start(self, spec, on_output):
        on_output(f"fake task {spec.task_id} started")
        with self._mu:
            self.started.append(spec.task_id)
        return TaskHandle(spec.task_id, "127.0.0.1", spec.port, pid=4242)

    def poll(self, handle):
        with self._mu:
            return self.exits.get(handle.task_id)

    def stop(self, handle, timeout):
        with self._mu:
            return self.exits.setdefault(handle.task_id, -15)

    def exec(self, handle, argv, timeout):
        return self.health_code


def _wait(pred, timeout, what):
    """``wait_until`` with ``pred`` read under the emulator's lock (the data plane's threads write what it reads)."""
    def locked():
        with emulator.LOCK:
            return pred()
    return wait_until(locked, timeout, what)


@pytest.fixture
def world(tmp_path, monkeypatch):
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        emulator.install(oci.BlobStore(tmp_path / "state" / "blobs"))
        clients = {n: boto3.client(n, region_name="us-east-1") for n in ("ecs", "ecr", "logs")}
        clients["ecr"].create_repository(repositoryName="demo")
        config, layer = build_process_image("v1")
        image = push_image(clients["ecr"], "demo", "v1", config, layer)
        clients["logs"].create_log_group(logGroupName="/ecs/demo")
        clients["ecs"].create_cluster(clusterName="c")
        runner = FakeRunner()
        plane = DataPlane(tmp_path / "state", endpoint="http://127.0.0.1:1", runners=[runner])
        monkeypatch.setattr(plane, "settle", 0.0)
        monkeypatch.setattr(lifecycle, "WATCH_TICK", 0.05)
        yield clients, image, runner, plane
        plane.stop()


def _task_definition(ecs, image, **container):
    cdef = {"name": "app", "image": image, "memory": 512, "essential": True, "stopTimeout": 2,
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/demo", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "web"}}}
    cdef.update(container)
    return ecs.register_task_definition(family="demo", containerDefinitions=[cdef])["taskDefinition"][
        "taskDefinitionArn"]


def _service_tasks():
    [svc] = [s for s in ecs_api.iter_services() if s.name == "web"]
    return svc, svc.tasks()


def _steady():
    svc, tasks = _service_tasks()
    running = [t for t in tasks if t.last_status == "RUNNING" and t.desired_status == "RUNNING"]
    dep = svc.deployments[0]
    return len(running) == 2 and len(svc.deployments) == 1 and dep["rolloutState"] == "COMPLETED"


START_STEPS = ["open_log", "resolve_image", "choose_runner", "check_log_group", "start_container"]
RUNNING_STEPS = ["register_targets", "poll", "health_check"]
STOP_STEPS = ["deregister_targets", "stop_container", "flush_logs"]


def _inject(monkeypatch, step: str, times: int = 1) -> list:
    """Make ``Worker.<step>`` raise the first ``times`` calls."""
    calls = []
    original = getattr(lifecycle.Worker, step)

    def failing(self, *args):
        calls.append(self.t.id)
        if len(calls) <= times:
            raise RuntimeError(f"injected failure in {step}")
        return original(self, *args)

    monkeypatch.setattr(lifecycle.Worker, step, failing)
    return calls


@pytest.mark.parametrize("step", START_STEPS + RUNNING_STEPS)
def test_a_failure_at_any_step_stops_the_task_with_its_cause_and_the_service_recovers(world, monkeypatch, step):
    clients, image, runner, plane = world
    td = _task_definition(clients["ecs"], image, **({"healthCheck": HEALTH_CHECK} if step == "health_check" else {}))
    calls = _inject(monkeypatch, step)
    clients["ecs"].create_service(cluster="c", serviceName="web", taskDefinition=td, desiredCount=2,
                                  launchType="FARGATE")
    plane.start()
    failed = _wait(lambda: [t for t in _service_tasks()[1] if t.last_status == "STOPPED"], 30, "the failed task")
    assert calls and failed[0].id == calls[0]
    t = failed[0]
    assert f"injected failure in {step}" in t.stopped_reason
    if step in START_STEPS:
        assert t.stop_code == "TaskFailedToStart"
        assert step.replace("_", " ") in t.stopped_reason or step == "choose_runner"
    assert t.stopped_at is not None and all(c["lastStatus"] == "STOPPED" for c in t.containers)
    _wait(_steady, 60, "the service back at 2 RUNNING tasks, deployment COMPLETED")
    assert not any(th.name.startswith("task-") and not th.is_alive() for th in threading.enumerate())


@pytest.mark.parametrize("step", STOP_STEPS)
def test_a_failure_while_stopping_still_ends_stopped(world, monkeypatch, step):
    clients, image, runner, plane = world
    td = _task_definition(clients["ecs"], image)
    clients["ecs"].create_service(cluster="c", serviceName="web", taskDefinition=td, desiredCount=2,
                                  launchType="FARGATE")
    plane.start()
    _wait(_steady, 30, "a steady service")
    _inject(monkeypatch, step)
    victim = _service_tasks()[1][0]
    clients["ecs"].stop_task(cluster="c", task=victim.task_arn, reason="operator says so")
    _wait(lambda: victim.last_status == "STOPPED", 30, "the stopped task")
    assert victim.stopped_reason == "operator says so" and victim.stop_code == "UserInitiated"
    assert f"injected failure in {step}" in victim.containers[0]["reason"]
    _wait(_steady, 30, "a replacement")


def test_an_essential_container_that_exits_is_replaced(world):
    clients, image, runner, plane = world
    td = _task_definition(clients["ecs"], image)
    clients["ecs"].create_service(cluster="c", serviceName="web", taskDefinition=td, desiredCount=2,
                                  launchType="FARGATE")
    plane.start()
    _wait(_steady, 30, "a steady service")
    victim = _service_tasks()[1][0]
    runner.exits[victim.id] = 3
    _wait(lambda: victim.last_status == "STOPPED", 30, "the exited task")
    assert victim.stop_code == "EssentialContainerExited"
    assert victim.stopped_reason == "Essential container in task exited"
    assert victim.containers[0]["exitCode"] == 3
    _wait(_steady, 30, "a replacement")


def test_container_health_check_failures_are_replaced_and_trip_the_circuit_breaker(world):
    clients, image, runner, plane = world
    good = _task_definition(clients["ecs"], image, healthCheck=HEALTH_CHECK)
    bad = _task_definition(clients["ecs"], image, healthCheck=dict(HEALTH_CHECK, command=["CMD-SHELL", "exit 1"]))
    clients["ecs"].create_service(
        cluster="c", serviceName="web", taskDefinition=good, desiredCount=2, launchType="FARGATE",
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    plane.start()
    _wait(_steady, 30, "a steady service on the good revision")
    assert {t.health_status for t in _service_tasks()[1] if t.last_status == "RUNNING"} == {"HEALTHY"}
    # The fake runner answers every exec with this code: from now on, checks fail.
    runner.health_code = 1
    clients["ecs"].update_service(cluster="c", service="web", taskDefinition=bad)
    failed = _wait(lambda: [d for d in _service_tasks()[0].deployments if d.get("rolloutState") == "FAILED"],
                   120, "the circuit breaker")
    assert failed[0]["taskDefinition"] == bad and failed[0]["failedTasks"] >= 3
    unhealthy = [t for t in _service_tasks()[1] if t.stopped_reason == "Task failed container health checks"]
    assert unhealthy and all(t.health_status == "UNHEALTHY" for t in unhealthy)


def test_tasks_restored_from_a_saved_state_end_stopped_and_are_replaced(world):
    clients, image, runner, plane = world
    td = _task_definition(clients["ecs"], image)
    clients["ecs"].create_service(cluster="c", serviceName="web", taskDefinition=td, desiredCount=2,
                                  launchType="FARGATE")
    # Tasks created by an earlier run of the local cloud, as a restored snapshot holds them.
    with emulator.LOCK:
        [svc] = [s for s in ecs_api.iter_services() if s.name == "web"]
        restored = [pickle.loads(pickle.dumps(svc.new_task(svc.deployments[0]))) for _ in range(2)]
        for t in svc.tasks():
            ecs_api.forget_task(t)
        for t in restored:
            t.process = "an-earlier-run"
            t.set_status("RUNNING")
            svc._backend.tasks["c"][t.task_arn] = t
    plane.start()
    _wait(_steady, 30, "fresh tasks")
    for t in restored:
        assert t.last_status == "STOPPED" and t.stopped_reason == ORPHAN_REASON
    assert not {t.id for t in restored} & set(runner.started)


def test_run_task_walks_through_its_statuses_and_keeps_its_exit_code(world):
    clients, image, runner, plane = world
    td = _task_definition(clients["ecs"], image)
    plane.start()
    [task] = clients["ecs"].run_task(cluster="c", taskDefinition=td, launchType="FARGATE", startedBy="me",
                                     group="jobs", overrides={"containerOverrides": [
                                         {"name": "app", "command": ["migrate"]}]})["tasks"]
    assert task["lastStatus"] == "PROVISIONING" and task["startedBy"] == "me" and task["group"] == "jobs"
    tid = task["taskArn"].rsplit("/", 1)[1]
    _wait(lambda: tid in runner.started, 10, "the task started")
    assert plane.runs[tid].container["command"] == ["migrate"]
    runner.exits[tid] = 0
    clients["ecs"].get_waiter("tasks_stopped").wait(cluster="c", tasks=[task["taskArn"]],
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    [done] = clients["ecs"].describe_tasks(cluster="c", tasks=[task["taskArn"]])["tasks"]
    assert done["stopCode"] == "EssentialContainerExited" and done["containers"][0]["exitCode"] == 0
    stream = f"web/app/{tid}"
    events = clients["logs"].get_log_events(logGroupName="/ecs/demo", logStreamName=stream)["events"]
    assert any(f"fake task {tid} started" in e["message"] for e in events)


def test_a_service_whose_task_definition_is_gone_says_so_once(world):
    clients, image, runner, plane = world
    td = _task_definition(clients["ecs"], image)
    clients["ecs"].create_service(cluster="c", serviceName="web", taskDefinition=td, desiredCount=2,
                                  launchType="FARGATE")
    clients["ecs"].deregister_task_definition(taskDefinition=td)
    clients["ecs"].delete_task_definitions(taskDefinitions=[td])
    for _ in range(3):
        plane.reconcile()
    events = [e["message"] for e in clients["ecs"].describe_services(cluster="c", services=["web"])[
        "services"][0]["events"]]
    unable = [m for m in events if "was unable to place a task" in m]
    assert len(unable) == 1 and td in unable[0]
    assert runner.started == []
