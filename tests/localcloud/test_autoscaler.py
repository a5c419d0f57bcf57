"""Service Auto Scaling and DeleteService on a real local cloud: real task processes, real
listener traffic, metrics read from /proc and the load balancer, one datapoint a second
(``SHIP_LOCAL_METRIC_PERIOD=1``; the alarms still need AWS's 3 and 15 datapoints).

Every scaling is checked against the truth: the tasks that run and answer through the
listener, not only the API's desired count.
"""

from __future__ import annotations

import time

import pytest
import requests

from conftest import process_image, push_image
from helpers import wait_until
from test_dataplane import CLUSTER, POLL, SERVICE, Hammer, Stack

DIM = "ecs:service:DesiredCount"
RID = f"service/{CLUSTER}/{SERVICE}"


@pytest.fixture
def fast(request, monkeypatch):
    """A local cloud whose metrics have one datapoint a second."""
    monkeypatch.setenv("SHIP_LOCAL_METRIC_PERIOD", "1")
    return request.getfixturevalue("cloud")


def _activities(aas, not_scaled: bool = False) -> list[dict]:
    return aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
                                           IncludeNotScaledActivities=not_scaled)["ScalingActivities"]


def _serving(url: str, n: int = 30) -> set[str]:
    """The task ARNs that answer through the listener."""
    s = requests.Session()
    return {r.json()["task"] for r in (s.get(url, timeout=5) for _ in range(n)) if r.status_code == 200}


def _running_arns(stack) -> set[str]:
    return {t["taskArn"] for t in stack.running_tasks() if t["lastStatus"] == "RUNNING"}


def _network(ec2) -> dict:
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    group = ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=vpc)["GroupId"]
    return {"awsvpcConfiguration": {"subnets": [subnet["SubnetId"]], "securityGroups": [group]}}


def _label(stack) -> str:
    tg = stack.elb.describe_target_groups(TargetGroupArns=[stack.tg])["TargetGroups"][0]
    lb_arn = tg["LoadBalancerArns"][0]
    return lb_arn.split(":loadbalancer/")[1] + "/" + stack.tg.split(":")[-1]


def test_request_count_per_target_scales_out_and_back_in(fast):
    stack = Stack(fast).build()
    aas = fast.client("application-autoscaling")
    stack.ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=1)
    stack.wait_stable()
    # stable is ECS's view (one deployment, running == desired); the listener routes by target
    # health, and a task limited to its cpu share may still be starting its server
    wait_until(lambda: len(stack.healthy_targets()) == 1, 90, "the remaining task's target healthy", step=POLL)
    # the task the scale to 1 stopped (and any the service replaced while starting) are not the scaler's
    stopped_before = set(stack.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE,
                                              desiredStatus="STOPPED")["taskArns"])
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM, MinCapacity=1,
                                 MaxCapacity=3)
    aas.put_scaling_policy(
        PolicyName="requests", ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 300.0, "ScaleOutCooldown": 5, "ScaleInCooldown": 0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget",
                                              "ResourceLabel": _label(stack)}})
    url = stack.url()
    got = [(r.status_code, r.text[:100]) for r in (requests.get(url, timeout=5) for _ in range(5))]
    assert got[0][0] == 200, (got, stack.health(), stack.service()["events"][:5])
    (first,) = _serving(url, 5)
    hammers = [Hammer(url), Hammer(url)]           # well above 300 requests per target per minute
    for hammer in hammers:
        hammer.start()
    try:
        wait_until(lambda: stack.service()["desiredCount"] == 3, 120, "a scale-out to the maximum, 3", step=POLL)
        wait_until(lambda: len(stack.healthy_targets()) == 3, 90, "3 healthy targets", step=POLL)
        serving = wait_until(lambda: (lambda s: s if len(s) == 3 else None)(_serving(url, 40)), 30,
                             "3 tasks answering through the listener", step=POLL)
        assert serving == _running_arns(stack) and first in serving
        (out,) = _activities(aas)
        assert (out["Description"], out["StatusCode"]) == ("Setting desired count to 3.", "Successful")
        assert out["StatusMessage"] == "Successfully set desired count to 3. Change successfully fulfilled by ecs."
        assert out["Cause"].startswith(f"monitor alarm TargetTracking-{RID}-AlarmHigh-")
        assert out["Cause"].endswith(" in state ALARM triggered policy requests")
        # still above the target at the maximum: said once as a not-scaled activity
        refused = wait_until(lambda: [a for a in _activities(aas, True) if a.get("NotScaledReasons")], 60,
                             "a not-scaled activity at the maximum", step=POLL)
        assert refused[0]["NotScaledReasons"] == [{"Code": "AlreadyAtMaxCapacity", "MaxCapacity": 3,
                                                   "CurrentCapacity": 3}]
        assert refused[0]["StatusCode"] == "Failed"
    finally:
        for hammer in hammers:
            hammer.halt.set()
            hammer.join(timeout=10)
    assert all(h.failures == [] and h.ok > 0 for h in hammers)
    # from here on, few requests: checking the truth through the listener is load too
    wait_until(lambda: stack.service()["desiredCount"] == 1, 120, "a scale-in to the minimum, 1", step=POLL)
    stack.wait_stable()
    wait_until(lambda: len(stack.health()) == 1, 30, "the stopped tasks' targets to have drained", step=POLL)
    assert _serving(url, 10) == _running_arns(stack) and len(_running_arns(stack)) == 1
    back_in, out = _activities(aas)[:2]
    assert back_in["Description"] == "Setting desired count to 1." and "-AlarmLow-" in back_in["Cause"]
    assert out["Description"] == "Setting desired count to 3."
    stopped = [arn for arn in stack.ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE,
                                                   desiredStatus="STOPPED")["taskArns"] if arn not in stopped_before]
    reasons = [t["stoppedReason"] for t in stack.ecs.describe_tasks(cluster=CLUSTER, tasks=stopped)["tasks"]]
    assert len(stopped) == 2 and all(r.startswith("Scaling activity initiated by (deployment ") for r in reasons), \
        reasons
    events = " ".join(e["message"] for e in stack.service()["events"])
    assert "has started 2 tasks" in events and "has stopped 2 running tasks" in events


