"""ECS services that deploy like ECS: CreateService/UpdateService patches, deployments
that keep their identity, and ``ServiceHandle``, the data plane's view of a service.

A deployment is created by CreateService, by UpdateService with a new task
definition or ``forceNewDeployment``, and by a circuit-breaker rollback; each
has its own id and timestamps for its whole life, the previous PRIMARY turns
ACTIVE (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html).

DeleteService (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html):
the service turns DRAINING with a desired count of 0 while it still has tasks to clean up,
no longer appears in ListServices, and turns INACTIVE once all its tasks have reached
STOPPING or STOPPED (the data plane does that, ``ServiceHandle.finish_draining``); DescribeServices
shows it in both states. Moto marks it INACTIVE at once. A DRAINING or INACTIVE service cannot
be updated (``ServiceNotActiveException``), and its name cannot be used for a new service until
it is INACTIVE. Deleting it again is not an error: as on AWS, DeleteService answers with the
service as it is (aws/aws-cli#1334 shows a DRAINING one, aws/aws-sdk-js#4189 an INACTIVE one).
Clients count on that: the AWS provider for Terraform calls DeleteService on a service it finds
DRAINING, and an SDK that retries a DeleteService whose first answer it lost sends it twice.
"""

from __future__ import annotations

import copy
import random
import uuid

from ship.localcloud.emulator.compat import backends as _backends, internals as _moto, utcnow
from ship.localcloud.emulator.ecs.state import STORE, ServiceState
from ship.localcloud.emulator.ecs.taskdefs import caller_arn, require_active
from ship.localcloud.emulator.ecs.tasks import LocalTask

MAX_EVENTS = 100

# request key -> attribute moto's serializer reads (moto does not keep these)
_ECHO_PARAMS = {
    "deploymentConfiguration": "deployment_configuration",
    "healthCheckGracePeriodSeconds": "health_check_grace_period_seconds",
    "enableECSManagedTags": "enable_ecs_managed_tags",
    "enableExecuteCommand": "enable_execute_command",
    "availabilityZoneRebalancing": "availability_zone_rebalancing",
    "placementConstraints": "placement_constraints",
    "placementStrategy": "placement_strategy",
    "capacityProviderStrategy": "capacity_provider_strategy",
}


def deployment_configuration(given: dict | None, previous: dict | None = None) -> dict:
    """``given`` over ``previous`` with AWS's defaults (200 %, 100 %, breaker off)."""
    conf = copy.deepcopy(previous) if previous else {}
    for k, v in (given or {}).items():
        conf[k] = copy.deepcopy(v)
    breaker = conf.setdefault("deploymentCircuitBreaker", {})
    breaker.setdefault("enable", False)
    breaker.setdefault("rollback", False)
    conf.setdefault("maximumPercent", 200)
    conf.setdefault("minimumHealthyPercent", 100)
    return conf


def new_deployment_id() -> str:
    return "ecs-svc/" + "".join(random.choice("0123456789") for _ in range(19))


def _new_deployment(svc, task_definition_arn: str, dep_id: str) -> dict:
    now = utcnow()
    fargate = svc.launch_type == "FARGATE"
    return {
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
        "platformVersion": svc.platform_version or ("LATEST" if fargate else None),
        "platformFamily": "Linux" if fargate else None,
        "networkConfiguration": svc.network_configuration or None,
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
    }


def start_deployment(svc, task_definition_arn: str, dep_id: str | None = None) -> dict:
    """A new PRIMARY deployment; the previous PRIMARY becomes ACTIVE, untouched otherwise."""
    now = utcnow()
    for d in svc.deployments:
        if d["status"] == "PRIMARY":
            d["status"] = "ACTIVE"
            d["updatedAt"] = now
    dep = _new_deployment(svc, task_definition_arn, dep_id or new_deployment_id())
    svc.deployments.insert(0, dep)
    svc.task_definition = task_definition_arn
    STORE.service(svc.arn).steady = False
    return dep


def set_desired_count(svc, count: int) -> None:
    """A new desired count, as UpdateService applies it (Application Auto Scaling uses this too)."""
    before = svc.desired_count
    svc.desired_count = count
    _redeploy(svc, svc.task_definition, False, before)


def add_event(svc, message: str) -> None:
    svc.events.insert(0, {"id": str(uuid.uuid4()), "createdAt": utcnow(), "message": message})
    del svc.events[MAX_EVENTS:]


