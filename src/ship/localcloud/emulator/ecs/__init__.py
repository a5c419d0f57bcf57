"""ECS in the emulator: services that deploy like ECS, task definitions with their
timestamps, and tasks (from services and RunTask) that the data plane really runs.

* ``services``: CreateService/UpdateService, deployments, ``ServiceHandle``;
* ``tasks``: ``LocalTask``, RunTask/StopTask/ListTasks, the task accessors;
* ``taskdefs``: registeredAt/registeredBy/deregisteredAt, INACTIVE revisions refused;
* ``state``: ``STORE``, the typed, picklable state kept beside moto's objects.
"""

from __future__ import annotations

from ship.localcloud.emulator.ecs import services, taskdefs, tasks
from ship.localcloud.emulator.ecs.services import ServiceHandle, iter_services
from ship.localcloud.emulator.ecs.state import PROCESS, STORE, EcsStore, ServiceState
from ship.localcloud.emulator.ecs.tasks import (LocalTask, all_local_tasks, effective_container, forget_task,
                                                task_definition_of, update_cluster_counts)

PATCHES = [
    "ecs: create_service stores deploymentConfiguration, healthCheckGracePeriodSeconds, "
    "enableECSManagedTags, enableExecuteCommand, availabilityZoneRebalancing, placement* "
    "and echoes them (with AWS defaults) in describe_services",
    "ecs: update_service starts a real deployment on a new taskDefinition or forceNewDeployment; "
    "earlier deployments keep their ids and timestamps; counts stay truthful",
    "ecs: services carry createdAt/createdBy and ECS-like events",
    "ecs: create_service, update_service and run_task refuse an INACTIVE task definition "
    "(InvalidParameterException: TaskDefinition is inactive)",
    "ecs: task definitions carry registeredAt/registeredBy and, once deregistered, deregisteredAt",
    "ecs: run_task (Fargate) creates tasks the data plane really runs, with overrides, startedBy and group",
    "ecs: list_tasks filters by serviceName and defaults to desiredStatus RUNNING (as ECS)",
    "ecs: stop_task asks the data plane to stop the task (stopCode UserInitiated)",
    "ecs: delete_service leaves the service DRAINING (desired count 0) until its tasks have stopped, then "
    "INACTIVE; list_services lists ACTIVE services only; update of a service that is not ACTIVE is "
    "ServiceNotActiveException, a second delete answers with the service as it is; "
    "create_service refuses the name of a DRAINING service",
]

# What the fargate data plane acts on (the coverage table in docs/ is generated from this):
# services are run to their desired count, RunTask/StopTask start and stop real tasks, task
# definitions are what tasks run (an INACTIVE one is refused), and the reads report the truth.
ACTED_ON = frozenset({
    "CreateService", "UpdateService", "DeleteService", "DescribeServices",
    "RunTask", "StopTask", "ListTasks", "DescribeTasks",
    "RegisterTaskDefinition", "DeregisterTaskDefinition",
})

__all__ = ["ACTED_ON", "PATCHES", "PROCESS", "STORE", "EcsStore", "LocalTask", "ServiceHandle", "ServiceState",
           "all_local_tasks", "effective_container", "forget_task",
           "install", "iter_services", "task_definition_of", "update_cluster_counts"]


def install() -> None:
    taskdefs.install()
    tasks.install()
    services.install()
