"""One scheduler step of one ECS service, the effectful half: read the emulator
into a ``scheduler.Snapshot``, and apply the ``scheduler.Decisions`` back
(deployments, counts, events, tasks to create and to stop). The caller holds
``emulator.LOCK``; nothing here waits on I/O.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Callable

from ship.localcloud.emulator import ecs, elbv2
from ship.localcloud.emulator.compat import utcnow
from ship.localcloud.fargate import scheduler
from ship.localcloud.fargate.lifecycle import TaskRun


def _epoch(value) -> float | None:
    return value.timestamp() if value is not None else None


def task_view(run: TaskRun, host: str) -> scheduler.Task:
    t = run.task
    return scheduler.Task(
        id=t.id, deployment_id=t.started_by or "", created=_epoch(t.created_at) or 0.0,
        last_status=t.last_status, desired_status=t.desired_status,
        stop_code=t.stop_code if t.desired_status == "STOPPED" else None,
        started=_epoch(t.started_at),
        targets=tuple((tg, elbv2.target_state(tg, host, run.port)) for tg in run.registered),
        target_groups=len(run.target_groups), health=t.health_status,
        has_health_check=run.health is not None, ever_ready=run.ever_ready,
        failure_counted=run.failure_counted)


def snapshot(svc: ecs.ServiceHandle, runs: list[TaskRun], host: str, now: float, settle: float,
             next_deployment_id: str) -> scheduler.Snapshot:
    conf = svc.deployment_configuration
    breaker = conf.get("deploymentCircuitBreaker") or {}
    settings = scheduler.Settings(
        desired=svc.desired_count, minimum_healthy_percent=int(conf.get("minimumHealthyPercent", 100)),
        maximum_percent=int(conf.get("maximumPercent", 200)), circuit_breaker=bool(breaker.get("enable")),
        rollback=bool(breaker.get("rollback")), grace=float(svc.grace_seconds),
        load_balanced=any(lb.get("targetGroupArn") for lb in svc.load_balancers), settle=settle)
    deployments = tuple(
        scheduler.Deployment(d["id"], d["status"], d["taskDefinition"], d.get("rolloutState") or "IN_PROGRESS",
                             int(d.get("failedTasks") or 0))
        for d in svc.deployments)
    return scheduler.Snapshot(svc.name, settings, deployments, tuple(task_view(r, host) for r in runs),
                              scheduler.Memory(**asdict(svc.state)), now, next_deployment_id)


def apply(svc: ecs.ServiceHandle, d: scheduler.Decisions, runs: dict[str, TaskRun],
          new_run: Callable[[ecs.LocalTask], TaskRun | None]) -> list[TaskRun]:
    """Apply ``d`` to the emulator; returns the runs of the tasks to start."""
    now = utcnow()
    for task_id in d.failures:
        runs[task_id].failure_counted = True
    for task_id in d.ready:
        runs[task_id].ever_ready = True
    if d.new_deployment is not None:
        dep_id, td = d.new_deployment
        svc.start_deployment(td, dep_id)
    for dep_id, failed in d.failed_tasks.items():
        dep = svc.deployment(dep_id)
        if dep is not None:
            dep["failedTasks"], dep["updatedAt"] = failed, now
    for dep_id, (state, reason) in d.rollout.items():
        dep = svc.deployment(dep_id)
        if dep is not None:
            dep["rolloutState"], dep["rolloutStateReason"], dep["updatedAt"] = state, reason, now
    for message in d.events:
        svc.event(message)
    for stop in d.stops:
        run = runs[stop.task_id]
        run.task.request_stop(stop.reason, stop.code)
        run.stop_requested.set()
    started = _create_tasks(svc, d.starts, new_run)
    for dep_id in d.remove:
        svc.remove_deployment(dep_id)
    _set_counts(svc, d.counts)
    service_state = svc.state
    for key, value in asdict(d.memory).items():
        setattr(service_state, key, value)
    if d.drained:
        svc.finish_draining()
    return started


def _create_tasks(svc: ecs.ServiceHandle, starts: list[str], new_run) -> list[TaskRun]:
    started = []
    for dep_id in starts:
        dep = svc.deployment(dep_id)
        if dep is None:
            continue
        try:
            task = svc.new_task(dep)
        except Exception as exc:      # the task definition is gone (DeleteTaskDefinitions)
            svc.event_once(f"was unable to place a task: {type(exc).__name__}: {exc} "
                           f"(task definition {dep['taskDefinition']}).")
            break
        run = new_run(task)
        if run is not None:
            started.append(run)
    if started:
        svc.event(f"has started {len(started)} tasks: " + " ".join(f"(task {r.task.id})" for r in started) + ".")
    return started


def _set_counts(svc: ecs.ServiceHandle, counts: dict[str, tuple[int, int]]) -> None:
    running = pending = 0
    for dep in svc.deployments:
        r, p = counts.get(dep["id"], (0, 0))
        dep["desiredCount"] = svc.desired_count if dep["status"] == "PRIMARY" else dep.get("desiredCount", 0)
        if (dep.get("runningCount"), dep.get("pendingCount")) != (r, p):
            dep["runningCount"], dep["pendingCount"] = r, p
            dep["updatedAt"] = utcnow()
        running += r
        pending += p
    svc.set_counts(running, pending)