# ---------------------------------------------------------------------------- patches

def _not_active():
    return _moto().ecs_exceptions.ECSException("ServiceNotActiveException", "Service was not ACTIVE.")


def _existing(backend, cluster: str, name: str):
    try:
        return backend._get_service(cluster, name)
    except Exception:
        return None


def _create_service(orig):
    def create_service(self):
        backend = self.ecs_backend
        old = _existing(backend, self._get_param("cluster", "default"), self._get_param("serviceName") or "")
        if old is not None and old.status == "DRAINING":
            raise _moto().ecs_exceptions.InvalidParameterException("Unable to Start a service that is still Draining.")
        td_param = self._get_param("taskDefinition")
        if td_param:
            require_active(backend, td_param)
        result = orig(self)
        svc = backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
        for key, attr in _ECHO_PARAMS.items():
            value = self._get_param(key)
            if key == "deploymentConfiguration":
                value = deployment_configuration(value)
            if value is not None:
                setattr(svc, attr, value)
        if getattr(svc, "health_check_grace_period_seconds", None) is None and svc.load_balancers:
            svc.health_check_grace_period_seconds = 0
        svc.created_at = utcnow()
        svc.created_by = caller_arn(backend.account_id)
        svc.running_count = svc.pending_count = 0
        svc.events = []
        STORE.forget_service(svc.arn)
        if svc.deployment_controller.get("type", "ECS") == "ECS" and svc.task_definition:
            svc.deployments = []
            start_deployment(svc, svc.task_definition)
        return result
    return create_service


def _update_service(orig):
    def update_service(self):
        backend = self.ecs_backend
        svc = backend._get_service(self._get_param("cluster", "default"),
                                   (self._get_param("service") or "").split("/")[-1])
        if svc.status != "ACTIVE":
            raise _not_active()
        td_param = self._get_param("taskDefinition")
        new_td = require_active(backend, td_param).arn if td_param else svc.task_definition
        # moto rewrites the first deployment in place on forceNewDeployment and claims
        # runningCount = desiredCount: keep copies and put them back.
        before = (copy.deepcopy(svc.deployments), svc.running_count, svc.pending_count, svc.task_definition,
                  getattr(svc, "deployment_configuration", None), svc.desired_count)
        deployments, running, pending, before_td, before_conf, before_desired = before
        result = orig(self)
        svc.deployments, svc.running_count, svc.pending_count = deployments, running, pending
        svc.task_definition = before_td
        conf = self._get_param("deploymentConfiguration")
        svc.deployment_configuration = (deployment_configuration(conf, before_conf) if conf is not None
                                        else before_conf)
        force = bool(self._get_param("forceNewDeployment", False))
        if svc.deployment_controller.get("type", "ECS") == "ECS":
            _redeploy(svc, new_td, force, before_desired)
        svc.task_definition = new_td
        return result
    return update_service


def _redeploy(svc, new_td: str, force: bool, before_desired: int) -> None:
    primary = next((d for d in svc.deployments if d["status"] == "PRIMARY"), None)
    if primary is None:
        if new_td:
            start_deployment(svc, new_td)
    elif force or new_td != primary["taskDefinition"]:
        start_deployment(svc, new_td)
    else:
        primary["desiredCount"] = svc.desired_count
        primary["updatedAt"] = utcnow()
        if svc.desired_count != before_desired:
            STORE.service(svc.arn).steady = False


def delete_service(self, cluster_name: str, service_name: str, force: bool):
    """DRAINING with a desired count of 0 (the data plane makes it INACTIVE once its tasks stop)."""
    self._get_cluster(cluster_name)
    svc = self._get_service(cluster_name, service_name)
    if svc.status != "ACTIVE":
        return svc                      # already deleted: AWS answers with the service as it is
    if svc.desired_count > 0 and not force:
        raise _moto().ecs_exceptions.InvalidParameterException(
            "The service cannot be stopped while it is scaled above 0.")
    set_desired_count(svc, 0)
    svc.status = "DRAINING"
    return svc


def _list_services(orig):
    def list_services(self, cluster_str, scheduling_strategy=None, launch_type=None):
        arns = set(orig(self, cluster_str, scheduling_strategy, launch_type))
        return sorted(s.arn for s in self.services.values() if s.arn in arns and s.status == "ACTIVE")
    return list_services


