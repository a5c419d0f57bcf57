"""The emulator's side of Service Auto Scaling and of DeleteService, in-process (moto patched):

* DescribeScalingActivities answers the activities the data plane recorded, as AWS does
  (https://docs.aws.amazon.com/autoscaling/application/APIReference/API_DescribeScalingActivities.html);
* target tracking policies get the alarms AWS creates (AlarmHigh above the target for 3 periods,
  AlarmLow below 90 % of it for 15, on the policy's own metric);
* DeleteService leaves the service DRAINING until its tasks have stopped, then INACTIVE
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html).
"""

from __future__ import annotations

import pickle

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ship import oci
from ship.localcloud import emulator
from ship.localcloud.emulator import autoscaling, ecs

ACCOUNT, REGION = "123456789012", "us-east-1"
RID, DIM = "service/c1/web", "ecs:service:DesiredCount"
LABEL = "app/lb/50dc6c495c0c9188/targetgroup/tg/6d0ecf831eec9f09"


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory):
    emulator.install(oci.BlobStore(tmp_path_factory.mktemp("blobs")))


@pytest.fixture
def aws(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    autoscaling.STORE.tags.clear()
    autoscaling.STORE.activities.clear()
    autoscaling.STORE.memory.clear()
    with mock_aws():
        client = boto3.client("ecs", region_name=REGION)
        client.create_cluster(clusterName="c1")
        client.register_task_definition(family="web", containerDefinitions=[
            {"name": "web", "image": "nginx", "memory": 128}])
        client.create_service(cluster="c1", serviceName="web", taskDefinition="web", desiredCount=2)
        yield {name: boto3.client(name, region_name=REGION)
               for name in ("ecs", "application-autoscaling", "cloudwatch")}


def _code(info) -> str:
    return info.value.response["Error"]["Code"]


def _activity(n: int, rid: str = RID, not_scaled: bool = False) -> autoscaling.ScalingActivity:
    import time

    reasons = (autoscaling.NotScaledReason("AlreadyAtMaxCapacity", max_capacity=4, current_capacity=4),) \
        if not_scaled else ()
    return autoscaling.ScalingActivity(
        f"id-{n}", "ecs", rid, DIM, f"Setting desired count to {n}.", f"cause {n}", time.time() - 100 + n,
        time.time() - 100 + n, "Failed" if not_scaled else "Successful", f"message {n}", reasons)


# -- DescribeScalingActivities --------------------------------------------------------------------------------

def test_activities_newest_first_with_aws_fields(aws):
    aas = aws["application-autoscaling"]
    for n in (1, 2, 3):
        autoscaling.record_activity(ACCOUNT, REGION, _activity(n))
    found = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM)
    acts = found["ScalingActivities"]
    assert [a["ActivityId"] for a in acts] == ["id-3", "id-2", "id-1"]
    assert set(acts[0]) == {"ActivityId", "ServiceNamespace", "ResourceId", "ScalableDimension", "Description",
                            "Cause", "StartTime", "EndTime", "StatusCode", "StatusMessage"}
    assert (acts[0]["Description"], acts[0]["StatusCode"]) == ("Setting desired count to 3.", "Successful")
    assert "NextToken" not in found


def test_not_scaled_activities_only_when_asked(aws):
    aas = aws["application-autoscaling"]
    autoscaling.record_activity(ACCOUNT, REGION, _activity(1))
    autoscaling.record_activity(ACCOUNT, REGION, _activity(2, not_scaled=True))
    plain = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RID)["ScalingActivities"]
    assert [a["ActivityId"] for a in plain] == ["id-1"]
    every = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RID,
                                            IncludeNotScaledActivities=True)["ScalingActivities"]
    assert [a["ActivityId"] for a in every] == ["id-2", "id-1"]
    assert every[0]["NotScaledReasons"] == [{"Code": "AlreadyAtMaxCapacity", "MaxCapacity": 4,
                                             "CurrentCapacity": 4}]


