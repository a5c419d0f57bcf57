"""ECS in the emulator: services that deploy like ECS, and the tasks the data plane runs."""

from __future__ import annotations

import copy
import math
import uuid
from datetime import datetime
from typing import Any

from ship.localcloud.emulator.compat import backends as _backends, internals as _moto, utcnow

PATCHES = [
    "ecs: create_service stores deploymentConfiguration, healthCheckGracePeriodSeconds, "
    "enableECSManagedTags, enableExecuteCommand, availabilityZoneRebalancing, placement* "
    "and echoes them (with AWS defaults) in describe_services",
    "ecs: update_service starts a real deployment on a new taskDefinition or forceNewDeployment, "
    "keeps counts truthful, resolves taskDefinition to its ARN",
    "ecs: services carry createdAt/createdBy and ECS-like events",
    "ecs: list_tasks filters by serviceName and defaults to desiredStatus RUNNING (as ECS)",
    "ecs: stop_task on a data-plane task asks the data plane to stop it (stopCode UserInitiated)",
]


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
        self.pull_started_at: datetime | None = None
        self.pull_stopped_at: datetime | None = None
        self.started_at: datetime | None = None
        self.stopping_at: datetime | None = None
        self.stopped_at: datetime | None = None
        self.execution_stopped_at: datetime | None = None
        self.stopped_reason: str | None = None
        self.stop_code: str | None = None
        self.version = 1
        self.overrides: dict[str, list] = {"containerOverrides": [], "inferenceAcceleratorOverrides": []}
        self.tags: list = []
        self.enable_execute_command = False
        self.eni_id = "eni-" + self.id[:17]
        self.attachments: list[dict[str, Any]] = [{
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


def install() -> None:
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
    out: list[LocalTask] = []
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
