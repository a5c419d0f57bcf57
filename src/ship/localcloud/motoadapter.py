"""Every touch of moto's internals lives here.

The rest of the local cloud sees the emulator through this module only: it
patches moto where moto does not behave like AWS (listed in ``PATCHES``), and
offers small accessors and wrappers for the data plane.

Concurrency: moto serves API requests on threads while the data plane changes
the same objects. ``LOCK`` serialises both: the WSGI wrapper holds it for each
request and the data plane holds it for each state step. Never hold it while
waiting on I/O.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Iterator

import moto

MOTO_MIN = (5, 2, 5)
MOTO_MAX_EXCLUSIVE = (5, 3)

LOCK = threading.RLock()

PATCHES = [
    "ecs: create_service stores deploymentConfiguration, healthCheckGracePeriodSeconds, "
    "enableECSManagedTags, enableExecuteCommand, availabilityZoneRebalancing, placement* "
    "and echoes them (with AWS defaults) in describe_services",
    "ecs: update_service starts a real deployment on a new taskDefinition or forceNewDeployment, "
    "keeps counts truthful, resolves taskDefinition to its ARN",
    "ecs: services carry createdAt/createdBy and ECS-like events",
    "ecs: list_tasks filters by serviceName and defaults to desiredStatus RUNNING (as ECS)",
    "ecs: stop_task on a data-plane task asks the data plane to stop it (stopCode UserInitiated)",
    "elbv2: targets are keyed by Id+Port (moto keyed by Id only, so 127.0.0.1:A replaced 127.0.0.1:B)",
    "elbv2: describe_target_health reports health-checked states (initial/healthy/unhealthy/"
    "draining/unused) instead of always healthy",
    "ecr: complete_layer_upload keeps the uploaded bytes in a BlobStore; a digest mismatch is rejected",
    "ecr: put_image without imageDigest uses sha256 of the manifest bytes (as ECR), not of layer digests",
]


def moto_version() -> tuple[int, ...]:
    parts = []
    for piece in moto.__version__.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_version() -> None:
    from ship.errors import ShipError

    v = moto_version()
    if not (MOTO_MIN <= v < MOTO_MAX_EXCLUSIVE):
        raise ShipError(
            f"the local cloud needs moto >= 5.2.5 and < 5.3 (found {moto.__version__}); "
            "install the project's dev dependencies"
        )


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------
# imports of moto internals (kept together so the tests can check them)
# --------------------------------------------------------------------------

def _moto():
    from moto.ecr import models as ecr_models
    from moto.ecs import models as ecs_models
    from moto.ecs import responses as ecs_responses
    from moto.elbv2 import models as elbv2_models
    from moto.logs import models as logs_models

    return ecs_models, ecs_responses, elbv2_models, ecr_models, logs_models


def _backends(backend_dict) -> Iterator[tuple[str, str, Any]]:
    """(account, region, backend) for every backend moto has created."""
    for account, per_region in list(dict.items(backend_dict)):
        for region, backend in list(dict.items(per_region)):
            yield account, region, backend


# --------------------------------------------------------------------------
# ECS tasks run by the data plane
# --------------------------------------------------------------------------

class LocalTask:
    """A task the data plane really runs, shaped like ECS's Task for moto's
    serializer (snake_case attributes, camelCase nested dicts)."""

    def __init__(self, *, cluster, task_definition, service_name: str, deployment_id: str,
                 launch_type: str, account_id: str, region: str, platform_version: str | None):
        self.id = uuid.uuid4().hex
        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.region_name = region
        self.account_id = account_id
        self.task_arn = f"arn:aws:ecs:{region}:{account_id}:task/{cluster.name}/{self.id}"
        self.task_definition_arn = task_definition.arn
        self.container_instance_arn = None
        self.group = f"service:{service_name}"
        self.started_by = deployment_id
        self.launch_type = launch_type or "FARGATE"
        self.platform_version = platform_version or ("1.4.0" if self.launch_type == "FARGATE" else None)
        self.platform_family = "Linux"
        self.cpu = task_definition.cpu
        self.memory = task_definition.memory
        self.desired_status = "RUNNING"
        self.last_status = "PROVISIONING"
        self.health_status = "UNKNOWN"
        self.connectivity = "CONNECTED"
        self.availability_zone = f"{region}a"
        self.created_at = utcnow()
        self.connectivity_at = self.created_at
        self.pull_started_at = None
        self.pull_stopped_at = None
        self.started_at = None
        self.stopping_at = None
        self.stopped_at = None
        self.execution_stopped_at = None
        self.stopped_reason = None
        self.stop_code = None
        self.version = 1
        self.overrides = {"containerOverrides": [], "inferenceAcceleratorOverrides": []}
        self.tags: list = []
        self.enable_execute_command = False
        self.eni_id = "eni-" + self.id[:17]
        self.attachments = [{
            "id": str(uuid.uuid4()),
            "type": "ElasticNetworkInterface",
            "status": "PRECREATED",
            "details": [{"name": "networkInterfaceId", "value": self.eni_id},
                        {"name": "privateIPv4Address", "value": "127.0.0.1"}],
        }]
        self.containers = []
        for cdef in task_definition.container_definitions:
            self.containers.append({
                "containerArn": f"arn:aws:ecs:{region}:{account_id}:container/{cluster.name}/{self.id}/{uuid.uuid4()}",
                "taskArn": self.task_arn,
                "name": cdef.get("name"),
                "image": cdef.get("image"),
                "lastStatus": "PENDING",
                "networkBindings": [],
                "networkInterfaces": [{"attachmentId": self.attachments[0]["id"],
                                       "privateIpv4Address": "127.0.0.1"}],
                "healthStatus": "UNKNOWN",
                "cpu": str(cdef.get("cpu", 0)),
                "memory": str(cdef["memory"]) if cdef.get("memory") else None,
            })

    # moto's describe_tasks calls this on every task it returns
    def advance(self) -> None:
        pass

    @property
    def task_id(self) -> str:
        return self.id

    def set_listening(self, port: int, container_port: int | None) -> None:
        """Record where the task listens (127.0.0.1:<port>), as ENI details and bindings."""
        self.attachments[0]["status"] = "ATTACHED"
        details = self.attachments[0]["details"]
        if not any(d["name"] == "hostPort" for d in details):
            details.append({"name": "hostPort", "value": str(port)})
        for c in self.containers:
            c["networkBindings"] = [{"bindIP": "127.0.0.1", "containerPort": container_port or port,
                                     "hostPort": port, "protocol": "tcp"}]


# --------------------------------------------------------------------------
# ECS services
# --------------------------------------------------------------------------

_ECHO_PARAMS = {
    # request key -> attribute moto's serializer reads
    "deploymentConfiguration": "deployment_configuration",
    "healthCheckGracePeriodSeconds": "health_check_grace_period_seconds",
    "enableECSManagedTags": "enable_ecs_managed_tags",
    "enableExecuteCommand": "enable_execute_command",
    "availabilityZoneRebalancing": "availability_zone_rebalancing",
    "placementConstraints": "placement_constraints",
    "placementStrategy": "placement_strategy",
    "capacityProviderStrategy": "capacity_provider_strategy",
}


def _default_deployment_configuration(given: dict | None, previous: dict | None = None) -> dict:
    conf = copy.deepcopy(previous) if previous else {}
    for k, v in (given or {}).items():
        conf[k] = copy.deepcopy(v)
    conf.setdefault("deploymentCircuitBreaker", {"enable": False, "rollback": False})
    conf["deploymentCircuitBreaker"].setdefault("enable", False)
    conf["deploymentCircuitBreaker"].setdefault("rollback", False)
    conf.setdefault("maximumPercent", 200)
    conf.setdefault("minimumHealthyPercent", 100)
    return conf


def _new_deployment(svc, task_definition_arn: str) -> dict:
    now = utcnow()
    dep_id = "ecs-svc/" + "".join(str(uuid.uuid4().int)[:19])
    dep = {
        "id": dep_id,
        "status": "PRIMARY",
        "taskDefinition": task_definition_arn,
        "desiredCount": svc.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": svc.launch_type,
        "platformVersion": svc.platform_version or ("LATEST" if svc.launch_type == "FARGATE" else None),
        "platformFamily": "Linux" if svc.launch_type == "FARGATE" else None,
        "networkConfiguration": svc.network_configuration or None,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": "ECS deployment " + dep_id + " in progress.",
    }
    return dep


def _ship(svc) -> dict:
    """Data-plane bookkeeping kept on the moto Service (never serialized)."""
    st = svc.__dict__.get("_ship")
    if st is None:
        st = {"last_completed_task_definition": None, "steady": False, "rollback_from": None,
              "event_seq": 0}
        svc.__dict__["_ship"] = st
    return st


def add_service_event(svc, message: str) -> None:
    st = _ship(svc)
    st["event_seq"] += 1
    svc.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": message})
    del svc.events[100:]


def _start_deployment(svc, task_definition_arn: str, reason: str | None = None) -> dict:
    for d in svc.deployments:
        if d["status"] == "PRIMARY":
            d["status"] = "ACTIVE"
            d["updatedAt"] = utcnow()
    dep = _new_deployment(svc, task_definition_arn)
    svc.deployments.insert(0, dep)
    svc.task_definition = task_definition_arn
    _ship(svc)["steady"] = False
    return dep


def _patch_ecs() -> None:
    ecs_models, ecs_responses, *_ = _moto()
    Resp = ecs_responses.EC2ContainerServiceResponse
    Backend = ecs_models.EC2ContainerServiceBackend
    if getattr(Resp, "_ship_patched", False):
        return

    orig_create = Resp.create_service
    orig_update = Resp.update_service
    orig_list_tasks = Backend.list_tasks
    orig_stop_task = Backend.stop_task

    def create_service(self):
        result = orig_create(self)
        cluster = self._get_param("cluster", "default")
        name = self._get_param("serviceName")
        svc = self.ecs_backend._get_service(cluster, name)
        for key, attr in _ECHO_PARAMS.items():
            value = self._get_param(key)
            if key == "deploymentConfiguration":
                value = _default_deployment_configuration(value)
            if value is not None:
                setattr(svc, attr, value)
        if getattr(svc, "health_check_grace_period_seconds", None) is None and svc.load_balancers:
            svc.health_check_grace_period_seconds = 0
        svc.created_at = utcnow()
        svc.created_by = f"arn:aws:iam::{self.ecs_backend.account_id}:root"
        svc.running_count = 0
        svc.pending_count = 0
        svc.events = []
        svc.__dict__.pop("_ship", None)
        if svc.deployment_controller.get("type", "ECS") == "ECS" and svc.task_definition:
            svc.deployments = []
            _start_deployment(svc, svc.task_definition)
        return result

    def update_service(self):
        backend = self.ecs_backend
        cluster = self._get_param("cluster", "default")
        name = (self._get_param("service") or "").split("/")[-1]
        svc = backend._get_service(cluster, name)
        before_deployments = svc.deployments
        before_counts = (svc.running_count, svc.pending_count)
        before_td = svc.task_definition
        before_conf = getattr(svc, "deployment_configuration", None)
        before_desired = svc.desired_count
        result = orig_update(self)
        svc.deployments = before_deployments
        svc.running_count, svc.pending_count = before_counts
        # moto stores the raw string (family, family:rev or ARN): keep an ARN
        td_param = self._get_param("taskDefinition")
        new_td = before_td
        if td_param:
            new_td = backend.describe_task_definition(td_param).arn
        svc.task_definition = before_td
        conf = self._get_param("deploymentConfiguration")
        if conf is not None:
            svc.deployment_configuration = _default_deployment_configuration(conf, before_conf)
        elif before_conf is not None:
            svc.deployment_configuration = before_conf
        force = bool(self._get_param("forceNewDeployment", False))
        if svc.deployment_controller.get("type", "ECS") == "ECS":
            primary = next((d for d in svc.deployments if d["status"] == "PRIMARY"), None)
            if primary is None and new_td:
                _start_deployment(svc, new_td)
            elif primary is not None and (force or new_td != primary["taskDefinition"]):
                _start_deployment(svc, new_td)
            elif primary is not None:
                primary["desiredCount"] = svc.desired_count
                primary["updatedAt"] = utcnow()
                if svc.desired_count != before_desired:
                    _ship(svc)["steady"] = False
        svc.task_definition = new_td
        return result

    def list_tasks(self, cluster_str=None, container_instance=None, family=None, started_by=None,
                   service_name=None, desiredStatus=None):
        tasks = orig_list_tasks(self, cluster_str, container_instance, family, started_by,
                                service_name, desiredStatus or "RUNNING")
        if service_name:
            group = "service:" + service_name.split("/")[-1]
            tasks = [t for t in tasks if getattr(t, "group", None) == group]
        return tasks

    def stop_task(self, cluster_str, task_str, reason):
        cluster = self._get_cluster(cluster_str)
        task_id = task_str.split("/")[-1]
        for task in self.tasks.get(cluster.name, {}).values():
            if isinstance(task, LocalTask) and task.id == task_id:
                if task.desired_status != "STOPPED":
                    task.desired_status = "STOPPED"
                    task.stopped_reason = reason or "Task stopped by user"
                    task.stop_code = "UserInitiated"
                return task
        return orig_stop_task(self, cluster_str, task_str, reason)

    Resp.create_service = create_service
    Resp.update_service = update_service
    Backend.list_tasks = list_tasks
    Backend.stop_task = stop_task
    Resp._ship_patched = True


class ServiceHandle:
    """The data plane's view of one ECS service (wraps moto's Service)."""

    def __init__(self, account: str, region: str, backend, svc):
        self.account, self.region, self._backend, self._svc = account, region, backend, svc

    @property
    def key(self) -> str:
        return self._svc.arn

    @property
    def arn(self) -> str:
        return self._svc.arn

    @property
    def name(self) -> str:
        return self._svc.name

    @property
    def cluster_name(self) -> str:
        return self._svc.cluster_name

    @property
    def active(self) -> bool:
        return self._svc.status == "ACTIVE" and self._svc.cluster_name in self._backend.clusters

    @property
    def desired_count(self) -> int:
        return int(self._svc.desired_count or 0)

    @property
    def launch_type(self) -> str:
        return self._svc.launch_type

    @property
    def load_balancers(self) -> list[dict]:
        return list(self._svc.load_balancers or [])

    @property
    def deployment_configuration(self) -> dict:
        return _default_deployment_configuration(getattr(self._svc, "deployment_configuration", None))

    @property
    def grace_seconds(self) -> int:
        return int(getattr(self._svc, "health_check_grace_period_seconds", None) or 0)

    @property
    def deployments(self) -> list[dict]:
        return self._svc.deployments

    @property
    def bookkeeping(self) -> dict:
        return _ship(self._svc)

    def primary(self) -> dict | None:
        return next((d for d in self._svc.deployments if d["status"] == "PRIMARY"), None)

    def event(self, message: str) -> None:
        add_service_event(self._svc, f"(service {self.name}) {message}")

    def start_deployment(self, task_definition_arn: str) -> dict:
        return _start_deployment(self._svc, task_definition_arn)

    def remove_deployment(self, dep: dict) -> None:
        dep["status"] = "INACTIVE"
        self._svc.deployments = [d for d in self._svc.deployments if d is not dep]

    def set_counts(self, running: int, pending: int) -> None:
        self._svc.running_count = running
        self._svc.pending_count = pending

    def task_definition(self, arn: str):
        return self._backend.describe_task_definition(arn)

    def tasks(self) -> list[LocalTask]:
        group = f"service:{self.name}"
        return [t for t in self._backend.tasks.get(self.cluster_name, {}).values()
                if isinstance(t, LocalTask) and t.group == group]

    def new_task(self, deployment: dict) -> LocalTask:
        td = self._backend.describe_task_definition(deployment["taskDefinition"])
        cluster = self._backend.clusters[self.cluster_name]
        task = LocalTask(cluster=cluster, task_definition=td, service_name=self.name,
                         deployment_id=deployment["id"], launch_type=self.launch_type,
                         account_id=self.account, region=self.region,
                         platform_version=self._svc.platform_version)
        self._backend.tasks.setdefault(self.cluster_name, {})[task.task_arn] = task
        return task


def iter_services() -> list[ServiceHandle]:
    ecs_models = _moto()[0]
    out = []
    for account, region, backend in _backends(ecs_models.ecs_backends):
        for svc in list(backend.services.values()):
            out.append(ServiceHandle(account, region, backend, svc))
    return out


def all_local_tasks() -> list[LocalTask]:
    ecs_models = _moto()[0]
    out = []
    for _a, _r, backend in _backends(ecs_models.ecs_backends):
        for per_cluster in backend.tasks.values():
            out.extend(t for t in per_cluster.values() if isinstance(t, LocalTask))
    return out


def forget_task(task: LocalTask) -> None:
    ecs_models = _moto()[0]
    for _a, _r, backend in _backends(ecs_models.ecs_backends):
        per_cluster = backend.tasks.get(task.cluster_name)
        if per_cluster is not None and per_cluster.get(task.task_arn) is task:
            del per_cluster[task.task_arn]


def find_task(task_id: str) -> LocalTask | None:
    for t in all_local_tasks():
        if t.id == task_id:
            return t
    return None


def update_cluster_counts() -> None:
    ecs_models = _moto()[0]
    for _a, _r, backend in _backends(ecs_models.ecs_backends):
        for cluster in backend.clusters.values():
            tasks = [t for t in backend.tasks.get(cluster.name, {}).values() if isinstance(t, LocalTask)]
            cluster.running_tasks_count = sum(1 for t in tasks if t.last_status == "RUNNING")
            cluster.pending_tasks_count = sum(
                1 for t in tasks if t.last_status in ("PROVISIONING", "PENDING", "ACTIVATING"))
            cluster.active_services_count = sum(
                1 for s in backend.services.values() if s.cluster_name == cluster.name and s.status == "ACTIVE")


def circuit_breaker_threshold(desired: int) -> int:
    return min(200, max(3, math.ceil(0.5 * desired)))


# --------------------------------------------------------------------------
# ELBv2: target keys, health states, draining
# --------------------------------------------------------------------------

def _target_key(target: dict, default_port) -> str:
    tid = target["Id"]
    port = target.get("Port") or default_port
    if str(tid).startswith("i-"):
        return tid
    return f"{tid}:{int(port) if port is not None else ''}"


def _tg_extra(tg, name: str) -> dict:
    d = tg.__dict__.get(name)
    if d is None:
        d = {}
        tg.__dict__[name] = d
    return d


def _dereg_delay(tg) -> float:
    try:
        return float(tg.attributes.get("deregistration_delay.timeout_seconds", 300))
    except (TypeError, ValueError):
        return 300.0


def _patch_elbv2() -> None:
    elbv2_models = _moto()[2]
    TG = elbv2_models.FakeTargetGroup
    Backend = elbv2_models.ELBv2Backend
    Health = elbv2_models.FakeHealthStatus
    if getattr(TG, "_ship_patched", False):
        return
    InvalidTargetError = elbv2_models.InvalidTargetError
    TargetNotRunning = elbv2_models.TargetNotRunning

    def register(self, targets):
        for target in targets:
            if str(target["Id"]).startswith("i-"):
                instance = self.ec2_backend.get_instance_by_id(target["Id"])
                if instance and instance.state != "running":
                    raise TargetNotRunning(instance_id=target["Id"])
            key = _target_key(target, self.port)
            port = target.get("Port") or self.port
            if key not in self.targets:
                _tg_extra(self, "_ship_health")[key] = (
                    "initial", "Elb.RegistrationInProgress", "Target registration is in progress")
            self.targets[key] = {"Id": target["Id"], "Port": int(port) if port is not None else None}
            self.deregistered_targets.pop(key, None)
            _tg_extra(self, "_ship_draining").pop(key, None)

    def deregister(self, targets):
        for target in targets:
            key = _target_key(target, self.port)
            t = self.targets.pop(key, None)
            if not t:
                raise InvalidTargetError()
            self.deregistered_targets[key] = t
            _tg_extra(self, "_ship_health").pop(key, None)
            if self.load_balancer_arns:
                _tg_extra(self, "_ship_draining")[key] = (t, time.monotonic() + _dereg_delay(self))

    def health_for(self, target, ec2_backend):
        key = _target_key(target, self.port)
        port = target.get("Port") or self.port
        hc_port = self.health_check_port
        t = self.targets.get(key)
        if t is None:
            draining = _tg_extra(self, "_ship_draining").get(key)
            if draining and draining[1] > time.monotonic():
                return Health(target["Id"], port, hc_port, "draining",
                              "Target.DeregistrationInProgress", "Target deregistration is in progress")
            return Health(target["Id"], port, hc_port, "unused", "Target.NotRegistered",
                          "Target is not registered to the target group")
        if not self.load_balancer_arns:
            return Health(t["Id"], t["Port"], hc_port, "unused", "Target.NotInUse",
                          "Target group is not configured to receive traffic from the load balancer")
        if not self.health_check_enabled:
            return Health(t["Id"], t["Port"], hc_port, "unavailable", "Target.HealthCheckDisabled",
                          "Health checks are disabled")
        state, reason, desc = _tg_extra(self, "_ship_health").get(
            key, ("initial", "Elb.RegistrationInProgress", "Target registration is in progress"))
        return Health(t["Id"], t["Port"], hc_port, state, reason, desc)

    def describe_target_health(self, target_group_arn, targets):
        tg = self.target_groups.get(target_group_arn)
        if tg is None:
            raise elbv2_models.TargetGroupNotFoundError()
        if not targets:
            now = time.monotonic()
            targets = list(tg.targets.values()) + [
                t for t, deadline in _tg_extra(tg, "_ship_draining").values() if deadline > now]
        return [tg.health_for(target, self.ec2_backend) for target in targets]

    TG.register = register
    TG.deregister = deregister
    TG.health_for = health_for
    Backend.describe_target_health = describe_target_health
    TG._ship_patched = True


class TargetGroupSpec:
    """A snapshot of a target group's health-check settings and targets."""

    def __init__(self, tg):
        self.arn = tg.arn
        self.name = tg.name
        self.protocol = (tg.health_check_protocol or tg.protocol or "HTTP").upper()
        self.port = tg.port
        self.health_check_port = tg.health_check_port or "traffic-port"
        self.path = tg.health_check_path or "/"
        self.interval = float(tg.health_check_interval_seconds or 30)
        self.timeout = float(tg.health_check_timeout_seconds or 5)
        self.healthy_threshold = int(tg.healthy_threshold_count or 5)
        self.unhealthy_threshold = int(tg.unhealthy_threshold_count or 2)
        matcher = getattr(tg, "matcher", None) or {}
        self.matcher = str(matcher.get("HttpCode") or "200")
        self.enabled = bool(tg.health_check_enabled)
        self.in_use = bool(tg.load_balancer_arns)
        self.deregistration_delay = _dereg_delay(tg)
        self.targets = [(key, t["Id"], int(t["Port"] or 0)) for key, t in tg.targets.items()]
        now = time.monotonic()
        self.draining = [(key, t["Id"], int(t["Port"] or 0))
                         for key, (t, deadline) in _tg_extra(tg, "_ship_draining").items() if deadline > now]


