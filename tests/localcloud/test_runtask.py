"""RunTask, StopTask and container health checks on a real local cloud: a real serve
process, real task processes (the process runtime), the AWS API through boto3."""

from __future__ import annotations

import time

import pytest

from conftest import Cloud, _pids_under, build_process_image, push_image
from helpers import wait_until
from ship.net import free_port

# one worker runs this module when the suite runs on several (pytest-xdist, --dist loadgroup): its
# local cloud is made once
pytestmark = pytest.mark.xdist_group("runtask")

NET = {"awsvpcConfiguration": {"subnets": ["subnet-12345678"], "securityGroups": ["sg-12345678"]}}


@pytest.fixture(scope="module")
def jobs(tmp_path_factory):
    """One local cloud for the module (a cloud and an image cost seconds each): (ecs, logs, image)."""
    from ship.localcloud import control

    port, state = free_port(), tmp_path_factory.mktemp("jobs") / "state"
    control.up(state, port=port, timeout=60)
    cloud = Cloud(f"http://127.0.0.1:{port}", state, {})
    try:
        ecs, ecr, logs = cloud.client("ecs"), cloud.client("ecr"), cloud.client("logs")
        ecr.create_repository(repositoryName="demo")
        config, layer = build_process_image("v1")
        image = push_image(ecr, "demo", "v1", config, layer)
        logs.create_log_group(logGroupName="/ecs/jobs")
        ecs.create_cluster(clusterName="jobs")
        yield ecs, logs, image
    finally:
        assert control.down(state, timeout=60)
        assert _pids_under(state) == []


def _register(ecs, image, **container):
    cdef = {"name": "app", "image": image, "memory": 256, "essential": True, "stopTimeout": 3,
            "environment": [{"name": "FROM_TD", "value": "td"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/jobs", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "job"}}}
    cdef.update(container)
    return ecs.register_task_definition(family="job", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                        cpu="256", memory="512", containerDefinitions=[cdef])[
        "taskDefinition"]["taskDefinitionArn"]


def _run(ecs, td, command, **kw):
    return ecs.run_task(cluster="jobs", taskDefinition=td, launchType="FARGATE", networkConfiguration=NET,
                        overrides={"containerOverrides": [{"name": "app", "command": command,
                                                           "environment": [{"name": "FROM_RUN", "value": "run"}]}]},
                        **kw)["tasks"][0]


def _wait_status(ecs, arn, wanted, timeout=60):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [t] = ecs.describe_tasks(cluster="jobs", tasks=[arn])["tasks"]
        if not seen or seen[-1] != t["lastStatus"]:
            seen.append(t["lastStatus"])
        if t["lastStatus"] == wanted:
            return t, seen
        time.sleep(0.1)
    raise AssertionError(f"task never reached {wanted}: {seen}")


def test_run_task_runs_the_command_and_keeps_its_exit_code_and_logs(jobs):
    ecs, logs, image = jobs
    td = _register(ecs, image)
    code = "import os, sys; print('job', os.environ['FROM_TD'], os.environ['FROM_RUN']); sys.exit(3)"
    task = _run(ecs, td, ["python", "-c", code], startedBy="nightly", group="jobs:report")
    assert task["lastStatus"] == "PROVISIONING"
    ecs.get_waiter("tasks_stopped").wait(cluster="jobs", tasks=[task["taskArn"]],
                                         WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    [done] = ecs.describe_tasks(cluster="jobs", tasks=[task["taskArn"]])["tasks"]
    assert done["stopCode"] == "EssentialContainerExited"
    assert done["stoppedReason"] == "Essential container in task exited"
    assert done["containers"][0]["exitCode"] == 3 and done["containers"][0]["lastStatus"] == "STOPPED"
    assert done["startedBy"] == "nightly" and done["group"] == "jobs:report"
    for key in ("pullStartedAt", "pullStoppedAt", "startedAt", "stoppingAt", "stoppedAt", "executionStoppedAt"):
        assert done.get(key), key
    stream = f"job/app/{task['taskArn'].rsplit('/', 1)[1]}"
    events = logs.get_log_events(logGroupName="/ecs/jobs", logStreamName=stream, startFromHead=True)["events"]
    assert [e["message"] for e in events] == ["job td run"]


def test_stop_task_stops_a_running_task_with_sigterm(jobs):
    ecs, logs, image = jobs
    td = _register(ecs, image)
    code = ("import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: (print('bye', flush=True),"
            " sys.exit(0))); print('up', flush=True); time.sleep(600)")
    task = _run(ecs, td, ["python", "-c", code])
    running, seen = _wait_status(ecs, task["taskArn"], "RUNNING")
    assert seen[0] in ("PROVISIONING", "PENDING") and running["startedAt"]
    stream = f"job/app/{task['taskArn'].rsplit('/', 1)[1]}"

    def said(*lines: str) -> bool:
        try:
            events = logs.get_log_events(logGroupName="/ecs/jobs", logStreamName=stream, startFromHead=True)
        except logs.exceptions.ResourceNotFoundException:
            return False
        return [e["message"] for e in events["events"]] == list(lines)

    # RUNNING is the process started; "up" is its SIGTERM handler installed (SIGTERM before it: exit 143)
    wait_until(lambda: said("up"), 60, "the task's first log line")
    stopped = ecs.stop_task(cluster="jobs", task=task["taskArn"], reason="no longer needed")["task"]
    assert stopped["desiredStatus"] == "STOPPED" and stopped["lastStatus"] == "RUNNING"
    done, _ = _wait_status(ecs, task["taskArn"], "STOPPED")
    assert done["stopCode"] == "UserInitiated" and done["stoppedReason"] == "no longer needed"
    assert done["containers"][0]["exitCode"] == 0
    assert said("up", "bye")


def test_container_health_checks_run_inside_the_task(jobs):
    ecs, logs, image = jobs
    check = {"interval": 5, "timeout": 2, "retries": 1}
    good = _register(ecs, image, healthCheck=dict(check, command=["CMD-SHELL", "test \"$FROM_TD\" = td"]))
    bad = _register(ecs, image, healthCheck=dict(check, command=["CMD", "false"]))
    sleeper = ["python", "-c", "import time; time.sleep(600)"]
    tasks = {name: _run(ecs, td, sleeper)["taskArn"] for name, td in (("good", good), ("bad", bad))}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        health = {name: ecs.describe_tasks(cluster="jobs", tasks=[arn])["tasks"][0]["healthStatus"]
                  for name, arn in tasks.items()}
        if health == {"good": "HEALTHY", "bad": "UNHEALTHY"}:
            break
        time.sleep(0.5)
    assert health == {"good": "HEALTHY", "bad": "UNHEALTHY"}
    # A task outside a service is not replaced or stopped for being unhealthy (ECS does the same).
    [bad_task] = ecs.describe_tasks(cluster="jobs", tasks=[tasks["bad"]])["tasks"]
    assert bad_task["lastStatus"] == "RUNNING" and bad_task["containers"][0]["healthStatus"] == "UNHEALTHY"
    for arn in tasks.values():
        ecs.stop_task(cluster="jobs", task=arn)
    for arn in tasks.values():
        _wait_status(ecs, arn, "STOPPED")
