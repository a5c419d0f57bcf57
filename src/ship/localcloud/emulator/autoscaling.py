"""Application Auto Scaling in the emulator: the API answers as AWS does, so Terraform's
``aws_appautoscaling_target`` / ``aws_appautoscaling_policy`` apply and plan clean.

What moto 5.2.5 lacks or answers differently, and what is patched here (AWS API reference:
https://docs.aws.amazon.com/autoscaling/application/APIReference/):

* tags: ``ListTagsForResource`` / ``TagResource`` / ``UntagResource`` on scalable targets, and the
  ``Tags`` of ``RegisterScalableTarget`` (moto: not implemented, an HTML 500 the provider retried
  for 48 minutes);
* ``RegisterScalableTarget``: a new target needs MinCapacity and MaxCapacity, min <= max; the
  answer carries AWS's defaults: the service-linked role as ``RoleARN`` and a ``SuspendedState``
  with the three flags false; a later call changes only what it names (SuspendedState flags too);
* ``DeregisterScalableTarget`` also deletes the target's scaling policies (and their alarms),
  scheduled actions and tags; an unknown target is ``ObjectNotFoundException``;
* ``DescribeScalingPolicies`` honours ``PolicyNames`` and matches ResourceId and ScalableDimension
  exactly (moto: substring match and no name filter, so a provider reading "policy[0]" got the
  wrong one when a service had two);
* ``PutScalingPolicy`` needs a registered target (``ObjectNotFoundException``); updating a policy
  keeps its ARN and creation time and replaces its alarms instead of adding more;
* ``DeleteScalingPolicy`` of an unknown policy is ``ObjectNotFoundException``;
* the CloudWatch alarms of an ECS target tracking policy are the ones AWS creates: ``AlarmHigh``
  above the target for 3 one-minute datapoints, ``AlarmLow`` below 90 % of it for 15, on the
  policy's metric (``CPUUtilization``, ``MemoryUtilization``, or the target group's
  ``RequestCountPerTarget``) (moto: threshold 6 and CPU for every metric);
* ``DescribeScalingActivities`` (moto: not implemented) answers the activities the data plane
  recorded (``record_activity``), newest first, not-scaled ones with ``IncludeNotScaledActivities``.

Acted on: the fargate data plane (``fargate/autoscaler.py``) scales ECS services by their
target tracking policies within the target's capacities and suspended state, and records each
scaling as an activity. Step scaling policies and scheduled actions are stored only.
The accessors ``scalable_targets`` and ``scaling_policies`` give it typed, picklable views.
Tags, activities and the scaler's memory live beside moto in ``STORE`` (dataclasses of plain
values, picklable, wall-clock times).
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ship.localcloud import emulator
from ship.localcloud.emulator.compat import backends as _backends

PATCHES = [
    "application-autoscaling: ListTagsForResource/TagResource/UntagResource and RegisterScalableTarget Tags",
    "application-autoscaling: RegisterScalableTarget validates capacities and answers AWS's defaults "
    "(service-linked RoleARN, SuspendedState flags false)",
    "application-autoscaling: DeregisterScalableTarget deletes the target's policies, alarms, scheduled "
    "actions and tags; unknown targets and policies are ObjectNotFoundException",
    "application-autoscaling: DescribeScalingPolicies filters by PolicyNames and exact ResourceId/dimension",
    "application-autoscaling: PutScalingPolicy needs a registered target; an update keeps the policy ARN",
    "application-autoscaling: ECS target tracking alarms with AWS's thresholds and metrics (AlarmHigh/AlarmLow)",
    "application-autoscaling: DescribeScalingActivities answers the data plane's scaling activities",
]

# What the fargate data plane acts on (fargate/autoscaler.py; the coverage table is generated from this):
# ECS targets' capacities and suspended state, target tracking policies, and the activities they cause.
ACTED_ON = frozenset({"RegisterScalableTarget", "DeregisterScalableTarget", "PutScalingPolicy",
                      "DeleteScalingPolicy", "DescribeScalingActivities"})

# What the service-linked roles are called, per namespace (Application Auto Scaling user guide,
# "Service-linked roles for Application Auto Scaling").
_SERVICE_LINKED_ROLES = {
    "ecs": ("ecs", "ECSService"),
    "dynamodb": ("dynamodb", "DynamoDBTable"),
    "rds": ("rds", "RDSCluster"),
    "lambda": ("lambda", "LambdaConcurrency"),
    "appstream": ("appstream", "AppStreamFleet"),
    "sagemaker": ("sagemaker", "SageMakerEndpoint"),
    "ec2": ("ec2", "EC2SpotFleetRequest"),
    "elasticmapreduce": ("elasticmapreduce", "EMRInstanceGroup"),
    "comprehend": ("comprehend", "ComprehendEndpoint"),
    "kafka": ("kafka", "KafkaCluster"),
    "cassandra": ("cassandra", "CassandraTable"),
    "custom-resource": ("custom-resource", "CustomResource"),
}
SUSPENDED_DEFAULT = {"DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
                     "ScheduledScalingSuspended": False}
MAX_TAGS = 50
KEEP_ACTIVITIES = 100                 # per scalable target (AWS keeps six weeks of them)
ACTIVITY_TTL = 42 * 24 * 3600.0
MAX_RESULTS = 50                      # DescribeScalingActivities MaxResults: 1 to 50, default 50


@dataclass(frozen=True)
class NotScaledReason:
    """Why an activity did not scale (API_NotScaledReason)."""

    code: str
    max_capacity: int | None = None
    min_capacity: int | None = None
    current_capacity: int | None = None


@dataclass(frozen=True)
class ScalingActivity:
    """One scaling activity (API_ScalingActivity); times are epoch seconds."""

    activity_id: str
    namespace: str
    resource_id: str
    dimension: str
    description: str
    cause: str
    start_time: float
    end_time: float | None
    status_code: str                  # Successful | Failed | ...
    status_message: str
    not_scaled: tuple[NotScaledReason, ...] = ()


@dataclass
class ScalingMemory:
    """The scaler's memory of one scalable target between evaluations (wall clock)."""

    last_scale_out: float | None = None
    scale_out_from: int | None = None
    last_scale_in: float | None = None