def _all_target_groups() -> dict[str, Any]:
    elbv2_models = _moto()[2]
    out = {}
    for _a, _r, backend in _backends(elbv2_models.elbv2_backends):
        out.update(backend.target_groups)
    return out


def target_groups() -> list[TargetGroupSpec]:
    return [TargetGroupSpec(tg) for tg in _all_target_groups().values()]


def target_group(arn: str) -> TargetGroupSpec | None:
    tg = _all_target_groups().get(arn)
    return TargetGroupSpec(tg) if tg is not None else None


def set_target_health(tg_arn: str, key: str, state: str, reason: str | None, description: str | None) -> None:
    tg = _all_target_groups().get(tg_arn)
    if tg is not None and key in tg.targets:
        _tg_extra(tg, "_ship_health")[key] = (state, reason, description)


def target_state(tg_arn: str, host: str, port: int) -> str:
    tg = _all_target_groups().get(tg_arn)
    if tg is None:
        return "unused"
    return tg.health_for({"Id": host, "Port": port}, None).status


def target_states(tg_arn: str) -> list[tuple[str, int, str]]:
    """(host, port, state) for every registered or draining target."""
    tg = _all_target_groups().get(tg_arn)
    if tg is None:
        return []
    elbv2_models = _moto()[2]
    backend = None
    for _a, _r, b in _backends(elbv2_models.elbv2_backends):
        if tg_arn in b.target_groups:
            backend = b
    return [(h.instance_id, int(h.port), h.status) for h in backend.describe_target_health(tg_arn, [])]


