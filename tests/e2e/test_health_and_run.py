"""End to end, on the shared stack: container health checks and one-off tasks.

* a revision whose container healthCheck always fails is rolled back by the
  circuit breaker while the running version answers every request;
* `inv run --env=local -- CMD` runs CMD as an ECS task of the environment's task
  definition, prints its output and exits with its exit code.

Both pass in the process runtime and (SHIP_LOCAL_RUNTIME=container) in Podman.
"""

from __future__ import annotations

import re
import time

import pytest
from helpers import Traffic

from ship.domain import TaskDefinition

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("deployed")]

CLUSTER = SERVICE = "hello-local"


def _service(stack) -> dict:
    return stack.client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]


def test_a_failing_container_health_check_is_rolled_back_by_the_circuit_breaker(stack):
    ecs = stack.client("ecs")
    before = _service(stack)
    current = TaskDefinition.from_describe(
        ecs.describe_task_definition(taskDefinition=before["taskDefinition"], include=["TAGS"]))
    kwargs = current.register_kwargs(current.image())
    for c in kwargs["containerDefinitions"]:
        c["healthCheck"] = {"command": ["CMD-SHELL", "exit 1"], "interval": 5, "timeout": 2, "retries": 1}
    bad = ecs.register_task_definition(**kwargs)["taskDefinition"]["taskDefinitionArn"]
    try:
        with Traffic(lambda: stack.get("/", timeout=10)) as load:
            ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=bad)
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline:
                svc = _service(stack)
                failed = [d for d in svc["deployments"] if d.get("rolloutState") == "FAILED"]
                if failed and svc["taskDefinition"] == before["taskDefinition"]:
                    break
                time.sleep(1)
            else:
                raise AssertionError(f"no circuit-breaker rollback within 240 s: {svc['deployments']}")
            ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=[SERVICE],
                                                   WaiterConfig={"Delay": 2, "MaxAttempts": 90})
        assert failed[0]["taskDefinition"] == bad and failed[0]["failedTasks"] >= 3
        assert load.failures == [] and sum(load.versions.values()) > 20
        assert len(load.versions) == 1, load.versions
        stopped = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE, desiredStatus="STOPPED")["taskArns"]
        bad_tasks = [t for t in ecs.describe_tasks(cluster=CLUSTER, tasks=stopped)["tasks"]
                     if t["taskDefinitionArn"] == bad]
        unhealthy = [t for t in bad_tasks if t["stoppedReason"] == "Task failed container health checks"]
        assert len(unhealthy) >= 3 and {t["healthStatus"] for t in unhealthy} == {"UNHEALTHY"}
        # the rest were still starting when the rollback replaced them
        assert {t["stoppedReason"] for t in bad_tasks if t not in unhealthy} <= {
            f"Scaling activity initiated by (deployment {svc['deployments'][0]['id']})"}
        svc = _service(stack)
        assert svc["runningCount"] == 2 and svc["taskDefinition"] == before["taskDefinition"]
        events = " ".join(e["message"] for e in svc["events"])
        assert "failed container health checks" in events and "rolling back to deployment" in events
    finally:
        ecs.deregister_task_definition(taskDefinition=bad)


def test_inv_run_runs_a_one_off_task_and_exits_with_its_code(stack):
    code = "import os, sys; print('one-off says hi from', os.environ.get('AWS_EXECUTION_ENV')); sys.exit(7)"
    result = stack.inv("run", "--env=local", "--", "python", "-c", code, check=False, timeout=300)
    assert result.returncode == 7, result.stdout + result.stderr
    assert "one-off says hi from AWS_ECS_FARGATE" in result.stdout
    task_id = re.search(r"as task ([0-9a-f]{32})", result.stdout).group(1)
    ecs = stack.client("ecs")
    [task] = ecs.describe_tasks(cluster=CLUSTER, tasks=[task_id])["tasks"]
    assert task["lastStatus"] == "STOPPED" and task["stopCode"] == "EssentialContainerExited"
    assert task["containers"][0]["exitCode"] == 7
    assert task["startedBy"] == "ship-run" and task["group"] == f"ship-run:{SERVICE}"
    assert task["overrides"]["containerOverrides"][0]["command"] == ["python", "-c", code]
    assert task["taskDefinitionArn"] == _service(stack)["taskDefinition"]
    # The service is untouched: still its two replicas.
    assert _service(stack)["runningCount"] == 2

    ok = stack.inv("run", "--env=local", "--", "python", "-c", "print('fine')", check=False, timeout=300)
    assert ok.returncode == 0 and "fine" in ok.stdout, ok.stdout + ok.stderr
    none = stack.inv("run", "--env=local", check=False)
    assert none.returncode == 1 and "say what to run after --" in none.stderr
    assert len(none.stderr.strip().splitlines()) == 1