BURNER = rb"""
import os, time
end = time.time() + float(os.environ.get("BURN_SECONDS", "0"))
print("burning", flush=True)
while time.time() < end:
    pass
print("idle", flush=True)
while True:
    time.sleep(3600)
"""


def test_cpu_utilization_scales_out_while_tasks_are_busy_and_in_when_they_idle(fast):
    """Each task burns a CPU for its first seconds, then idles: 400 % of its 256 units, then ~0 %."""
    ecs, ecr, logs = fast.client("ecs"), fast.client("ecr"), fast.client("logs")
    aas = fast.client("application-autoscaling")
    ecr.create_repository(repositoryName="burner")
    logs.create_log_group(logGroupName="/ecs/burner")
    image = push_image(ecr, "burner", "v1", *process_image(BURNER, "burner"))
    ecs.create_cluster(clusterName=CLUSTER)
    td = ecs.register_task_definition(
        family="burner", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": image, "memory": 512, "stopTimeout": 2,
                               "environment": [{"name": "BURN_SECONDS", "value": "12"}],
                               "logConfiguration": {"logDriver": "awslogs", "options": {
                                   "awslogs-group": "/ecs/burner", "awslogs-region": "us-east-1",
                                   "awslogs-stream-prefix": "burner"}}}])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=td, desiredCount=1, launchType="FARGATE",
                       networkConfiguration=_network(fast.client("ec2")))
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM, MinCapacity=1,
                                 MaxCapacity=2)
    for name, metric, target in (("cpu", "ECSServiceAverageCPUUtilization", 50.0),
                                 ("memory", "ECSServiceAverageMemoryUtilization", 90.0)):
        aas.put_scaling_policy(
            PolicyName=name, ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
            PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
                "TargetValue": target, "ScaleOutCooldown": 0, "ScaleInCooldown": 0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": metric}})

    def running() -> list[dict]:
        arns = ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE)["taskArns"]
        return [t for t in ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if t["lastStatus"] == "RUNNING"] \
            if arns else []

    wait_until(lambda: ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["desiredCount"] == 2,
               120, "a scale-out on CPU", step=POLL)
    wait_until(lambda: len(running()) == 2, 60, "a second task running", step=POLL)
    wait_until(lambda: ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]["desiredCount"] == 1,
               180, "a scale-in once the tasks idle", step=POLL)
    wait_until(lambda: len(running()) == 1, 60, "one task left running", step=POLL)
    back_in, out = _activities(aas)[:2]
    assert out["Description"] == "Setting desired count to 2." and out["Cause"].endswith("triggered policy cpu")
    # scale-in needs both policies low; the memory policy keeps more capacity (1) than CPU (0): it is the cause
    assert back_in["Description"] == "Setting desired count to 1." and back_in["Cause"].endswith("policy memory")


def test_a_deleted_service_is_draining_until_its_tasks_have_stopped(cloud):
    stack = Stack(cloud).build()
    stack.elb.modify_target_group_attributes(
        TargetGroupArn=stack.tg, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
    stack.wait_stable()
    tasks = _running_arns(stack)
    assert len(tasks) == 2
    deleted = stack.ecs.delete_service(cluster=CLUSTER, service=SERVICE, force=True)["service"]
    assert (deleted["status"], deleted["desiredCount"]) == ("DRAINING", 0)
    assert stack.ecs.list_services(cluster=CLUSTER)["serviceArns"] == []

    def states() -> tuple[str, set[str]]:
        svc = stack.service()
        described = stack.ecs.describe_tasks(cluster=CLUSTER, tasks=list(tasks))["tasks"]
        return svc["status"], {t["lastStatus"] for t in described}

    seen = []
    while True:
        status, task_states = states()
        seen.append((status, task_states))
        assert status in ("DRAINING", "INACTIVE"), seen
        if status == "INACTIVE":
            break
        assert len(seen) < 600, f"still DRAINING: {seen[-3:]}"
        time.sleep(0.1)
    assert task_states <= {"STOPPING", "DEPROVISIONING", "STOPPED"}, seen[-3:]
    assert any(s == "DRAINING" and not t <= {"STOPPING", "DEPROVISIONING", "STOPPED"} for s, t in seen), \
        "the service was DRAINING while its tasks still ran (draining from the load balancer)"
    wait_until(lambda: states()[1] == {"STOPPED"}, 60, "the tasks to stop", step=POLL)
    assert stack.service()["status"] == "INACTIVE"
    # the name is free again once INACTIVE
    again = stack.ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=stack.td["v1"],
                                     desiredCount=1, launchType="FARGATE",
                                     networkConfiguration=_network(stack.ec2))
    assert again["service"]["status"] == "ACTIVE"
    wait_until(lambda: len(_running_arns(stack)) == 1, 60, "the new service's task", step=POLL)