def prune_draining() -> None:
    now = time.monotonic()
    for tg in _all_target_groups().values():
        d = _tg_extra(tg, "_ship_draining")
        for key in [k for k, (_t, deadline) in d.items() if deadline <= now]:
            del d[key]


def register_target(tg_arn: str, host: str, port: int) -> None:
    tg = _all_target_groups().get(tg_arn)
    if tg is not None:
        tg.register([{"Id": host, "Port": port}])


def deregister_target(tg_arn: str, host: str, port: int) -> float:
    """Deregister; returns the draining time (0 when it was not registered)."""
    tg = _all_target_groups().get(tg_arn)
    if tg is None or _target_key({"Id": host, "Port": port}, tg.port) not in tg.targets:
        return 0.0
    tg.deregister([{"Id": host, "Port": port}])
    return _dereg_delay(tg) if tg.load_balancer_arns else 0.0


class ListenerSpec:
    def __init__(self, lb, listener):
        self.load_balancer_arn = lb.arn
        self.load_balancer_name = lb.name
        self.dns_name = lb.dns_name
        self.listener_arn = listener.arn
        self.port = int(listener.port)
        self.protocol = listener.protocol
        self.target_group_arn = None
        for action in listener.default_actions:
            data = getattr(action, "data", {}) or {}
            if (data.get("Type") or "").lower() != "forward":
                continue
            if data.get("TargetGroupArn"):
                self.target_group_arn = data["TargetGroupArn"]
            else:
                groups = (data.get("ForwardConfig") or {}).get("TargetGroups") or []
                if groups:
                    best = max(groups, key=lambda g: int(g.get("Weight", 1) or 0))
                    self.target_group_arn = best.get("TargetGroupArn")
            break


