"""End to end on the local cloud: the tests share one deployed stack and run in any order
(what a test needs from an earlier step, such as a release to roll back from, a fixture makes).

Nothing on the data path is mocked: real Terraform, the real emulator, real
gunicorn replicas behind the local load balancer, real HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass

import pytest
from helpers import Traffic, processes_mentioning

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("deployed")]


def service(stack, env="local"):
    ecs = stack.client("ecs")
    return ecs.describe_services(cluster=f"hello-{env}", services=[f"hello-{env}"])["services"][0]


def steady(stack, env="local"):
    """Wait until the service has one deployment and all its tasks (a rollback may still be draining)."""
    stack.client("ecs").get_waiter("services_stable").wait(
        cluster=f"hello-{env}", services=[f"hello-{env}"], WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def running_image(stack, env="local"):
    ecs = stack.client("ecs")
    td = ecs.describe_task_definition(taskDefinition=service(stack, env)["taskDefinition"])["taskDefinition"]
    return td["containerDefinitions"][0]["image"]


def test_deploy_local_from_nothing(deployed):
    assert deployed.url.startswith("http://127.0.0.1:")
    print(f"cold `inv deploy --env=local`: {deployed.cold_deploy_seconds:.1f}s")


def test_terraform_created_the_stack(stack):
    ec2, elbv2 = stack.client("ec2"), stack.client("elbv2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "tag:Environment", "Values": ["local"]}])["Vpcs"] or \
        ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.30.0.0/16"]}])["Vpcs"]
    assert len(vpcs) == 1
    vpc_id = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    tier = {s["SubnetId"]: {t["Key"]: t["Value"] for t in s.get("Tags", [])}.get("Tier") for s in subnets}
    public = [s for s in subnets if tier[s["SubnetId"]] == "public"]
    private = [s for s in subnets if tier[s["SubnetId"]] == "private"]
    assert len(public) == 2 and len(private) == 2
    assert len({s["AvailabilityZone"] for s in public}) == 2
    # Public subnets route to the internet gateway.
    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])
    igw_id = igws["InternetGateways"][0]["InternetGatewayId"]
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id",
                                                 "Values": [s["SubnetId"] for s in public]}])["RouteTables"]
    assert tables and all(any(r.get("GatewayId") == igw_id and r.get("DestinationCidrBlock") == "0.0.0.0/0"
                              for r in t["Routes"]) for t in tables)

    svc = service(stack)
    assert svc["desiredCount"] == 2
    cfg = svc["deploymentConfiguration"]
    assert cfg["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert cfg["minimumHealthyPercent"] == 100 and cfg["maximumPercent"] == 200

    tg_arn = svc["loadBalancers"][0]["targetGroupArn"]
    tg = elbv2.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
    assert tg["HealthCheckPath"] == "/health" and tg["TargetType"] == "ip"
    lb_arn = tg["LoadBalancerArns"][0]
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]
    http = [x for x in listeners if x["Port"] == 80]
    assert http and http[0]["DefaultActions"][0]["TargetGroupArn"] == tg_arn

    # The task security group admits only the ALB's group, only on the container port.
    task_sg_ids = svc["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"]
    lb = elbv2.describe_load_balancers(LoadBalancerArns=[lb_arn])["LoadBalancers"][0]
    alb_sg = set(lb["SecurityGroups"])
    for sg in ec2.describe_security_groups(GroupIds=task_sg_ids)["SecurityGroups"]:
        assert sg["IpPermissions"], sg
        for perm in sg["IpPermissions"]:
            assert perm["FromPort"] == perm["ToPort"] == 5000
            assert not perm.get("IpRanges") and not perm.get("Ipv6Ranges")
            assert {p["GroupId"] for p in perm["UserIdGroupPairs"]} == alb_sg


def test_two_replicas_answer_through_the_load_balancer(stack):
    answers = [stack.get("/") for _ in range(20)]
    assert all(status == 200 for status, _ in answers)
    # One instance per task: the task id (process mode) or "<task id>:<worker pid>" (containers).
    assert len({body["instance"].split(":")[0] for _, body in answers}) == 2


def test_services_stable_waiter(stack):
    stack.client("ecs").get_waiter("services_stable").wait(
        cluster="hello-local", services=["hello-local"], WaiterConfig={"Delay": 2, "MaxAttempts": 30})


def test_status_json_tells_the_truth(stack):
    info = json.loads(stack.inv("status", "--env=local", "--json").stdout)
    assert info["url"] == stack.url
    assert info["desired"] == 2 and info["running"] == 2
    assert [t["health"] for t in info["targets"]] == ["healthy", "healthy"]
    table = stack.inv("status", "--env=local").stdout
    assert "DEPLOYMENT" in table and "TARGET" in table and stack.url in table


def test_logs_come_through_cloudwatch(stack):
    stack.get("/?from=logs-test")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        out = stack.inv("logs", "--env=local", "--since=10m").stdout
        if '"hello.request"' in out:
            break
        time.sleep(1)
    assert '"hello.request"' in out


def _served_version(stack) -> str:
    return stack.get("/")[1]["version"]


@pytest.fixture
def serving_head(stack):
    """The stack serves the repo's HEAD commit (a rollback or a reverted commit may have left it elsewhere)."""
    head = stack.git("rev-parse", "--short=12", "HEAD").strip()
    if _served_version(stack) != head:
        stack.inv("deploy", "--env=local")
    assert {_served_version(stack) for _ in range(4)} == {head}
    return stack


