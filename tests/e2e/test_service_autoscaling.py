"""Service Auto Scaling on the shared stack: a target tracking policy on ALBRequestCountPerTarget,
real requests through the local load balancer's listener, and the service scaled out by the
local cloud, seen through the ECS and Application Auto Scaling APIs and through the listener.

The e2e suite's local cloud takes a datapoint every few seconds (``SHIP_LOCAL_METRIC_PERIOD``, set
in conftest.py; CloudWatch's is a minute), so AWS's 3 datapoints above the target (scale-out) and
15 below 90 % of it (scale-in) take seconds, not minutes; request counts are per datapoint.

* the first test registers the scalable target and policy through the API and scales out; the
  scalable target is deregistered and the service set back to 2 tasks afterwards;
* the second turns autoscaling on in environments.yaml, so that Terraform (terraform/modules/ecs)
  makes the scaling, and sees the service scale out and back in.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from helpers import wait_until

pytestmark = pytest.mark.e2e

CLUSTER = SERVICE = "hello-local"
RID = f"service/{CLUSTER}/{SERVICE}"
DIM = "ecs:service:DesiredCount"


def _answer(url: str) -> tuple[int, str]:
    """(status, the task id that answered) of one GET through the listener."""
    try:
        with urllib.request.urlopen(url + "/", timeout=5) as resp:
            return resp.status, str(json.loads(resp.read() or b"{}").get("instance", "")).split(":")[0]
    except urllib.error.HTTPError as err:
        return err.code, ""
    except OSError:
        return 0, ""


class Load(threading.Thread):
    """A steady trickle of requests through the listener (a few a second: far above the target of
    the policy below, light on a shared machine)."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.halt = url, threading.Event()
        self.statuses: dict[int, int] = {}

    def run(self) -> None:
        while not self.halt.wait(0.2):
            status, _ = _answer(self.url)
            self.statuses[status] = self.statuses.get(status, 0) + 1


def _healthy(elbv2, tg_arn: str) -> int:
    states = elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    return sum(1 for h in states if h["TargetHealth"]["State"] == "healthy")


def _three_answer(deployed, ecs, elbv2, tg_arn: str) -> set[str]:
    """The truth after a scale-out to 3: three healthy targets, and the running tasks are exactly
    the ones answering through the listener (their ids)."""
    wait_until(lambda: _healthy(elbv2, tg_arn) == 3, 180, "3 healthy targets", step=2.0)
    running = {a.rsplit("/", 1)[1] for a in ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE)["taskArns"]}

    def three_answering() -> set[str] | None:
        ids = {i for s, i in (_answer(deployed.url) for _ in range(30)) if s == 200}
        return ids if len(ids) == 3 else None

    assert wait_until(three_answering, 60, "3 tasks answering through the listener", step=2.0) == running
    return running


def _resource_label(elbv2, tg_arn: str) -> str:
    """app/<load balancer name>/<id>/targetgroup/<target group name>/<id> (PredefinedMetricSpecification)."""
    (group,) = elbv2.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"]
    return group["LoadBalancerArns"][0].split(":loadbalancer/")[1] + "/" + tg_arn.split(":")[-1]


def test_requests_through_the_listener_scale_the_service_out(deployed):
    if deployed.runtime != "process":
        # the metric (requests per target, counted by the listener) and the scaling path do not
        # depend on the runtime (the Terraform-made test below runs in both)
        pytest.skip("process runtime only: the request-count scaling path is the same in containers")
    ecs, elbv2 = deployed.client("ecs"), deployed.client("elbv2")
    aas = deployed.client("application-autoscaling")

    def service() -> dict:
        return ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]

    tg = service()["loadBalancers"][0]["targetGroupArn"]
    assert service()["desiredCount"] == 2
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
                                 MinCapacity=2, MaxCapacity=3)
    load = Load(deployed.url)
    try:
        aas.put_scaling_policy(
            PolicyName="requests", ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
            PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 1.0, "ScaleOutCooldown": 60, "ScaleInCooldown": 600,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget",
                                                  "ResourceLabel": _resource_label(elbv2, tg)}})
        load.start()
        wait_until(lambda: service()["desiredCount"] == 3, 600, "a scale-out to 3", step=5)
        (activity,) = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RID,
                                                      ScalableDimension=DIM)["ScalingActivities"]
        assert (activity["Description"], activity["StatusCode"]) == ("Setting desired count to 3.", "Successful")
        assert activity["Cause"].endswith(" in state ALARM triggered policy requests")

        # the truth: a third task runs, is a healthy target, and answers through the listener
        _three_answer(deployed, ecs, elbv2, tg)
        events = " ".join(e["message"] for e in service()["events"])
        assert "has started 1 tasks" in events
    finally:
        load.halt.set()
        load.join(timeout=10)
        # leave the shared stack as it was: no scaling, two healthy replicas
        aas.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM)
        ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=2)
        wait_until(lambda: (lambda s: s["runningCount"] == 2 and len(s["deployments"]) == 1)(service()), 180,
                   "the service back at 2 tasks", step=2.0)
        wait_until(lambda: len(elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]) == 2,
                   120, "2 registered targets", step=2.0)
    assert load.statuses.get(200, 0) > 0 and set(load.statuses) == {200}, load.statuses