@dataclass
class AutoScalingStore:
    """What the emulator keeps beside moto: tags by scalable target ARN; activities and the
    scaler's memory by ``target_key``."""

    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    activities: dict[str, list[ScalingActivity]] = field(default_factory=dict)   # newest first
    memory: dict[str, ScalingMemory] = field(default_factory=dict)


STORE = emulator.keep("autoscaling", AutoScalingStore(), version=2)


def target_key(account: str, region: str, namespace: str, resource_id: str, dimension: str) -> str:
    return "|".join((account, region, namespace, resource_id, dimension))


@dataclass(frozen=True)
class ScalableTarget:
    """A scalable target as the data plane needs it."""

    account: str
    region: str
    namespace: str
    resource_id: str
    dimension: str
    min_capacity: int
    max_capacity: int
    arn: str
    dynamic_scaling_in_suspended: bool = False
    dynamic_scaling_out_suspended: bool = False
    scheduled_scaling_suspended: bool = False


@dataclass(frozen=True)
class TargetTrackingPolicy:
    """A target tracking policy as the data plane needs it (cooldowns in seconds; AWS's default is 300 for
    ECS when the policy names none)."""

    account: str
    region: str
    name: str
    arn: str
    resource_id: str
    dimension: str
    target_value: float
    metric_type: str | None          # ECSServiceAverageCPUUtilization, ... ; None for a customized metric
    resource_label: str | None       # for ALBRequestCountPerTarget: app/<lb>/<id>/targetgroup/<tg>/<id>
    scale_in_cooldown: int
    scale_out_cooldown: int
    disable_scale_in: bool
    alarm_high: str = ""             # the names of the policy's two alarms (for activities' Cause)
    alarm_low: str = ""


