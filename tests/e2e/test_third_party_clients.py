"""Third-party clients against the local cloud: the AWS CLI v1 (pinned in the dev extra), unchanged,
pointed at it with AWS_ENDPOINT_URL. Every step is checked against what the load balancer URL
serves, not only against what the API answers. The shared stack is left as it was found: the same
task definition, 2 replicas.

CI runs this file in the process runtime only (``ONE_RUNTIME`` in noxfile.py): its subject is not how
replicas run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers import Traffic

pytestmark = [pytest.mark.e2e]

AWS = str(Path(sys.executable).parent / "aws")
CLUSTER = SERVICE = "hello-local"


def aws(stack, *args: str, ok=(0,), timeout: float = 900, raw: bool = False):
    env = dict(stack.env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{stack.port}", AWS_DEFAULT_OUTPUT="json",
               AWS_PAGER="")
    started = time.monotonic()
    result = subprocess.run([AWS, *args], env=env, capture_output=True, text=True, timeout=timeout)
    with open(stack.log, "a") as fh:
        fh.write(f"\n$ aws {' '.join(args)}  ({time.monotonic() - started:.1f}s, exit {result.returncode})\n"
                 f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    assert result.returncode in ok, f"aws {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}"
    if raw:
        return result
    return json.loads(result.stdout) if result.stdout.strip().startswith(("{", "[")) else result.stdout


def wait_stable(stack) -> None:
    aws(stack, "ecs", "wait", "services-stable", "--cluster", CLUSTER, "--services", SERVICE)


def served(stack, n: int = 20) -> list[tuple[int, dict]]:
    return [stack.get("/") for _ in range(n)]


def instances(answers) -> set[str]:
    # the task id (process runtime) or "<task id>:<worker pid>" (containers)
    return {body["instance"].split(":")[0] for status, body in answers if status == 200}


def until(what: str, check, timeout: float = 120, every: float = 1.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def service(stack) -> dict:
    return aws(stack, "ecs", "describe-services", "--cluster", CLUSTER, "--services", SERVICE)["services"][0]


def running_task_ids(stack) -> set[str]:
    arns = aws(stack, "ecs", "list-tasks", "--cluster", CLUSTER, "--service-name", SERVICE)["taskArns"]
    return {a.rsplit("/", 1)[1] for a in arns}


def test_aws_cli_is_the_pinned_v1(deployed):
    out = subprocess.run([AWS, "--version"], capture_output=True, text=True, check=True)
    assert (out.stdout + out.stderr).startswith("aws-cli/1.")


def test_describe_and_list_calls(deployed):
    assert f"cluster/{CLUSTER}" in " ".join(aws(deployed, "ecs", "list-clusters")["clusterArns"])
    svc = service(deployed)
    assert (svc["desiredCount"], svc["runningCount"], svc["status"]) == (2, 2, "ACTIVE")
    assert running_task_ids(deployed) == instances(served(deployed))
    tg = svc["loadBalancers"][0]["targetGroupArn"]
    health = aws(deployed, "elbv2", "describe-target-health", "--target-group-arn", tg)
    assert sorted(t["TargetHealth"]["State"] for t in health["TargetHealthDescriptions"]) == ["healthy", "healthy"]
    td = aws(deployed, "ecs", "describe-task-definition", "--task-definition", svc["taskDefinition"])
    repo = td["taskDefinition"]["containerDefinitions"][0]["image"].split("/", 1)[1].split("@")[0]
    names = [r["repositoryName"] for r in aws(deployed, "ecr", "describe-repositories")["repositories"]]
    assert repo in names
    groups = [g["logGroupName"] for g in aws(deployed, "logs", "describe-log-groups")["logGroups"]]
    assert td["taskDefinition"]["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"] in groups
    wait_stable(deployed)


def test_rollouts_and_scaling_with_the_cli(deployed):
    original = service(deployed)["taskDefinition"]
    before = instances(served(deployed))
    assert len(before) == 2
    mine = None
    try:
        # a forced new deployment replaces both tasks
        aws(deployed, "ecs", "update-service", "--cluster", CLUSTER, "--service", SERVICE, "--force-new-deployment")
        wait_stable(deployed)
        after = instances(served(deployed))
        assert len(after) == 2 and not (after & before), (before, after)

        for count in (4, 0, 2):
            aws(deployed, "ecs", "update-service", "--cluster", CLUSTER, "--service", SERVICE,
                "--desired-count", str(count))
            wait_stable(deployed)
            svc = service(deployed)
            assert (svc["desiredCount"], svc["runningCount"]) == (count, count)
            if count == 0:
                # no targets: the load balancer answers 503 (as an ALB whose target group is empty)
                until("the load balancer to have no target", lambda: all(
                    status == 503 for status, _ in served(deployed, 5)), timeout=30)
            else:
                seen = until(f"{count} instances behind the load balancer",
                             lambda: (lambda s: s if len(s) == count else None)(instances(served(deployed, 40))),
                             timeout=30)
                assert seen == running_task_ids(deployed)

        # a changed revision (one more environment variable), registered and rolled out with the CLI
        td = aws(deployed, "ecs", "describe-task-definition", "--task-definition", original)["taskDefinition"]
        greeting = f"Hello from the AWS CLI {uuid.uuid4().hex[:8]}"
        spec = {k: td[k] for k in ("family", "containerDefinitions", "cpu", "memory", "networkMode",
                                   "requiresCompatibilities", "executionRoleArn", "taskRoleArn") if td.get(k)}
        env = [e for e in spec["containerDefinitions"][0].get("environment", []) if e["name"] != "GREETING"]
        spec["containerDefinitions"][0]["environment"] = env + [{"name": "GREETING", "value": greeting}]
        mine = aws(deployed, "ecs", "register-task-definition", "--cli-input-json",
                   json.dumps(spec))["taskDefinition"]["taskDefinitionArn"]
        aws(deployed, "ecs", "update-service", "--cluster", CLUSTER, "--service", SERVICE, "--task-definition", mine)
        wait_stable(deployed)
        answers = served(deployed)
        assert {body.get("message") for _, body in answers} == {greeting}
        assert len(instances(answers)) == 2
    finally:
        aws(deployed, "ecs", "update-service", "--cluster", CLUSTER, "--service", SERVICE,
            "--task-definition", original, "--desired-count", "2")
        wait_stable(deployed)
        if mine:
            aws(deployed, "ecs", "deregister-task-definition", "--task-definition", mine)
    svc = service(deployed)
    assert (svc["taskDefinition"], svc["desiredCount"], svc["runningCount"]) == (original, 2, 2)
    answers = served(deployed)
    assert len(instances(answers)) == 2 and len({body.get("message") for _, body in answers}) == 1


def test_filter_log_events_with_a_json_pattern(deployed):
    path = f"/cli-{uuid.uuid4().hex[:10]}"
    assert deployed.get(path)[0] == 404
    assert deployed.get("/")[0] == 200
    td = aws(deployed, "ecs", "describe-task-definition", "--task-definition", service(deployed)["taskDefinition"])
    group = td["taskDefinition"]["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"]

    def found(pattern: str) -> list[dict]:
        return aws(deployed, "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern",
                   pattern)["events"]

    events = until("the request's log lines", lambda: found(f'{{ $.path = "{path}" && $.status = 404 }}'),
                   timeout=60)
    for event in events:
        line = json.loads(event["message"])
        assert line["path"] == path and line["status"] == 404
    assert found(f'{{ $.path = "{path}" && $.status = 200 }}') == []
    assert found(f'{{ $.path = "{path}" && $.status >= 400 && $.status < 500 }}') == events
    bad = aws(deployed, "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern",
              "{ $.status = ", ok=(254, 255), raw=True)
    assert "InvalidParameterException" in bad.stderr and "Invalid filter pattern" in bad.stderr
    # and through the project's own menu
    out = deployed.inv("logs", "--env=local", "--since=10m", f"--filter={{ $.path = \"{path}\" }}").stdout
    assert out.strip() and all(path in line for line in out.strip().splitlines())


def test_ecr_put_image_retag(deployed):
    image = aws(deployed, "ecs", "describe-task-definition", "--task-definition", service(deployed)[
        "taskDefinition"])["taskDefinition"]["containerDefinitions"][0]["image"]
    repo, digest = image.split("/", 1)[1].split("@")
    got = aws(deployed, "ecr", "batch-get-image", "--repository-name", repo, "--image-ids",
              f"imageDigest={digest}")["images"][0]
    tag = f"cli-{uuid.uuid4().hex[:8]}"
    put = aws(deployed, "ecr", "put-image", "--repository-name", repo, "--image-tag", tag, "--image-manifest",
              got["imageManifest"], "--image-manifest-media-type", got["imageManifestMediaType"])
    try:
        assert put["image"]["imageId"]["imageDigest"] == digest
        detail = aws(deployed, "ecr", "describe-images", "--repository-name", repo, "--image-ids",
                     f"imageTag={tag}")["imageDetails"][0]
        assert detail["imageDigest"] == digest and tag in detail["imageTags"]
        manifest = json.loads(got["imageManifest"])
        assert detail["imageSizeInBytes"] == sum(layer["size"] for layer in manifest["layers"])
    finally:
        aws(deployed, "ecr", "batch-delete-image", "--repository-name", repo, "--image-ids", f"imageTag={tag}")
    tags = aws(deployed, "ecr", "describe-images", "--repository-name", repo, "--image-ids",
               f"imageDigest={digest}")["imageDetails"][0].get("imageTags", [])
    assert tag not in tags and tags
    # the service still runs that digest
    assert deployed.get("/")[0] == 200


def _spec(td: dict) -> dict:
    """register-task-definition input from a describe-task-definition answer."""
    return {k: td[k] for k in ("family", "containerDefinitions", "cpu", "memory", "networkMode",
                               "requiresCompatibilities", "executionRoleArn", "taskRoleArn") if td.get(k)}


def test_a_failing_health_check_revision_is_rolled_back_with_the_cli(deployed):
    """A revision whose container healthCheck always fails, rolled out with the CLI: the deployment
    circuit breaker fails it and rolls back, and the load balancer serves the running version only."""
    original = service(deployed)["taskDefinition"]
    version = {body.get("version") for _, body in served(deployed, 5)}
    assert len(version) == 1
    td = aws(deployed, "ecs", "describe-task-definition", "--task-definition", original)["taskDefinition"]
    spec = _spec(td)
    spec["containerDefinitions"][0]["healthCheck"] = {"command": ["CMD-SHELL", "exit 1"], "interval": 5,
                                                      "timeout": 2, "retries": 1}
    bad = aws(deployed, "ecs", "register-task-definition", "--cli-input-json",
              json.dumps(spec))["taskDefinition"]["taskDefinitionArn"]
    try:
        with Traffic(lambda: deployed.get("/", timeout=10), pause=0.05) as watch:
            aws(deployed, "ecs", "update-service", "--cluster", CLUSTER, "--service", SERVICE,
                "--task-definition", bad)

            def rolled_back():
                s = service(deployed)
                failed = any(d.get("rolloutState") == "FAILED" for d in s["deployments"])
                return s if failed and s["taskDefinition"] == original else None

            svc = until("the circuit breaker's rollback", rolled_back, timeout=300, every=2)
            wait_stable(deployed)
        failed = [d for d in svc["deployments"] if d.get("rolloutState") == "FAILED"]
        assert failed[0]["taskDefinition"] == bad and failed[0]["failedTasks"] >= 3
        events = " ".join(e["message"] for e in service(deployed)["events"])
        assert "failed container health checks" in events and "rolling back to deployment" in events
        stopped = aws(deployed, "ecs", "list-tasks", "--cluster", CLUSTER, "--service-name", SERVICE,
                      "--desired-status", "STOPPED")["taskArns"]
        tasks = aws(deployed, "ecs", "describe-tasks", "--cluster", CLUSTER, "--tasks", *stopped[:100])["tasks"]
        unhealthy = [t for t in tasks if t["taskDefinitionArn"] == bad
                     and t.get("stoppedReason") == "Task failed container health checks"]
        assert len(unhealthy) >= 3 and {t["healthStatus"] for t in unhealthy} == {"UNHEALTHY"}
        # the truth through the URL: the running version answered every request, before and after
        assert len(watch.seen) > 20 and {s for s, _ in watch.seen} == {200}, set(watch.seen)
        assert {v for _, v in watch.seen} == version
        assert running_task_ids(deployed) == instances(served(deployed))
    finally:
        if service(deployed)["taskDefinition"] != original:
            aws(deployed, "ecs", "update-service", "--cluster", CLUSTER, "--service", SERVICE,
                "--task-definition", original)
            wait_stable(deployed)
        aws(deployed, "ecs", "deregister-task-definition", "--task-definition", bad)
    svc = service(deployed)
    assert (svc["taskDefinition"], svc["runningCount"]) == (original, 2)


def test_run_task_and_wait_tasks_stopped_give_the_exit_code(deployed):
    svc = service(deployed)
    before = running_task_ids(deployed)
    td = aws(deployed, "ecs", "describe-task-definition", "--task-definition",
             svc["taskDefinition"])["taskDefinition"]
    container = td["containerDefinitions"][0]["name"]
    network = svc["networkConfiguration"]["awsvpcConfiguration"]
    code = "import os, sys; print('one-off from the AWS CLI', os.environ.get('AWS_EXECUTION_ENV')); sys.exit(3)"
    overrides = {"containerOverrides": [{"name": container, "command": ["python", "-c", code]}]}
    started = aws(deployed, "ecs", "run-task", "--cluster", CLUSTER, "--task-definition", svc["taskDefinition"],
                  "--launch-type", "FARGATE", "--started-by", "aws-cli-e2e",
                  "--network-configuration", json.dumps({"awsvpcConfiguration": network}),
                  "--overrides", json.dumps(overrides))
    assert started["failures"] == [] and len(started["tasks"]) == 1
    arn = started["tasks"][0]["taskArn"]
    aws(deployed, "ecs", "wait", "tasks-stopped", "--cluster", CLUSTER, "--tasks", arn, timeout=300)
    [task] = aws(deployed, "ecs", "describe-tasks", "--cluster", CLUSTER, "--tasks", arn)["tasks"]
    assert (task["lastStatus"], task["stopCode"], task["startedBy"]) == ("STOPPED", "EssentialContainerExited",
                                                                         "aws-cli-e2e")
    assert task["containers"][0]["exitCode"] == 3
    # its output went to the service's log group, under the awslogs stream prefix
    options = td["containerDefinitions"][0]["logConfiguration"]["options"]
    stream = f"{options['awslogs-stream-prefix']}/{container}/{arn.rsplit('/', 1)[1]}"
    events = until("the one-off task's log line", lambda: aws(
        deployed, "logs", "get-log-events", "--log-group-name", options["awslogs-group"],
        "--log-stream-name", stream)["events"], timeout=30)
    assert any("one-off from the AWS CLI AWS_ECS_FARGATE" in e["message"] for e in events), events
    # the service is untouched, and only its own tasks answer through the load balancer
    assert running_task_ids(deployed) == before == instances(served(deployed))


def test_describe_scaling_activities_with_the_cli(deployed):
    """A scalable target and a request-count policy registered with the CLI: with no traffic the
    scale-in alarm fires, the minimum stops it, and describe-scaling-activities reports the
    not-scaled activity (AlreadyAtMinCapacity) while the service keeps its two tasks."""
    rid = f"service/{CLUSTER}/{SERVICE}"
    dim = ["--service-namespace", "ecs", "--resource-id", rid, "--scalable-dimension", "ecs:service:DesiredCount"]
    tg = service(deployed)["loadBalancers"][0]["targetGroupArn"]
    [group] = aws(deployed, "elbv2", "describe-target-groups", "--target-group-arns", tg)["TargetGroups"]
    label = group["LoadBalancerArns"][0].split(":loadbalancer/")[1] + "/" + tg.split(":")[-1]
    aws(deployed, "application-autoscaling", "register-scalable-target", *dim, "--min-capacity", "2",
        "--max-capacity", "2")
    try:
        aws(deployed, "application-autoscaling", "put-scaling-policy", *dim, "--policy-name", "cli-requests",
            "--policy-type", "TargetTrackingScaling", "--target-tracking-scaling-policy-configuration", json.dumps({
                "TargetValue": 1000.0, "ScaleInCooldown": 0, "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": label}}))

        def not_scaled(found):
            return [a for a in found if a.get("NotScaledReasons") and a["Cause"].endswith(" policy cli-requests")]

        # polled in-process (an AWS CLI call is a Python start, ~0.6 s of CPU), then read with the CLI
        scaling = deployed.client("application-autoscaling")
        until("a not-scaled scale-in", lambda: not_scaled(scaling.describe_scaling_activities(
            ServiceNamespace="ecs", ResourceId=rid, ScalableDimension="ecs:service:DesiredCount",
            IncludeNotScaledActivities=True)["ScalingActivities"]), timeout=240, every=3)
        activity = not_scaled(aws(deployed, "application-autoscaling", "describe-scaling-activities", *dim,
                                  "--include-not-scaled-activities")["ScalingActivities"])[-1]
        assert activity["NotScaledReasons"][0]["Code"] == "AlreadyAtMinCapacity"
        assert activity["NotScaledReasons"][0]["MinCapacity"] == 2
        assert activity["Cause"].endswith(" in state ALARM triggered policy cli-requests")
        assert activity["ResourceId"] == rid
        without = aws(deployed, "application-autoscaling", "describe-scaling-activities", *dim)["ScalingActivities"]
        # not-scaled activities only with --include-not-scaled-activities
        assert not [a for a in without if a["Cause"].endswith(" policy cli-requests")]
    finally:
        aws(deployed, "application-autoscaling", "deregister-scalable-target", *dim)
    svc = service(deployed)
    assert (svc["desiredCount"], svc["runningCount"]) == (2, 2)
    assert running_task_ids(deployed) == instances(served(deployed))
