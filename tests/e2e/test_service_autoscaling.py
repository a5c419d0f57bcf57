"""Service Auto Scaling on the shared stack: a target tracking policy on ALBRequestCountPerTarget,
real requests through the local load balancer's listener, and the service scaled out by the
local cloud, seen through the ECS and Application Auto Scaling APIs and through the listener.

The local cloud keeps CloudWatch's one-minute datapoints here (``SHIP_LOCAL_METRIC_PERIOD`` is
not set), so the scale-out takes AWS's 3 datapoints above the target, plus one for the first
request count to compare with: a few minutes. The scale-in (15 datapoints below 90 % of the
target) is left to tests/localcloud/test_autoscaler.py, which runs with one-second datapoints;
here the scalable target is deregistered and the service set back to 2 tasks afterwards.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.e2e

CLUSTER = SERVICE = "hello-local"
RID = f"service/{CLUSTER}/{SERVICE}"
DIM = "ecs:service:DesiredCount"


def _wait(what: str, check, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


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


def _resource_label(elbv2, tg_arn: str) -> str:
    """app/<load balancer name>/<id>/targetgroup/<target group name>/<id> (PredefinedMetricSpecification)."""
    (group,) = elbv2.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"]
    return group["LoadBalancerArns"][0].split(":loadbalancer/")[1] + "/" + tg_arn.split(":")[-1]


def test_requests_through_the_listener_scale_the_service_out(deployed):
    if deployed.runtime != "process":
        # the metric (requests per target, counted by the listener) and the scaling path do not
        # depend on the runtime; one run of AWS's three one-minute datapoints is enough for CI
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
                "TargetValue": 10.0, "ScaleOutCooldown": 60, "ScaleInCooldown": 600,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget",
                                                  "ResourceLabel": _resource_label(elbv2, tg)}})
        load.start()
        _wait("a scale-out to 3", lambda: service()["desiredCount"] == 3, timeout=600, every=5)
        (activity,) = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RID,
                                                      ScalableDimension=DIM)["ScalingActivities"]
        assert (activity["Description"], activity["StatusCode"]) == ("Setting desired count to 3.", "Successful")
        assert activity["Cause"].endswith(" in state ALARM triggered policy requests")

        # the truth: a third task runs, is a healthy target, and answers through the listener
        def healthy() -> int:
            states = elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            return sum(1 for h in states if h["TargetHealth"]["State"] == "healthy")

        _wait("3 healthy targets", lambda: healthy() == 3, timeout=180)
        running = {a.rsplit("/", 1)[1] for a in ecs.list_tasks(cluster=CLUSTER, serviceName=SERVICE)["taskArns"]}
        answering = _wait("3 tasks answering through the listener",
                          lambda: (lambda ids: ids if len(ids) == 3 else None)(
                              {i for s, i in (_answer(deployed.url) for _ in range(30)) if s == 200}), timeout=60)
        assert answering == running
        events = " ".join(e["message"] for e in service()["events"])
        assert "has started 1 tasks" in events
    finally:
        load.halt.set()
        load.join(timeout=10)
        # leave the shared stack as it was: no scaling, two healthy replicas
        aas.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM)
        ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=2)
        _wait("the service back at 2 tasks", lambda: (lambda s: s["runningCount"] == 2 and len(s["deployments"]) == 1)(
            service()), timeout=180)
        _wait("2 registered targets", lambda: len(
            elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]) == 2, timeout=120)
    assert load.statuses.get(200, 0) > 0 and set(load.statuses) == {200}, load.statuses