# -- pure rules ----------------------------------------------------------------------------------------------

def service_linked_role(namespace: str, account: str) -> str | None:
    entry = _SERVICE_LINKED_ROLES.get(namespace)
    if entry is None:
        return None
    prefix, suffix = entry
    return (f"arn:aws:iam::{account}:role/aws-service-role/{prefix}.application-autoscaling.amazonaws.com/"
            f"AWSServiceRoleForApplicationAutoScaling_{suffix}")


def capacity_error(exists: bool, min_capacity: int | None, max_capacity: int | None,
                   old_min: int | None = None, old_max: int | None = None) -> str | None:
    """The ValidationException message for a RegisterScalableTarget call, or None."""
    if not exists and (min_capacity is None or max_capacity is None):
        return "MinCapacity and MaxCapacity are required when registering a new scalable target"
    for name, value in (("minCapacity", min_capacity), ("maxCapacity", max_capacity)):
        if value is not None and value < 0:
            return f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: " \
                   "Member must have value greater than or equal to 0"
    low = min_capacity if min_capacity is not None else old_min
    high = max_capacity if max_capacity is not None else old_max
    if low is not None and high is not None and low > high:
        return "Minimum capacity cannot be greater than maximum capacity"
    return None


def merged_tags(current: dict[str, str], new: dict[str, str]) -> tuple[dict[str, str] | None, str | None]:
    """(tags after TagResource, error message)."""
    for key in new:
        if key.lower().startswith("aws:"):
            return None, f"Tag keys starting with 'aws:' are reserved for AWS use: {key}"
    result = {**current, **new}
    if len(result) > MAX_TAGS:
        return None, f"A scalable target can have at most {MAX_TAGS} tags"
    return result, None


def tracking_policy(policy: Any, account: str, region: str) -> TargetTrackingPolicy | None:
    """The typed view of a moto policy, or None when it is not target tracking."""
    cfg = getattr(policy, "target_tracking_scaling_policy_configuration", None)
    if policy.policy_type != "TargetTrackingScaling" or not cfg:
        return None
    predefined = cfg.get("PredefinedMetricSpecification") or {}
    alarms = [getattr(a, "name", "") for a in getattr(policy, "alarms", None) or []]
    return TargetTrackingPolicy(
        account=account, region=region, name=policy.policy_name, arn=policy.policy_arn,
        resource_id=policy.resource_id, dimension=policy.scalable_dimension,
        target_value=float(cfg.get("TargetValue", 0.0)),
        metric_type=predefined.get("PredefinedMetricType"), resource_label=predefined.get("ResourceLabel"),
        scale_in_cooldown=int(cfg.get("ScaleInCooldown", 300)),
        scale_out_cooldown=int(cfg.get("ScaleOutCooldown", 300)),
        disable_scale_in=bool(cfg.get("DisableScaleIn", False)),
        alarm_high=next((a for a in alarms if "-AlarmHigh-" in a), ""),
        alarm_low=next((a for a in alarms if "-AlarmLow-" in a), ""))


def activity_json(a: ScalingActivity) -> dict:
    body: dict[str, Any] = {
        "ActivityId": a.activity_id, "ServiceNamespace": a.namespace, "ResourceId": a.resource_id,
        "ScalableDimension": a.dimension, "Description": a.description, "Cause": a.cause,
        "StartTime": a.start_time, "StatusCode": a.status_code, "StatusMessage": a.status_message,
    }
    if a.end_time is not None:
        body["EndTime"] = a.end_time
    if a.not_scaled:
        body["NotScaledReasons"] = [
            {k: v for k, v in (("Code", r.code), ("MaxCapacity", r.max_capacity), ("MinCapacity", r.min_capacity),
                               ("CurrentCapacity", r.current_capacity)) if v is not None}
            for r in a.not_scaled]
    return body


def kept(activities: list[ScalingActivity], now: float) -> list[ScalingActivity]:
    """The activities still kept: the newest KEEP_ACTIVITIES within ACTIVITY_TTL."""
    return [a for a in activities if now - a.start_time < ACTIVITY_TTL][:KEEP_ACTIVITIES]


