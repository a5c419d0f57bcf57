"""Application Auto Scaling in the emulator answers as AWS does (API reference:
https://docs.aws.amazon.com/autoscaling/application/APIReference/). moto in-process, patched."""

from __future__ import annotations

import pickle

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ship import oci
from ship.localcloud import emulator
from ship.localcloud.emulator import autoscaling

RID = "service/c1/web"
DIM = "ecs:service:DesiredCount"


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory):
    emulator.install(oci.BlobStore(tmp_path_factory.mktemp("blobs")))


@pytest.fixture
def aas(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    autoscaling.STORE.tags.clear()
    with mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        ecs.create_cluster(clusterName="c1")
        ecs.register_task_definition(family="web", containerDefinitions=[
            {"name": "web", "image": "nginx", "memory": 128}])
        for name in ("web", "api"):
            ecs.create_service(cluster="c1", serviceName=name, taskDefinition="web", desiredCount=0)
        yield boto3.client("application-autoscaling", region_name="us-east-1")


def _register(aas, rid=RID, **kw):
    args = {"ServiceNamespace": "ecs", "ResourceId": rid, "ScalableDimension": DIM, "MinCapacity": 1,
            "MaxCapacity": 4, **kw}
    return aas.register_scalable_target(**args)["ScalableTargetARN"]


def _target(aas, rid=RID):
    found = aas.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[rid], ScalableDimension=DIM)
    return found["ScalableTargets"]


def _tracking(metric: str, target: float = 50.0) -> dict:
    return {"TargetValue": target, "PredefinedMetricSpecification": {"PredefinedMetricType": metric},
            "ScaleInCooldown": 120, "ScaleOutCooldown": 30}


def _put(aas, name, metric, rid=RID):
    return aas.put_scaling_policy(PolicyName=name, ServiceNamespace="ecs", ResourceId=rid, ScalableDimension=DIM,
                                  PolicyType="TargetTrackingScaling",
                                  TargetTrackingScalingPolicyConfiguration=_tracking(metric))


def _code(info) -> str:
    return info.value.response["Error"]["Code"]


# -- pure rules ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("exists, lo, hi, old_lo, old_hi, problem", [
    (False, 1, 4, None, None, None),
    (False, None, 4, None, None, "required"),
    (False, 1, None, None, None, "required"),
    (False, 5, 4, None, None, "greater than maximum"),
    (False, -1, 4, None, None, "greater than or equal to 0"),
    (True, None, None, 1, 4, None),
    (True, 6, None, 1, 4, "greater than maximum"),
    (True, None, 0, 1, 4, "greater than maximum"),
    (True, 0, 0, 1, 4, None),
])
def test_capacity_rules(exists, lo, hi, old_lo, old_hi, problem):
    found = autoscaling.capacity_error(exists, lo, hi, old_lo, old_hi)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize("current, new, expected, problem", [
    ({}, {"a": "1"}, {"a": "1"}, None),
    ({"a": "1"}, {"a": "2", "b": "3"}, {"a": "2", "b": "3"}, None),
    ({}, {"aws:x": "1"}, None, "reserved"),
    ({f"k{i}": "v" for i in range(50)}, {"one-more": "v"}, None, "at most 50"),
])
def test_tag_rules(current, new, expected, problem):
    tags, found = autoscaling.merged_tags(current, new)
    assert tags == expected
    assert (found is None) if problem is None else (problem in found)


def test_service_linked_role_names():
    assert autoscaling.service_linked_role("ecs", "123456789012") == (
        "arn:aws:iam::123456789012:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_ECSService")
    assert autoscaling.service_linked_role("nosuch", "1") is None


# -- the API ------------------------------------------------------------------------------------------------------

def test_tags_through_the_api(aas):
    arn = _register(aas, Tags={"team": "web", "env": "local"})
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "web", "env": "local"}
    aas.tag_resource(ResourceARN=arn, Tags={"env": "prod", "owner": "me"})
    aas.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"env": "prod", "owner": "me"}
    missing = arn[:-4] + "zzzz"
    for call in (lambda: aas.list_tags_for_resource(ResourceARN=missing),
                 lambda: aas.tag_resource(ResourceARN=missing, Tags={"a": "b"}),
                 lambda: aas.untag_resource(ResourceARN=missing, TagKeys=["a"])):
        with pytest.raises(ClientError) as info:
            call()
        assert _code(info) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as info:
        aas.tag_resource(ResourceARN=arn, Tags={"aws:reserved": "x"})
    assert _code(info) == "ValidationException"


def test_register_answers_aws_defaults_and_updates_only_what_it_names(aas):
    arn = _register(aas)
    (t,) = _target(aas)
    assert t["RoleARN"].endswith("/ecs.application-autoscaling.amazonaws.com/"
                                 "AWSServiceRoleForApplicationAutoScaling_ECSService")
    assert t["SuspendedState"] == {"DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
                                   "ScheduledScalingSuspended": False}
    assert (t["MinCapacity"], t["MaxCapacity"]) == (1, 4)
    again = aas.register_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
                                         MaxCapacity=6, SuspendedState={"DynamicScalingInSuspended": True})
    assert again["ScalableTargetARN"] == arn
    (t,) = _target(aas)
    assert (t["MinCapacity"], t["MaxCapacity"]) == (1, 6)
    assert t["SuspendedState"] == {"DynamicScalingInSuspended": True, "DynamicScalingOutSuspended": False,
                                   "ScheduledScalingSuspended": False}