LOCAL = "  local:\n    emulator: true\n"
# Service Auto Scaling for `local`, as a user turns it on in environments.yaml: one request-count
# policy; the target is per datapoint of the local cloud (SHIP_LOCAL_METRIC_PERIOD, a few seconds
# in the e2e suite, where CloudWatch's is a minute) and no cooldowns, so that the suite sees it
# scale out and back in within a minute or two.
SCALING_ON = LOCAL + "".join(f"    {key}: {value}\n" for key, value in (
    ("autoscaling", "true"), ("autoscaling_min_capacity", 2), ("autoscaling_max_capacity", 3),
    ("autoscaling_cpu_target", 0), ("autoscaling_requests_per_target", 1),
    ("autoscaling_scale_in_cooldown", 0), ("autoscaling_scale_out_cooldown", 0)))
ENVIRONMENTS = "terraform/environments.yaml"


def test_terraform_made_scaling_scales_the_service_out_and_back_in(deployed):
    """autoscaling: true in environments.yaml + `inv infra.apply`: Terraform registers the scalable
    target and the ALBRequestCountPerTarget policy (its ResourceLabel from the load balancer and
    target group); load through the listener scales the service out, no load scales it back in,
    each step seen as service events and scaling activities and through the listener; a plan at 3
    tasks is empty (Terraform does not fight the scaler). Turned off again, the scalable target is
    gone and the apply sets the count from environments.yaml."""
    ecs, elbv2 = deployed.client("ecs"), deployed.client("elbv2")
    aas = deployed.client("application-autoscaling")

    def service() -> dict:
        return ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]

    def activities() -> list[str]:
        found = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RID,
                                                ScalableDimension=DIM)["ScalingActivities"]
        return [a["Description"] for a in found if a["Cause"].endswith(f"triggered policy {SERVICE}-requests")]

    tg = service()["loadBalancers"][0]["targetGroupArn"]
    assert service()["desiredCount"] == 2
    deployed.commit("autoscaling on for local", (ENVIRONMENTS, LOCAL, SCALING_ON))
    load = Load(deployed.url)
    try:
        deployed.inv("infra.apply", "--env=local")
        (target,) = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[RID])["ScalableTargets"]
        assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 3)
        (policy,) = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=RID)["ScalingPolicies"]
        config = policy["TargetTrackingScalingPolicyConfiguration"]
        assert (policy["PolicyName"], config["TargetValue"]) == (f"{SERVICE}-requests", 1.0)
        assert config["PredefinedMetricSpecification"]["ResourceLabel"] == _resource_label(elbv2, tg)

        load.start()
        wait_until(lambda: service()["desiredCount"] == 3, 300, "a scale-out to 3", step=2.0)
        assert activities() == ["Setting desired count to 3."]
        running = _three_answer(deployed, ecs, elbv2, tg)
        # desired_count (2) is not Terraform's to restore: the plan at 3 tasks is empty
        plan = deployed.inv("infra.plan", "--env=local")
        assert "No changes." in plan.stdout, plan.stdout[-3000:]

        load.halt.set()
        wait_until(lambda: service()["desiredCount"] == 2, 300, "a scale-in to 2", step=2.0)
        assert activities() == ["Setting desired count to 2.", "Setting desired count to 3."]
        wait_until(lambda: (lambda s: s["runningCount"] == 2 and s["pendingCount"] == 0)(service()), 120,
                   "2 running tasks", step=2.0)
        events = " ".join(e["message"] for e in service()["events"])
        assert "has started 1 tasks" in events and "has stopped 1 running tasks" in events, events
        assert {i for s, i in (_answer(deployed.url) for _ in range(20)) if s == 200} <= running
    finally:
        load.halt.set()
        if load.is_alive():
            load.join(timeout=10)
        deployed.commit("autoscaling off for local", (ENVIRONMENTS, SCALING_ON, LOCAL))
        deployed.inv("infra.apply", "--env=local")
    assert aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[RID])["ScalableTargets"] == []
    assert set(load.statuses) == {200}, load.statuses

    # autoscaling off: Terraform ignores desired_count after creation, the apply sets it from environments.yaml
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=3)
    applied = deployed.inv("infra.apply", "--env=local")
    assert "hello-local: desired count 3 -> 2 (desired_count in environments.yaml)" in applied.stdout + applied.stderr
    wait_until(lambda: (lambda s: s["desiredCount"] == s["runningCount"] == 2 and len(s["deployments"]) == 1)(
        service()), 180, "the service back at 2 tasks", step=2.0)
    wait_until(lambda: _healthy(elbv2, tg) == 2 and len(
        elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]) == 2, 120, "2 healthy targets",
        step=2.0)