# -- the patches ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _errors():
    """(ValidationException, ObjectNotFoundException, ResourceNotFoundException) as moto serialises them."""
    from moto.applicationautoscaling.exceptions import AWSValidationException
    from moto.core.exceptions import JsonRESTError

    class ObjectNotFoundException(JsonRESTError):
        def __init__(self, message: str) -> None:
            super().__init__("ObjectNotFoundException", message)

    class ResourceNotFoundException(JsonRESTError):
        def __init__(self, message: str) -> None:
            super().__init__("ResourceNotFoundException", message)

    return AWSValidationException, ObjectNotFoundException, ResourceNotFoundException


def _models():
    from moto.applicationautoscaling import models

    return models


def _target_by_arn(backend, arn: str):
    for per_resource in backend.targets.values():
        for target in per_resource.values():
            if target.arn == arn:
                return target
    return None


def _find_target(backend, resource_id: str, dimension: str):
    return backend.targets.get(dimension, {}).get(resource_id)


def _no_target(namespace: str, resource_id: str, dimension: str):
    return _errors()[1](f"No scalable target registered for service namespace: {namespace}, "
                        f"resource ID: {resource_id}, scalable dimension: {dimension}")


def _tags_list_to_dict(tags) -> dict[str, str]:
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {}


_ORIGINAL: dict[str, Any] = {}   # moto's own functions that the patches call


# -- the patched response handlers (``self`` is moto's ApplicationAutoScalingResponse) ---------------------------

def register_scalable_target(self):
    self._validate_params()
    backend = self.applicationautoscaling_backend
    resource_id, dimension = self._get_param("ResourceId"), self._get_param("ScalableDimension")
    existing = _find_target(backend, resource_id, dimension)
    problem = capacity_error(existing is not None, self._get_int_param("MinCapacity"),
                             self._get_int_param("MaxCapacity"), getattr(existing, "min_capacity", None),
                             getattr(existing, "max_capacity", None))
    if problem:
        raise _errors()[0](problem)
    old_suspended = dict(existing.suspended_state or SUSPENDED_DEFAULT) if existing is not None else None
    body = _ORIGINAL["register_scalable_target"](self)
    target = _find_target(backend, resource_id, dimension)
    if existing is None:
        target.role_arn = target.role_arn or service_linked_role(target.service_namespace, backend.account_id)
        target.suspended_state = {**SUSPENDED_DEFAULT, **(target.suspended_state or {})}
        tags = _tags_list_to_dict(self._get_param("Tags"))
        if tags:
            STORE.tags[target.arn] = tags
    else:
        target.suspended_state = {**old_suspended, **(self._get_param("SuspendedState") or {})}
        if self._get_param("RoleARN"):
            target.role_arn = self._get_param("RoleARN")
    return body


def deregister_scalable_target(self):
    self._validate_params()
    backend = self.applicationautoscaling_backend
    namespace = self._get_param("ServiceNamespace")
    resource_id, dimension = self._get_param("ResourceId"), self._get_param("ScalableDimension")
    target = _find_target(backend, resource_id, dimension)
    if target is None or target.service_namespace != namespace:
        raise _no_target(namespace, resource_id, dimension)
    for key, policy in list(backend.policies.items()):
        if policy.resource_id == resource_id and policy.scalable_dimension == dimension:
            policy.delete_alarms(backend.account_id, backend.region_name)
            del backend.policies[key]
    backend.scheduled_actions = [a for a in backend.scheduled_actions
                                 if not (a.resource_id == resource_id and a.scalable_dimension == dimension)]
    del backend.targets[dimension][resource_id]
    STORE.tags.pop(target.arn, None)
    STORE.memory.pop(target_key(backend.account_id, backend.region_name, namespace, resource_id, dimension), None)
    return json.dumps({})