@pytest.mark.parametrize("kwargs", [{"MinCapacity": None}, {"MaxCapacity": None}, {"MinCapacity": 5}])
def test_register_validates_capacities(aas, kwargs):
    args = {"ServiceNamespace": "ecs", "ResourceId": RID, "ScalableDimension": DIM, "MinCapacity": 1,
            "MaxCapacity": 4, **kwargs}
    with pytest.raises(ClientError) as info:
        aas.register_scalable_target(**{k: v for k, v in args.items() if v is not None})
    assert _code(info) == "ValidationException"
    assert _target(aas) == []


def test_describe_scaling_policies_filters_by_name_and_exact_resource(aas):
    _register(aas)
    _register(aas, rid="service/c1/api")
    cpu = _put(aas, "cpu", "ECSServiceAverageCPUUtilization")["PolicyARN"]
    _put(aas, "memory", "ECSServiceAverageMemoryUtilization")
    _put(aas, "cpu", "ECSServiceAverageCPUUtilization", rid="service/c1/api")
    found = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
                                          PolicyNames=["cpu"])["ScalingPolicies"]
    assert [(p["PolicyName"], p["PolicyARN"]) for p in found] == [("cpu", cpu)]
    assert found[0]["TargetTrackingScalingPolicyConfiguration"] == _tracking("ECSServiceAverageCPUUtilization")
    both = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=RID)["ScalingPolicies"]
    assert sorted(p["PolicyName"] for p in both) == ["cpu", "memory"]
    # "service/c1/web" is not a prefix match for "service/c1/w"
    assert aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId="service/c1/w")["ScalingPolicies"] == []


def test_policy_update_keeps_arn_and_does_not_pile_up_alarms(aas):
    _register(aas)
    first = _put(aas, "cpu", "ECSServiceAverageCPUUtilization")
    second = _put(aas, "cpu", "ECSServiceAverageCPUUtilization")
    assert first["PolicyARN"] == second["PolicyARN"]
    alarms = boto3.client("cloudwatch", region_name="us-east-1").describe_alarms()["MetricAlarms"]
    assert len(alarms) == 2  # AlarmHigh + AlarmLow, as AWS creates for one target tracking policy


def test_policy_needs_a_registered_target(aas):
    with pytest.raises(ClientError) as info:
        _put(aas, "cpu", "ECSServiceAverageCPUUtilization")
    assert _code(info) == "ObjectNotFoundException"


def test_deregister_deletes_policies_alarms_and_tags_and_unknowns_are_not_found(aas):
    arn = _register(aas, Tags={"a": "b"})
    _put(aas, "cpu", "ECSServiceAverageCPUUtilization")
    aas.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM)
    assert _target(aas) == []
    assert aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=RID)["ScalingPolicies"] == []
    assert boto3.client("cloudwatch", region_name="us-east-1").describe_alarms()["MetricAlarms"] == []
    assert arn not in autoscaling.STORE.tags
    with pytest.raises(ClientError) as info:
        aas.deregister_scalable_target(ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM)
    assert _code(info) == "ObjectNotFoundException"
    with pytest.raises(ClientError) as info:
        aas.delete_scaling_policy(PolicyName="cpu", ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM)
    assert _code(info) == "ObjectNotFoundException"


def test_accessors_give_typed_picklable_views(aas):
    arn = _register(aas, Tags={"a": "b"})
    _put(aas, "cpu", "ECSServiceAverageCPUUtilization")
    aas.put_scaling_policy(PolicyName="alb", ServiceNamespace="ecs", ResourceId=RID, ScalableDimension=DIM,
                           PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
                               "TargetValue": 100.0, "PredefinedMetricSpecification": {
                                   "PredefinedMetricType": "ALBRequestCountPerTarget",
                                   "ResourceLabel": "app/lb/1/targetgroup/tg/2"}})
    (target,) = [t for t in autoscaling.scalable_targets("ecs") if t.arn == arn]
    assert (target.resource_id, target.min_capacity, target.max_capacity) == (RID, 1, 4)
    policies = {p.name: p for p in autoscaling.scaling_policies(target.account, target.region, RID)}
    assert policies["cpu"].metric_type == "ECSServiceAverageCPUUtilization"
    assert (policies["cpu"].scale_in_cooldown, policies["cpu"].scale_out_cooldown) == (120, 30)
    assert policies["alb"].resource_label == "app/lb/1/targetgroup/tg/2"
    assert (policies["alb"].scale_in_cooldown, policies["alb"].scale_out_cooldown) == (300, 300)
    restored = pickle.loads(pickle.dumps((autoscaling.STORE, target, policies)))
    assert restored[0].tags[arn] == {"a": "b"} and restored[1] == target and restored[2] == policies
