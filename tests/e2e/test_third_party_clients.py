"""Third-party clients against the local cloud: the AWS CLI v1 (pinned in the dev extra), unchanged,
pointed at it with AWS_ENDPOINT_URL. Every step is checked against what the load balancer URL
serves, not only against what the API answers. The shared stack is left as it was found: the same
task definition, 2 replicas.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

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