def describe_scaling_policies(self):
    self._validate_params()
    backend = self.applicationautoscaling_backend
    names = self._get_param("PolicyNames") or []
    resource_id, dimension = self._get_param("ResourceId"), self._get_param("ScalableDimension")
    found = [p for p in backend.policies.values()
             if p.service_namespace == self._get_param("ServiceNamespace")
             and (not resource_id or p.resource_id == resource_id)
             and (not dimension or p.scalable_dimension == dimension)
             and (not names or p.policy_name in names)]
    start = int(self._get_param("NextToken") or 0)
    size = self._get_int_param("MaxResults") or 10
    from moto.applicationautoscaling.responses import _build_policy

    body = {"ScalingPolicies": [_build_policy(p) for p in found[start:start + size]]}
    if start + size < len(found):
        body["NextToken"] = str(start + size)
    return json.dumps(body)


def delete_scaling_policy(self):
    backend = self.applicationautoscaling_backend
    args = {k: self._get_param(v) for k, v in (("policy_name", "PolicyName"),
                                               ("service_namespace", "ServiceNamespace"),
                                               ("resource_id", "ResourceId"),
                                               ("scalable_dimension", "ScalableDimension"))}
    key = _models().FakeApplicationAutoscalingPolicy.formulate_key(
        args["service_namespace"], args["resource_id"], args["scalable_dimension"], args["policy_name"])
    if key not in backend.policies:
        raise _errors()[1](f"No scaling policy found for service namespace: {args['service_namespace']}, "
                           f"resource ID: {args['resource_id']}, scalable dimension: "
                           f"{args['scalable_dimension']}, policy name: {args['policy_name']}")
    backend.delete_scaling_policy(**args)
    return json.dumps({})


def _target_or_404(self):
    arn = self._get_param("ResourceARN")
    target = _target_by_arn(self.applicationautoscaling_backend, arn or "")
    if target is None:
        raise _errors()[2](f"The resource {arn} does not exist")
    return target


def list_tags_for_resource(self):
    target = _target_or_404(self)
    return json.dumps({"Tags": dict(STORE.tags.get(target.arn, {}))})


def tag_resource(self):
    target = _target_or_404(self)
    tags, problem = merged_tags(STORE.tags.get(target.arn, {}), _tags_list_to_dict(self._get_param("Tags")))
    if problem:
        raise _errors()[0](problem)
    STORE.tags[target.arn] = tags
    return json.dumps({})


def untag_resource(self):
    target = _target_or_404(self)
    keys = set(self._get_param("TagKeys") or [])
    STORE.tags[target.arn] = {k: v for k, v in STORE.tags.get(target.arn, {}).items() if k not in keys}
    return json.dumps({})


def describe_scaling_activities(self):
    self._validate_params()
    backend = self.applicationautoscaling_backend
    namespace = self._get_param("ServiceNamespace")
    resource_id, dimension = self._get_param("ResourceId"), self._get_param("ScalableDimension")
    if dimension and not resource_id:
        raise _errors()[0]("ResourceId is required when ScalableDimension is specified")
    size = self._get_int_param("MaxResults") or MAX_RESULTS
    if not 1 <= size <= MAX_RESULTS:
        raise _errors()[0](f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy "
                           f"constraint: Member must have value less than or equal to {MAX_RESULTS}")
    include = bool(self._get_param("IncludeNotScaledActivities", False))
    prefix = "|".join((backend.account_id, backend.region_name, namespace or "")) + "|"
    now = time.time()
    found = [a for key, acts in STORE.activities.items() if key.startswith(prefix)
             for a in kept(acts, now)
             if (not resource_id or a.resource_id == resource_id) and (not dimension or a.dimension == dimension)
             and (include or not a.not_scaled)]
    found.sort(key=lambda a: a.start_time, reverse=True)
    try:
        start = int(self._get_param("NextToken") or 0)
    except ValueError:
        raise _errors()[0]("Invalid NextToken") from None
    body: dict[str, Any] = {"ScalingActivities": [activity_json(a) for a in found[start:start + size]]}
    if start + size < len(found):
        body["NextToken"] = str(start + size)
    return json.dumps(body)


