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
* ``DeleteScalingPolicy`` of an unknown policy is ``ObjectNotFoundException``.

Stored only, not acted on (yet): the data plane does not scale services by these policies.
The accessors ``scalable_targets`` and ``scaling_policies`` give it typed, picklable views.
Tags live beside moto in ``STORE`` (a dataclass of plain dicts, picklable).
"""

from __future__ import annotations

import functools
import json
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
]

# Stored, not acted on yet: the data plane does not scale services by these policies (emulator/coverage.py).
ACTED_ON: set[str] = set()

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


@dataclass
class AutoScalingStore:
    """What the emulator keeps beside moto: tags by scalable target ARN."""

    tags: dict[str, dict[str, str]] = field(default_factory=dict)


STORE = emulator.keep("autoscaling", AutoScalingStore(), version=1)


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
    return TargetTrackingPolicy(
        account=account, region=region, name=policy.policy_name, arn=policy.policy_arn,
        resource_id=policy.resource_id, dimension=policy.scalable_dimension,
        target_value=float(cfg.get("TargetValue", 0.0)),
        metric_type=predefined.get("PredefinedMetricType"), resource_label=predefined.get("ResourceLabel"),
        scale_in_cooldown=int(cfg.get("ScaleInCooldown", 300)),
        scale_out_cooldown=int(cfg.get("ScaleOutCooldown", 300)),
        disable_scale_in=bool(cfg.get("DisableScaleIn", False)))


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


_RESPONSE_PATCHES = (register_scalable_target, deregister_scalable_target, describe_scaling_policies,
                     delete_scaling_policy, list_tags_for_resource, tag_resource, untag_resource)


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