def test_second_deploy_is_a_no_op(serving_head):
    stack = serving_head
    started = time.monotonic()
    result = stack.inv("deploy", "--env=local")
    print(f"no-op `inv deploy --env=local`: {time.monotonic() - started:.1f}s")
    assert "not rebuilding" in result.stdout
    assert ("No changes." in result.stdout or "0 added, 0 changed, 0 destroyed" in result.stdout
            or "Terraform skipped: nothing Terraform reads changed" in result.stdout)
    assert result.stdout.strip().splitlines()[-1] == stack.url


def test_killed_task_is_replaced(stack):
    steady(stack)
    _, body = stack.get("/")
    ecs = stack.client("ecs")
    before = set(ecs.list_tasks(cluster="hello-local", serviceName="hello-local")["taskArns"])
    # The app names its instance by the ECS task id (from the task metadata endpoint);
    # the local cloud records each task's main process (gunicorn's master).
    # (a container has no route to that endpoint: there the task id is the hostname).
    task_id = body["instance"].split(":")[0]
    assert any(arn.endswith("/" + task_id) for arn in before), body
    record = stack.state / "localcloud" / "tasks" / f"{task_id}.pid"
    if record.is_file():
        os.kill(json.loads(record.read_text())["pid"], signal.SIGKILL)
    else:
        from ship import container_cli

        container_cli.require().call("kill", "--signal", "KILL", f"ship-{task_id}")
    started = time.monotonic()
    failures = 0
    while time.monotonic() - started < 60:
        status, _ = stack.get("/")
        failures += status != 200
        tasks = set(ecs.list_tasks(cluster="hello-local", serviceName="hello-local")["taskArns"])
        tg = service(stack)["loadBalancers"][0]["targetGroupArn"]
        health = stack.client("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
        healthy = [h for h in health if h["TargetHealth"]["State"] == "healthy"]
        if len(tasks - before) >= 1 and len(healthy) == 2:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("no healthy replacement within 60 s")
    elapsed = time.monotonic() - started
    print(f"replacement healthy after {elapsed:.1f}s; {failures} failed requests meanwhile")


@dataclass
class Release:
    """One `inv release` of a new commit under load, and what it left."""
    before_image: str  # what ran before: where a rollback returns to
    tag: str
    image: str
    stdout: str
    load: Traffic
    served_after: list


@pytest.fixture(scope="module")
def released(stack) -> Release:
    """A release of a new commit over the steady revision that ran before (once per module)."""
    before = running_image(stack)
    tag = stack.commit("v2")
    started = time.monotonic()
    with Traffic(lambda: stack.get("/", timeout=10)) as load:
        result = stack.inv("release", "--env=local")
    print(f"rollout of {tag}: {time.monotonic() - started:.1f}s, {sum(load.versions.values())} requests, "
          f"versions {dict(load.versions)}")
    served = [_served_version(stack) for _ in range(10)]
    return Release(before, tag, running_image(stack), result.stdout, load, served)


def test_release_under_load_has_zero_failed_requests(released):
    assert "is steady on" in released.stdout
    assert released.load.failures == []
    assert set(released.served_after) == {released.tag}
    assert released.image != released.before_image and "@sha256:" in released.image


def test_release_with_failing_health_check_rolls_back(stack):
    td_before, version_before = service(stack)["taskDefinition"], _served_version(stack)
    stack.commit("bad health", edit=("src/hello/views.py", 'return jsonify(status="ok")',
                                     'return jsonify(status="broken"), 500'))
    with Traffic(lambda: stack.get("/", timeout=10)) as load:
        result = stack.inv("release", "--env=local", check=False)
    assert result.returncode == 1
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and "failed" in err[0] and "rolled back" in err[0], result.stderr
    # why, from the stopped tasks themselves (their stoppedReason), not only a pointer to the logs
    assert "its tasks stopped: Task failed ELB health checks in (target-group" in err[0], result.stderr
    assert "Scaling activity" not in err[0], result.stderr
    assert "is steady on" not in result.stdout.splitlines()[-1]
    svc = service(stack)
    assert svc["taskDefinition"] == td_before
    failed = [d for d in svc["deployments"] if d.get("rolloutState") == "FAILED"]
    events = " ".join(e["message"] for e in svc.get("events", []))
    assert failed or "circuit breaker" in events.lower() or "rolling back" in events.lower()
    assert load.failures == []
    assert {_served_version(stack) for _ in range(6)} == {version_before}
    # Back to the commit before the bad one (a revert would be a new commit that no image was built from).
    stack.git("reset", "-q", "--hard", "HEAD~1")
    steady(stack)


def test_bad_input_is_one_line_and_changes_nothing(stack):
    td_before = service(stack)["taskDefinition"]
    (stack.repo / "scratch.txt").write_text("uncommitted")
    try:
        r = stack.inv("release", "--env=local", check=False)
        assert r.returncode == 1 and "dirty tree" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    finally:
        (stack.repo / "scratch.txt").unlink()
    r = stack.inv("deploy", "--env=local", "--tag=nope", check=False)
    assert r.returncode == 1 and "no image with tag nope" in r.stderr
    r = stack.inv("deploy", "--env=local", "--digest=sha256:" + "0" * 64, check=False)
    assert r.returncode == 1 and "no image with digest" in r.stderr
    r = stack.inv("deploy", "--env=local", "--digest=md5:abc", check=False)
    assert r.returncode == 1 and "is not an image digest" in r.stderr
    r = stack.inv("deploy", "--env=nowhere", check=False)
    assert r.returncode == 1 and "valid environments are" in r.stderr
    assert service(stack)["taskDefinition"] == td_before


def test_rollback_returns_to_the_previous_steady_revision(stack, released):
    assert running_image(stack) == released.image
    result = stack.inv("rollback", "--env=local")
    assert "is steady on" in result.stdout
    assert running_image(stack) == released.before_image
    versions = {_served_version(stack) for _ in range(6)}
    assert released.tag not in versions and len(versions) == 1


def test_promote_runs_the_identical_digest_without_a_build(stack):
    stack.inv("infra.apply", "--env=local-prod")
    r = stack.inv("promote", "--from=local-prod", "--to=local", check=False)
    assert r.returncode == 1 and "nothing runs in local-prod" in r.stderr
    result = stack.inv("promote", "--from=local", "--to=local-prod")
    assert "built " not in result.stdout and "same manifest, no rebuild" in result.stdout
    src, dst = running_image(stack, "local"), running_image(stack, "local-prod")
    assert src.split("@")[1] == dst.split("@")[1]
    assert "hello-local-prod" in dst
    ecr = stack.client("ecr")
    digest = dst.split("@")[1]
    image = ecr.describe_images(repositoryName="hello-local-prod", imageIds=[{"imageDigest": digest}])
    assert image["imageDetails"][0]["imageDigest"] == digest
    # Nothing to roll back to yet in local-prod: one clear line, nothing changed.
    before = service(stack, "local-prod")["taskDefinition"]
    r = stack.inv("rollback", "--env=local-prod", check=False)
    assert r.returncode == 1 and "no earlier revision" in r.stderr
    assert service(stack, "local-prod")["taskDefinition"] == before


def test_prune_keeps_the_configured_number_plus_running_and_rollback_target(stack, released):
    ecs = stack.client("ecs")
    stack.inv("redeploy", "--env=local")
    # two revisions that never ran (as a registration without a rollout leaves them): the older one must go
    td = ecs.describe_task_definition(taskDefinition=service(stack)["taskDefinition"])["taskDefinition"]
    keys = ("family", "containerDefinitions", "networkMode", "requiresCompatibilities", "cpu", "memory",
            "executionRoleArn")
    copy = {k: td[k] for k in keys if td.get(k)}
    unrun = [ecs.register_task_definition(**copy)["taskDefinition"]["taskDefinitionArn"] for _ in range(2)]
    before = ecs.list_task_definitions(familyPrefix="hello-local", status="ACTIVE", sort="ASC")["taskDefinitionArns"]
    before = [a for a in before if a.rsplit("/", 1)[1].split(":")[0] == "hello-local"]
    assert len(before) >= 4 and before[-2:] == unrun
    stack.inv("prune", "--env=local", "--keep=1")
    after = ecs.list_task_definitions(familyPrefix="hello-local", status="ACTIVE", sort="ASC")["taskDefinitionArns"]
    after = [a for a in after if a.rsplit("/", 1)[1].split(":")[0] == "hello-local"]
    running = service(stack)["taskDefinition"]
    assert running in after
    assert before[-1] in after  # the newest one, the configured number (1)
    expected = {before[-1], running}
    extra = set(after) - expected
    # At most one more: the rollback target (the newest other steady revision).
    assert len(extra) <= 1
    assert len(after) == len(expected) + len(extra)
    assert unrun[0] not in after


@pytest.mark.teardown
def test_destroy_leaves_nothing(stack):
    stack.inv("destroy", "--env=local-prod")
    stack.inv("destroy", "--env=local")
    ecs, elbv2, ec2 = stack.client("ecs"), stack.client("elbv2"), stack.client("ec2")
    arns = [c for c in ecs.list_clusters()["clusterArns"] if "hello-local" in c]
    if arns:
        assert {c["status"] for c in ecs.describe_clusters(clusters=arns)["clusters"]} == {"INACTIVE"}
    assert elbv2.describe_load_balancers()["LoadBalancers"] == []
    assert [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")] == []
    ports = [int(stack.url.rsplit(":", 1)[1]), stack.port]
    stack.inv("local.down")
    import socket

    for port in ports:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
    assert processes_mentioning(str(stack.state)) == []