def listeners() -> list[ListenerSpec]:
    elbv2_models = _moto()[2]
    out = []
    for _a, _r, backend in _backends(elbv2_models.elbv2_backends):
        for lb in backend.load_balancers.values():
            if getattr(lb, "type", "application") != "application":
                continue
            for listener in lb.listeners.values():
                out.append(ListenerSpec(lb, listener))
    return out


# --------------------------------------------------------------------------
# ECR: layer bytes into the BlobStore, digests from manifest bytes
# --------------------------------------------------------------------------

_BLOBS = None


def _patch_ecr(blob_store) -> None:
    global _BLOBS
    ecr_models = _moto()[3]
    Backend = ecr_models.ECRBackend
    _BLOBS = blob_store
    if getattr(Backend, "_ship_patched", False):
        return
    orig_complete = Backend.complete_layer_upload
    orig_put_image = Backend.put_image

    def complete_layer_upload(self, repository_name, upload_id, layer_digests, registry_id=None):
        repository = self._get_repository(repository_name, registry_id)
        upload = repository.uploads.get(upload_id)
        data = bytes(upload.layer_parts) if upload is not None else None
        if data is not None and layer_digests:
            actual = "sha256:" + hashlib.sha256(data).hexdigest()
            if actual not in layer_digests:
                raise ecr_models.InvalidParameterException(
                    f"Invalid parameter at 'layerDigests': layer digest {layer_digests[0]} "
                    f"does not match the uploaded content ({actual})")
        result = orig_complete(self, repository_name, upload_id, layer_digests, registry_id)
        if data is not None and _BLOBS is not None:
            _BLOBS.put(data)
        return result

    def put_image(self, repository_name, image_manifest, image_tag, image_manifest_mediatype=None,
                  digest=None):
        if not digest and isinstance(image_manifest, str):
            digest = "sha256:" + hashlib.sha256(image_manifest.encode()).hexdigest()
        return orig_put_image(self, repository_name, image_manifest, image_tag,
                              image_manifest_mediatype, digest)

    def get_download_url_for_layer(response):
        # ECR answers with a short-lived URL to the layer's bytes; ours points
        # at the local cloud's own blob endpoint (/_ship/blobs/...).
        repository_name = response._get_param("repositoryName")
        digest = response._get_param("layerDigest")
        repository = response.ecr_backend._get_repository(repository_name, response._get_param("registryId"))
        if digest not in repository.layers or _BLOBS is None or not _BLOBS.has(digest):
            from moto.core.exceptions import ServiceException

            class LayersNotFoundException(ServiceException):
                code = "LayersNotFoundException"

            raise LayersNotFoundException(f"The layer with digest '{digest}' does not exist in the repository "
                                          f"with name '{repository_name}'")
        host = response.headers.get("Host") or "127.0.0.1:4566"
        url = f"http://{host}/_ship/blobs/{digest.replace(':', '/')}"
        return json.dumps({"downloadUrl": url, "layerDigest": digest})

    Backend.complete_layer_upload = complete_layer_upload
    Backend.put_image = put_image
    _moto_ecr_responses().ECRResponse.get_download_url_for_layer = get_download_url_for_layer
    Backend._ship_patched = True