def test_activities_filter_by_resource_and_page(aws):
    aas = aws["application-autoscaling"]
    for n in range(1, 8):
        autoscaling.record_activity(ACCOUNT, REGION, _activity(n))
    autoscaling.record_activity(ACCOUNT, REGION, _activity(9, rid="service/c1/api"))
    autoscaling.record_activity("210987654321", REGION, _activity(10))       # another account
    assert len(aas.describe_scaling_activities(ServiceNamespace="ecs")["ScalingActivities"]) == 8
    seen, token = [], None
    while True:
        page = aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RID, MaxResults=3,
                                               **({"NextToken": token} if token else {}))
        seen += [a["ActivityId"] for a in page["ScalingActivities"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"id-{n}" for n in range(7, 0, -1)]
    assert aas.describe_scaling_activities(ServiceNamespace="dynamodb")["ScalingActivities"] == []


@pytest.mark.parametrize("kwargs", [{"ScalableDimension": DIM}, {"ResourceId": RID, "MaxResults": 51}])
def test_activities_validation(aws, kwargs):
    with pytest.raises(ClientError) as info:
        aws["application-autoscaling"].describe_scaling_activities(ServiceNamespace="ecs", **kwargs)
    assert _code(info) == "ValidationException"


def test_activities_are_kept_bounded_and_picklable(aws):
    for n in range(autoscaling.KEEP_ACTIVITIES + 20):
        autoscaling.record_activity(ACCOUNT, REGION, _activity(n))
    key = autoscaling.target_key(ACCOUNT, REGION, "ecs", RID, DIM)
    assert len(autoscaling.STORE.activities[key]) == autoscaling.KEEP_ACTIVITIES
    memory = autoscaling.scaling_memory(ACCOUNT, REGION, "ecs", RID, DIM)
    memory.last_scale_out, memory.scale_out_from = 12.5, 2
    restored = pickle.loads(pickle.dumps(autoscaling.STORE))
    assert restored.activities[key][0] == autoscaling.STORE.activities[key][0]
    assert restored.memory[key] == autoscaling.ScalingMemory(last_scale_out=12.5, scale_out_from=2)


def test_deregistering_forgets_the_scalers_memory_but_not_the_activities(aws):
    aas = aws["application-autoscaling"]
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM, MinCapacity=1,
                                 MaxCapacity=4)
    autoscaling.scaling_memory(ACCOUNT, REGION, "ecs", RID, DIM).last_scale_in = 1.0
    autoscaling.record_activity(ACCOUNT, REGION, _activity(1))
    aas.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM)
    assert autoscaling.STORE.memory == {}
    assert len(aas.describe_scaling_activities(ServiceNamespace="ecs", ResourceId=RID)["ScalingActivities"]) == 1


# -- the alarms of target tracking policies ---------------------------------------------------------------------

def _policy(aas, name: str, metric: str, target: float, **extra) -> dict:
    spec = {"PredefinedMetricType": metric}
    if metric == "ALBRequestCountPerTarget":
        spec["ResourceLabel"] = LABEL
    return aas.put_scaling_policy(PolicyName=name, ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
                                  PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
                                      "TargetValue": target, "PredefinedMetricSpecification": spec, **extra})


def _alarms(cloudwatch, policy: dict) -> dict[str, dict]:
    names = [a["AlarmName"] for a in policy["Alarms"]]
    found = cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]
    return {a["AlarmName"].split("-Alarm")[1].split("-")[0]: a for a in found}


@pytest.mark.parametrize("metric, namespace, name, statistic, dimensions", [
    ("ECSServiceAverageCPUUtilization", "AWS/ECS", "CPUUtilization", "Average",
     [{"Name": "ClusterName", "Value": "c1"}, {"Name": "ServiceName", "Value": "web"}]),
    ("ECSServiceAverageMemoryUtilization", "AWS/ECS", "MemoryUtilization", "Average",
     [{"Name": "ClusterName", "Value": "c1"}, {"Name": "ServiceName", "Value": "web"}]),
    ("ALBRequestCountPerTarget", "AWS/ApplicationELB", "RequestCountPerTarget", "Sum",
     [{"Name": "TargetGroup", "Value": "targetgroup/tg/6d0ecf831eec9f09"}]),
])
def test_target_tracking_alarms_are_the_ones_aws_creates(aws, metric, namespace, name, statistic, dimensions):
    aas = aws["application-autoscaling"]
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM, MinCapacity=1,
                                 MaxCapacity=4)
    policy = _policy(aas, "p", metric, 60.0)
    alarms = _alarms(aws["cloudwatch"], policy)
    assert set(alarms) == {"High", "Low"}
    high, low = alarms["High"], alarms["Low"]
    assert high["AlarmName"].startswith(f"TargetTracking-{RID}-AlarmHigh-")
    assert (high["ComparisonOperator"], high["Threshold"], high["EvaluationPeriods"], high["Period"]) == (
        "GreaterThanThreshold", 60.0, 3, 60)
    assert (low["ComparisonOperator"], low["Threshold"], low["EvaluationPeriods"]) == ("LessThanThreshold", 54.0, 15)
    for alarm in (high, low):
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (namespace, name, statistic)
        assert alarm["Dimensions"] == dimensions
    (view,) = autoscaling.scaling_policies(ACCOUNT, REGION, RID)
    assert (view.alarm_high, view.alarm_low) == (high["AlarmName"], low["AlarmName"])


