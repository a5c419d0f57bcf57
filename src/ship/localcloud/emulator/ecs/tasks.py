"""ECS tasks the data plane really runs: ``LocalTask`` (shaped for moto's serializer),
RunTask/StopTask/ListTasks as ECS answers them, and the accessors the data plane uses.

RunTask (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html)
creates PROVISIONING tasks with their overrides, ``startedBy`` and ``group``; the
data plane starts them and walks ``lastStatus`` through PENDING, RUNNING and
STOPPED as it really happens. StopTask only asks: the task keeps its
``lastStatus`` until the data plane has stopped it.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any
import uuid

from ship.localcloud.emulator.compat import backends as _backends, internals as _moto, utcnow
from ship.localcloud.emulator.ecs.state import PROCESS
from ship.localcloud.emulator.ecs.taskdefs import require_active

RUN_TASK_MAX_COUNT = 10


def _container_entry(task: "LocalTask", cdef: dict, attachment_id: str) -> dict:
    return {
        "containerArn": f"arn:aws:ecs:{task.region_name}:{task.account_id}:container/"
                        f"{task.cluster_name}/{task.id}/{uuid.uuid4()}",
        "taskArn": task.task_arn,
        "name": cdef.get("name"),
        "image": cdef.get("image"),
        "lastStatus": "PENDING",
        "networkBindings": [],
        "networkInterfaces": [{"attachmentId": attachment_id, "privateIpv4Address": "127.0.0.1"}],
        "healthStatus": "UNKNOWN",
        "cpu": str(cdef.get("cpu", 0)),
        "memory": str(cdef["memory"]) if cdef.get("memory") else None,
    }


class LocalTask:
    """A task the data plane runs, shaped like ECS's Task for moto's serializer
    (snake_case attributes, camelCase nested dicts). Plain data: picklable."""

    def __init__(self, *, cluster, task_definition, group: str, started_by: str | None,
                 launch_type: str | None, account_id: str, region: str, platform_version: str | None,
                 owner_service: str | None = None, overrides: dict | None = None, tags: list | None = None):
        self.id = uuid.uuid4().hex
        self.cluster_name = cluster.name
        self.cluster_arn = cluster.arn
        self.region_name = region
        self.account_id = account_id
        self.task_arn = f"arn:aws:ecs:{region}:{account_id}:task/{cluster.name}/{self.id}"
        self.task_definition_arn = task_definition.arn
        self.container_instance_arn: str | None = None
        self.group = group
        self.started_by = started_by or None
        self.owner_service = owner_service        # the service ARN, None for RunTask tasks
        self.process = PROCESS                    # which run of the local cloud created it
        self.launch_type = launch_type or "FARGATE"
        self.platform_version = platform_version or ("1.4.0" if self.launch_type == "FARGATE" else None)
        self.platform_family = "Linux"
        self.overrides = {"containerOverrides": [], "inferenceAcceleratorOverrides": [], **(overrides or {})}
        self.cpu = str(self.overrides.get("cpu") or task_definition.cpu or "") or None
        self.memory = str(self.overrides.get("memory") or task_definition.memory or "") or None
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
        self.tags: list = list(tags or [])
        self.enable_execute_command = False
        self.host_port: int | None = None
        self.attachments: list[dict[str, Any]] = [{
            "id": str(uuid.uuid4()),
            "type": "ElasticNetworkInterface",
            "status": "PRECREATED",
            "details": [{"name": "networkInterfaceId", "value": "eni-" + self.id[:17]},
                        {"name": "privateIPv4Address", "value": "127.0.0.1"}],
        }]
        self.containers = [_container_entry(self, cdef, self.attachments[0]["id"])
                           for cdef in task_definition.container_definitions]

    # moto's describe_tasks calls this on every task it returns
    def advance(self) -> None:
        pass

    @property
    def task_id(self) -> str:
        return self.id

    def set_status(self, status: str) -> None:
        if status != self.last_status:
            self.last_status = status
            self.version += 1

    def set_listening(self, port: int, container_port: int | None) -> None:
        """Record where the task listens (127.0.0.1:<port>), as ENI details and bindings."""
        self.host_port = port
        self.attachments[0]["status"] = "ATTACHED"
        details = self.attachments[0]["details"]
        if not any(d["name"] == "hostPort" for d in details):
            details.append({"name": "hostPort", "value": str(port)})
        for c in self.containers:
            c["networkBindings"] = [{"bindIP": "127.0.0.1", "containerPort": container_port or port,
                                     "hostPort": port, "protocol": "tcp"}]

    def request_stop(self, reason: str, code: str) -> None:
        """desiredStatus STOPPED with the first reason and code given (later ones do not overwrite)."""
        self.desired_status = "STOPPED"
        self.stopped_reason = self.stopped_reason or reason
        self.stop_code = self.stop_code or code


# ---------------------------------------------------------------------------- RunTask overrides

def _invalid(message: str):
    return _moto().ecs_exceptions.InvalidParameterException(message)


def check_overrides(task_definition, overrides: dict | None) -> dict:
    """ECS's checks of RunTask ``overrides``; returns a copy to keep on the task."""
    overrides = copy.deepcopy(overrides or {})
    names = {c.get("name") for c in task_definition.container_definitions}
    for co in overrides.get("containerOverrides") or []:
        if co.get("name") not in names:
            raise _invalid(f"Override for container named {co.get('name')} is not a container in the "
                           "TaskDefinition.")
        if "command" in co and not isinstance(co["command"], list):
            raise _invalid("containerOverrides.command must be a list of strings")
    return overrides