# -- the patched backend method (``self`` is moto's ApplicationAutoscalingBackend) ----------------------------------

def put_scaling_policy(self, policy_name, service_namespace, resource_id, scalable_dimension, policy_body,
                       policy_type):
    target = _find_target(self, resource_id, scalable_dimension)
    if target is None or target.service_namespace != service_namespace:
        raise _no_target(service_namespace, resource_id, scalable_dimension)
    key = _models().FakeApplicationAutoscalingPolicy.formulate_key(
        service_namespace, resource_id, scalable_dimension, policy_name)
    old = self.policies.get(key)
    if old is not None:
        old.delete_alarms(self.account_id, self.region_name)
    policy = _ORIGINAL["put_scaling_policy"](self, policy_name, service_namespace, resource_id,
                                             scalable_dimension, policy_body, policy_type)
    if old is not None:
        policy.policy_arn, policy.creation_time = old.policy_arn, old.creation_time
    return policy


# -- the patched policy method (``self`` is moto's FakeApplicationAutoscalingPolicy) ---------------------------------

ALARM_PERIOD = 60
ALARM_HIGH_PERIODS, ALARM_LOW_PERIODS, ALARM_LOW_FACTOR = 3, 15, 0.9     # as fargate/tracking.py


def ecs_alarm_metric(resource_id: str, config: dict) -> dict:
    """Namespace, metric, dimensions and statistic of an ECS target tracking policy's alarms."""
    predefined = config.get("PredefinedMetricSpecification") or {}
    kind = predefined.get("PredefinedMetricType", "")
    parts = resource_id.split("/")
    service = [{"Name": "ClusterName", "Value": parts[1] if len(parts) > 2 else ""},
               {"Name": "ServiceName", "Value": parts[-1]}]
    if kind == "ALBRequestCountPerTarget":
        label = predefined.get("ResourceLabel") or ""
        group = label[label.find("targetgroup/"):] if "targetgroup/" in label else label
        return {"namespace": "AWS/ApplicationELB", "metric_name": "RequestCountPerTarget", "statistic": "Sum",
                "unit": None, "dimensions": [{"Name": "TargetGroup", "Value": group}]}
    if kind:
        name = "MemoryUtilization" if kind == "ECSServiceAverageMemoryUtilization" else "CPUUtilization"
        return {"namespace": "AWS/ECS", "metric_name": name, "statistic": "Average", "unit": "Percent",
                "dimensions": service}
    custom = config.get("CustomizedMetricSpecification") or {}
    return {"namespace": custom.get("Namespace", ""), "metric_name": custom.get("MetricName", ""),
            "statistic": custom.get("Statistic", "Average"), "unit": custom.get("Unit"),
            "dimensions": list(custom.get("Dimensions") or [])}


def generate_ecs_alarms(self) -> list:
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch = cloudwatch_backends[self.account_id][self.region_name]
    config = self.target_tracking_scaling_policy_configuration or {}
    target = float(config.get("TargetValue", 0.0))
    metric = ecs_alarm_metric(self.resource_id, config)
    action = f"{self.policy_arn}:createdBy/{uuid.uuid4()}"
    alarms = []
    for kind, operator, periods, threshold in (
            ("AlarmHigh", "GreaterThanThreshold", ALARM_HIGH_PERIODS, target),
            ("AlarmLow", "LessThanThreshold", ALARM_LOW_PERIODS, round(target * ALARM_LOW_FACTOR, 6))):
        if kind == "AlarmLow" and config.get("DisableScaleIn"):
            continue          # AWS makes no scale-in alarm for a policy that never scales in
        alarms.append(cloudwatch.put_metric_alarm(
            name=f"TargetTracking-{self.resource_id}-{kind}-{uuid.uuid4()}", comparison_operator=operator,
            evaluation_periods=periods, datapoints_to_alarm=periods, period=ALARM_PERIOD, threshold=threshold,
            description=f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {action}.",
            alarm_actions=[action], metric_data_queries=[], **metric))
    return alarms