def test_a_policy_that_never_scales_in_has_no_scale_in_alarm(aws):
    aas = aws["application-autoscaling"]
    aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM, MinCapacity=1,
                                 MaxCapacity=4)
    policy = _policy(aas, "p", "ECSServiceAverageCPUUtilization", 50.0, DisableScaleIn=True)
    assert set(_alarms(aws["cloudwatch"], policy)) == {"High"}


# -- DeleteService ---------------------------------------------------------------------------------------------

def _svc(client, name="web") -> dict:
    return client.describe_services(cluster="c1", services=[name])["services"][0]


def test_delete_service_drains_then_turns_inactive(aws):
    client = aws["ecs"]
    with pytest.raises(ClientError) as info:
        client.delete_service(cluster="c1", service="web")
    assert _code(info) == "InvalidParameterException" and "scaled above 0" in str(info.value)
    deleted = client.delete_service(cluster="c1", service="web", force=True)["service"]
    assert (deleted["status"], deleted["desiredCount"]) == ("DRAINING", 0)
    assert (_svc(client)["status"], _svc(client)["desiredCount"]) == ("DRAINING", 0)
    assert _svc(client)["deployments"][0]["desiredCount"] == 0
    assert client.list_services(cluster="c1")["serviceArns"] == []          # no longer listed
    with pytest.raises(ClientError) as info:
        client.update_service(cluster="c1", service="web", desiredCount=1)
    assert _code(info) == "ServiceNotActiveException"
    again = client.delete_service(cluster="c1", service="web", force=True)["service"]   # as AWS: no error
    assert again == client.describe_services(cluster="c1", services=["web"], include=["TAGS"])["services"][0]
    assert again["status"] == "DRAINING"
    with pytest.raises(ClientError) as info:
        client.create_service(cluster="c1", serviceName="web", taskDefinition="web", desiredCount=1)
    assert _code(info) == "InvalidParameterException" and "Draining" in str(info.value)
    (handle,) = [s for s in ecs.iter_services() if s.name == "web"]
    assert not handle.active and handle.status == "DRAINING"
    handle.finish_draining()                 # what the data plane does once the tasks have stopped
    assert _svc(client)["status"] == "INACTIVE"
    assert client.delete_service(cluster="c1", service="web")["service"]["status"] == "INACTIVE"
    again = client.create_service(cluster="c1", serviceName="web", taskDefinition="web", desiredCount=1)
    assert again["service"]["status"] == "ACTIVE"
    assert len(client.list_services(cluster="c1")["serviceArns"]) == 1


def test_a_service_scaled_to_zero_deletes_without_force(aws):
    client = aws["ecs"]
    client.update_service(cluster="c1", service="web", desiredCount=0)
    assert client.delete_service(cluster="c1", service="web")["service"]["status"] == "DRAINING"


def test_set_desired_count_takes_the_update_service_path(aws):
    client = aws["ecs"]
    (handle,) = [s for s in ecs.iter_services() if s.name == "web"]
    handle.state.steady = True
    handle.set_desired_count(5)
    svc = _svc(client)
    assert svc["desiredCount"] == 5 and svc["deployments"][0]["desiredCount"] == 5
    assert len(svc["deployments"]) == 1 and handle.state.steady is False