def install() -> None:
    Resp = _moto().ecs_responses.EC2ContainerServiceResponse
    Backend = _moto().ecs_models.EC2ContainerServiceBackend
    if getattr(Resp.create_service, "_ship", False):
        return
    Resp.create_service = _create_service(Resp.create_service)
    Resp.update_service = _update_service(Resp.update_service)
    setattr(Backend, "delete_service", delete_service)
    setattr(Backend, "list_services", _list_services(Backend.list_services))
    setattr(Resp.create_service, "_ship", True)


# ---------------------------------------------------------------------------- the data plane's view

class ServiceHandle:
    """One ECS service as the data plane reads and changes it (wraps moto's Service)."""

    def __init__(self, account: str, region: str, backend, svc):
        self.account, self.region, self._backend, self._svc = account, region, backend, svc

    arn = property(lambda self: self._svc.arn)
    name = property(lambda self: self._svc.name)
    cluster_name = property(lambda self: self._svc.cluster_name)
    launch_type = property(lambda self: self._svc.launch_type)
    deployments = property(lambda self: self._svc.deployments)

    @property
    def active(self) -> bool:
        return self._svc.status == "ACTIVE" and self._svc.cluster_name in self._backend.clusters

    @property
    def status(self) -> str:
        return self._svc.status

    def set_desired_count(self, count: int) -> None:
        """Change the desired count the way UpdateService does."""
        set_desired_count(self._svc, count)

    def finish_draining(self) -> None:
        """DRAINING -> INACTIVE (DeleteService: once every task reached STOPPING or STOPPED)."""
        if self._svc.status == "DRAINING":
            self._svc.status = "INACTIVE"

    @property
    def desired_count(self) -> int:
        return int(self._svc.desired_count or 0)

    @property
    def load_balancers(self) -> list[dict]:
        return list(self._svc.load_balancers or [])

    @property
    def deployment_configuration(self) -> dict:
        return deployment_configuration(getattr(self._svc, "deployment_configuration", None))

    @property
    def grace_seconds(self) -> int:
        return int(getattr(self._svc, "health_check_grace_period_seconds", None) or 0)

    @property
    def state(self) -> ServiceState:
        return STORE.service(self._svc.arn)

    def deployment(self, dep_id: str) -> dict | None:
        return next((d for d in self._svc.deployments if d["id"] == dep_id), None)

    def event(self, message: str) -> None:
        add_event(self._svc, f"(service {self.name}) {message}")

    def event_once(self, message: str) -> None:
        """An event, unless it is already the latest one (a condition that lasts is said once)."""
        text = f"(service {self.name}) {message}"
        if not self._svc.events or self._svc.events[0]["message"] != text:
            add_event(self._svc, text)

    def start_deployment(self, task_definition_arn: str, dep_id: str) -> dict:
        return start_deployment(self._svc, task_definition_arn, dep_id)

    def remove_deployment(self, dep_id: str) -> None:
        self._svc.deployments = [d for d in self._svc.deployments if d["id"] != dep_id]

    def set_counts(self, running: int, pending: int) -> None:
        self._svc.running_count = running
        self._svc.pending_count = pending

    def task_definition(self, arn: str):
        return self._backend.describe_task_definition(arn)

    def tasks(self) -> list[LocalTask]:
        group = f"service:{self.name}"
        return [t for t in list(self._backend.tasks.get(self.cluster_name, {}).values())
                if isinstance(t, LocalTask) and t.group == group and t.owner_service == self.arn]

    def new_task(self, deployment: dict) -> LocalTask:
        td = self._backend.describe_task_definition(deployment["taskDefinition"])
        cluster = self._backend.clusters[self.cluster_name]
        task = LocalTask(cluster=cluster, task_definition=td, group=f"service:{self.name}",
                         started_by=deployment["id"], launch_type=self.launch_type, account_id=self.account,
                         region=self.region, platform_version=self._svc.platform_version,
                         owner_service=self.arn)
        self._backend.tasks.setdefault(self.cluster_name, {})[task.task_arn] = task
        return task


def iter_services() -> list[ServiceHandle]:
    out = []
    for account, region, backend in _backends(_moto().ecs_models.ecs_backends):
        for svc in list(backend.services.values()):
            out.append(ServiceHandle(account, region, backend, svc))
    return out