def _moto_ecr_responses():
    import moto.ecr.responses

    return moto.ecr.responses


def find_image(region: str, account: str, repository: str, tag: str | None, digest: str | None):
    """(manifest text, manifest media type, image digest) or None."""
    ecr_models = _moto()[3]
    per_region = dict.get(ecr_models.ecr_backends, account)
    if per_region is None:
        return None
    backend = dict.get(per_region, region)
    if backend is None or repository not in backend.repositories:
        return None
    for image in backend.repositories[repository].images:
        if digest and image.get_image_digest() != digest:
            continue
        if tag and tag not in image.image_tags:
            continue
        return image.image_manifest, image.image_manifest_media_type, image.get_image_digest()
    return None


# --------------------------------------------------------------------------
# CloudWatch Logs
# --------------------------------------------------------------------------

def put_log_events(region: str, account: str, group: str, stream: str, events: list[dict],
                   create_group: bool = False) -> bool:
    """Append events ({timestamp, message}); False when the group is missing."""
    logs_models = _moto()[4]
    backend = logs_models.logs_backends[account][region]
    if group not in backend.groups:
        if not create_group:
            return False
        backend.ensure_log_group(group)
    backend.ensure_log_stream(group, stream)
    if events:
        events = sorted(events, key=lambda e: e["timestamp"])
        backend.put_log_events(group, stream, events)
    return True


def log_group_exists(region: str, account: str, group: str) -> bool:
    logs_models = _moto()[4]
    return group in logs_models.logs_backends[account][region].groups


# --------------------------------------------------------------------------

_INSTALLED = False


def install(blob_store) -> None:
    """Apply every patch (idempotent). Call before serving requests."""
    global _INSTALLED
    check_version()
    _patch_ecs()
    _patch_elbv2()
    _patch_ecr(blob_store)
    _INSTALLED = True