def effective_container(task_definition, overrides: dict, name: str | None = None) -> dict:
    """A container definition with its RunTask overrides applied (the essential one by default)."""
    cdefs = task_definition.container_definitions
    cdef = next((c for c in cdefs if c.get("name") == name), None) if name else None
    cdef = copy.deepcopy(cdef or next((c for c in cdefs if c.get("essential", True)), cdefs[0]))
    for co in overrides.get("containerOverrides") or []:
        if co.get("name") != cdef.get("name"):
            continue
        if co.get("command") is not None:
            cdef["command"] = list(co["command"])
        if co.get("environment"):
            env = {e["name"]: e.get("value", "") for e in cdef.get("environment") or []}
            env.update({e["name"]: e.get("value", "") for e in co["environment"]})
            cdef["environment"] = [{"name": k, "value": v} for k, v in env.items()]
        for key in ("cpu", "memory", "memoryReservation"):
            if co.get(key) is not None:
                cdef[key] = co[key]
    return cdef


# ---------------------------------------------------------------------------- patches

def _is_fargate(launch_type, capacity_provider_strategy, cluster) -> bool:
    strategy = capacity_provider_strategy or (None if launch_type else cluster.default_capacity_provider_strategy)
    if launch_type:
        return launch_type == "FARGATE"
    providers = [s.get("capacityProvider") for s in strategy or []]
    return not providers or providers[0] in ("FARGATE", "FARGATE_SPOT")


def install() -> None:
    Backend = _moto().ecs_models.EC2ContainerServiceBackend
    if getattr(Backend.run_task, "_ship", False):
        return
    orig_run_task = Backend.run_task
    orig_list_tasks = Backend.list_tasks
    orig_stop_task = Backend.stop_task

    def run_task(self, cluster_str, task_definition_str, count, overrides, started_by, tags, launch_type,
                 networking_configuration=None, group=None, platform_version=None,
                 capacity_provider_strategy=None):
        cluster = self._get_cluster(cluster_str)
        if not _is_fargate(launch_type, capacity_provider_strategy, cluster):
            return orig_run_task(self, cluster_str, task_definition_str, count, overrides, started_by, tags,
                                 launch_type, networking_configuration, group, platform_version,
                                 capacity_provider_strategy)
        td = require_active(self, task_definition_str)
        if not 1 <= int(count or 1) <= RUN_TASK_MAX_COUNT:
            raise _invalid(f"count must be between 1 and {RUN_TASK_MAX_COUNT}")
        if td.network_mode == "awsvpc" and not (networking_configuration or {}).get("awsvpcConfiguration"):
            raise _invalid("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
        checked = check_overrides(td, overrides)
        tasks = []
        for _ in range(int(count or 1)):
            task = LocalTask(cluster=cluster, task_definition=td, group=group or f"family:{td.family}",
                             started_by=started_by, launch_type="FARGATE", account_id=self.account_id,
                             region=self.region_name, platform_version=platform_version,
                             overrides=checked, tags=tags)
            self.tasks.setdefault(cluster.name, {})[task.task_arn] = task
            tasks.append(task)
        return tasks

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
                    task.request_stop(reason or "Task stopped by user", "UserInitiated")
                return task
        return orig_stop_task(self, cluster_str, task_str, reason)

    setattr(run_task, "_ship", True)
    Backend.run_task = run_task
    Backend.list_tasks = list_tasks
    Backend.stop_task = stop_task


# ---------------------------------------------------------------------------- accessors

def _ecs_backends():
    return _backends(_moto().ecs_models.ecs_backends)


def all_local_tasks() -> list[LocalTask]:
    out: list[LocalTask] = []
    for _a, _r, backend in _ecs_backends():
        for per_cluster in list(backend.tasks.values()):
            out.extend(t for t in list(per_cluster.values()) if isinstance(t, LocalTask))
    return out


def forget_task(task: LocalTask) -> None:
    for _a, _r, backend in _ecs_backends():
        per_cluster = backend.tasks.get(task.cluster_name)
        if per_cluster is not None and per_cluster.get(task.task_arn) is task:
            del per_cluster[task.task_arn]


def task_definition_of(task: LocalTask):
    for account, region, backend in _ecs_backends():
        if account == task.account_id and region == task.region_name:
            return backend.describe_task_definition(task.task_definition_arn)
    raise LookupError(f"no ECS backend for {task.account_id}/{task.region_name}")


def update_cluster_counts() -> None:
    for _a, _r, backend in _ecs_backends():
        for cluster in backend.clusters.values():
            tasks = [t for t in backend.tasks.get(cluster.name, {}).values() if isinstance(t, LocalTask)]
            cluster.running_tasks_count = sum(1 for t in tasks if t.last_status == "RUNNING")
            cluster.pending_tasks_count = sum(
                1 for t in tasks if t.last_status in ("PROVISIONING", "PENDING", "ACTIVATING"))
            cluster.active_services_count = sum(
                1 for s in backend.services.values() if s.cluster_name == cluster.name and s.status == "ACTIVE")