# -- installing ----------------------------------------------------------------------------------------------------

_RESPONSE_PATCHES = (register_scalable_target, deregister_scalable_target, describe_scaling_policies,
                     delete_scaling_policy, list_tags_for_resource, tag_resource, untag_resource,
                     describe_scaling_activities)


def install() -> None:
    from moto.applicationautoscaling import responses

    Resp, Backend = responses.ApplicationAutoScalingResponse, _models().ApplicationAutoscalingBackend
    if getattr(Resp, "_ship_patched", False):
        return
    _ORIGINAL["register_scalable_target"] = Resp.register_scalable_target
    _ORIGINAL["put_scaling_policy"] = Backend.put_scaling_policy
    for fn in _RESPONSE_PATCHES:
        setattr(Resp, fn.__name__, fn)
    setattr(Backend, "put_scaling_policy", put_scaling_policy)
    setattr(_models().FakeApplicationAutoscalingPolicy, "_generate_ecs_alarms", generate_ecs_alarms)
    setattr(Resp, "_ship_patched", True)


# -- accessors for the data plane ------------------------------------------------------------------------------

def scalable_targets(namespace: str = "ecs") -> list[ScalableTarget]:
    """Every registered target of the namespace, in every account and region."""
    from moto.applicationautoscaling.models import applicationautoscaling_backends

    out = []
    for account, region, backend in _backends(applicationautoscaling_backends):
        for per_resource in backend.targets.values():
            for t in per_resource.values():
                if t.service_namespace != namespace:
                    continue
                s = {**SUSPENDED_DEFAULT, **(t.suspended_state or {})}
                out.append(ScalableTarget(
                    account=account, region=region, namespace=t.service_namespace, resource_id=t.resource_id,
                    dimension=t.scalable_dimension, min_capacity=int(t.min_capacity or 0),
                    max_capacity=int(t.max_capacity or 0), arn=t.arn,
                    dynamic_scaling_in_suspended=bool(s["DynamicScalingInSuspended"]),
                    dynamic_scaling_out_suspended=bool(s["DynamicScalingOutSuspended"]),
                    scheduled_scaling_suspended=bool(s["ScheduledScalingSuspended"])))
    return out


def scaling_policies(account: str, region: str, resource_id: str,
                     dimension: str = "ecs:service:DesiredCount") -> list[TargetTrackingPolicy]:
    """The target tracking policies of one scalable target."""
    from moto.applicationautoscaling.models import applicationautoscaling_backends

    # dict.get, not BackendDict's own get, which would create the backend
    per_region: dict[str, Any] = dict.get(applicationautoscaling_backends, account) or {}  # type: ignore[arg-type]
    backend = dict.get(per_region, region)
    if backend is None:
        return []
    views = (tracking_policy(p, account, region) for p in backend.policies.values()
             if p.resource_id == resource_id and p.scalable_dimension == dimension)
    return [v for v in views if v is not None]


def record_activity(account: str, region: str, activity: ScalingActivity) -> None:
    """Keep a scaling activity the data plane caused (newest first, bounded)."""
    key = target_key(account, region, activity.namespace, activity.resource_id, activity.dimension)
    STORE.activities[key] = kept([activity] + STORE.activities.get(key, []), time.time())


def last_activity(account: str, region: str, namespace: str, resource_id: str,
                  dimension: str) -> ScalingActivity | None:
    found = STORE.activities.get(target_key(account, region, namespace, resource_id, dimension)) or []
    return found[0] if found else None


def new_activity_id() -> str:
    return str(uuid.uuid4())


def scaling_memory(account: str, region: str, namespace: str, resource_id: str, dimension: str) -> ScalingMemory:
    key = target_key(account, region, namespace, resource_id, dimension)
    memory = STORE.memory.get(key)
    if memory is None:
        memory = STORE.memory[key] = ScalingMemory()
    return memory
