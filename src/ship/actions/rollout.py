"""Roll a service onto a task definition and watch it until ECS says how it ended.

Success only when the new deployment is COMPLETED and the service steady on
it. If ECS (or the local cloud) rolls it back, the rollout has failed, even
though the service ends up stable on the previous revision.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from ship.actions import Options
from ship.aws import Session
from ship.domain import STEADY_TAG, Service, family_revision
from ship.errors import ShipError
from ship.queries import Target, current_service


STALL_MIN = 180.0


def mark_steady(session: Session, arn: str) -> None:
    """Remember on the revision itself that it reached a steady, completed deployment."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    session.ecs.client.tag_resource(resourceArn=arn, tags=[{"key": STEADY_TAG, "value": stamp}])


def _progress(session: Session, svc: Service, deployment_id: str) -> str:
    dep = svc.deployment(deployment_id)
    parts = []
    if dep:
        desired, running, pending, failed = dep.counts
        parts.append(f"new {family_revision(dep.task_definition)}: {running}/{desired} running, {pending} pending"
                     + (f", {failed} failed" if failed else "") + f", {dep.rollout_state or '?'}")
    others = [d for d in svc.deployments if d.id != deployment_id]
    for d in others:
        parts.append(f"{d.status.lower()} {family_revision(d.task_definition)}: {d.counts[1]} running")
    for tg in svc.target_group_arns:
        health = session.elbv2.target_health(tg)
        states = [h["TargetHealth"]["State"] for h in health]
        parts.append(f"targets {states.count('healthy')}/{len(states)} healthy"
                     + (f" ({', '.join(sorted(set(s for s in states if s != 'healthy')))})" if
                        any(s != "healthy" for s in states) else ""))
    return "; ".join(parts)


def _task_targets(task: dict, targets: dict[tuple[str, int], tuple[str, str]]) -> list[tuple[str, str]]:
    """The target states of ``task``: by host port where tasks share an address (the local
    cloud), by the task's own address on awsvpc (AWS, where it has no network bindings)."""
    ports = {b.get("hostPort") for c in task.get("containers", []) for b in c.get("networkBindings", [])}
    ips = {d.get("value") for a in task.get("attachments", []) for d in a.get("details", [])
           if d.get("name") == "privateIPv4Address"}
    return [state for (ip, port), state in targets.items() if ip in ips and (not ports or port in ports)]


def _task_problem(task: dict, targets: dict[tuple[str, int], tuple[str, str]]) -> str | None:
    """Why ``task`` does not count as healthy yet, or None when it does."""
    tid = task["taskArn"].rsplit("/", 1)[-1][:12]
    status, health = task.get("lastStatus"), task.get("healthStatus", "UNKNOWN")
    if task.get("desiredStatus") == "STOPPED":
        return f"task {tid} {status}: {task.get('stoppedReason') or 'stopping'}"
    if status != "RUNNING":
        return f"task {tid} {status}"
    has_check = any(c.get("healthStatus") not in (None, "UNKNOWN") for c in task.get("containers", []))
    if health == "UNHEALTHY" or (has_check and health != "HEALTHY"):
        return f"task {tid} RUNNING, container health {health}"
    for state, why in _task_targets(task, targets):
        if state != "healthy":
            return f"task {tid} RUNNING, target {state}" + (f" ({why})" if why else "")
    return None


def stuck_report(session: Session, target: Target, svc: Service, deployment_id: str) -> str:
    """What holds the rollout: the new deployment's tasks that are not healthy (healthy ones are
    only counted), its stopped tasks, and older deployments' tasks still running."""
    targets: dict[tuple[str, int], tuple[str, str]] = {}
    unhealthy_targets = []
    for tg in svc.target_group_arns:
        for h in session.elbv2.target_health(tg):
            th, t = h["TargetHealth"], h["Target"]
            targets[(t["Id"], t.get("Port"))] = (th["State"], th.get("Description") or th.get("Reason") or "")
            if th["State"] != "healthy":
                unhealthy_targets.append(f"target {t['Id']}:{t.get('Port')} {th['State']}"
                                         + (f" ({th.get('Reason')}: {th.get('Description', '')})"
                                            if th.get("Reason") else ""))
    tasks = session.ecs.describe_tasks(target.cluster, session.ecs.list_tasks(target.cluster, target.service))
    new = [t for t in tasks if t.get("startedBy") == deployment_id]
    old = [t for t in tasks if t.get("startedBy") != deployment_id]
    problems = [p for p in (_task_problem(t, targets) for t in new) if p]
    dep = svc.deployment(deployment_id)
    desired = dep.counts[0] if dep else svc.desired
    items = [f"{len(new) - len(problems)}/{desired} new tasks healthy"] + problems
    if len(new) < desired:
        items.append(f"{desired - len(new)} new tasks not started yet")
    if old:
        items.append(f"{len(old)} tasks of older deployments still running")
    stopped = session.ecs.describe_tasks(
        target.cluster, session.ecs.list_tasks(target.cluster, target.service, desired_status="STOPPED"))
    failed = [t for t in stopped if t.get("startedBy") == deployment_id]
    if failed:
        reasons = sorted({t.get("stoppedReason") or "no reason given" for t in failed})
        items.append(f"{len(failed)} new tasks stopped ({'; '.join(reasons)})")
    if not problems and not old and len(new) >= desired and not failed:
        items.append(f"ECS has not marked deployment {deployment_id} COMPLETED "
                     f"({dep.rollout_state if dep else 'deployment gone'})")
    if unhealthy_targets and not problems:
        items += unhealthy_targets
    return "; ".join(items)


def stall_window(session: Session, svc: Service) -> float:
    """How long a rollout may show no progress at all before it is called stuck: twice what ECS
    needs to start a task and see it healthy (grace period, target health checks) plus slack."""
    checks = 0.0
    for tg in svc.target_group_arns:
        g = session.elbv2.describe_target_group(tg)
        checks = max(checks, float(g.get("HealthCheckIntervalSeconds", 30))
                     * (int(g.get("HealthyThresholdCount", 5)) + int(g.get("UnhealthyThresholdCount", 2))))
    grace = float(svc.raw.get("healthCheckGracePeriodSeconds") or 0)
    return max(STALL_MIN, 2 * (grace + checks + 60))


def rollout_failed(env_name: str, new_arn: str, reason: str, now_on: str | None,
                   stopped: tuple[str, ...] = ()) -> str:
    """The line for a deployment ECS failed (circuit breaker) or replaced; ``now_on``: what serves
    instead; ``stopped``: the stoppedReason of the deployment's stopped tasks (a task that never
    started has written nothing to its log: its reason is only there)."""
    return (f"rollout of {family_revision(new_arn)} failed: {reason}"
            + (f"; rolled back, {family_revision(now_on)} keeps serving" if now_on else "")
            + (f"; its tasks stopped: {'; '.join(stopped)}" if stopped else "")
            + f"; see why in the tasks' output: `inv logs --env={env_name}`")


DELIBERATE = "Scaling activity initiated by"  # ECS's stoppedReason for a task its scheduler scaled in


def stopped_reasons(session: Session, target: Target, deployment_id: str, most: int = 3) -> tuple[str, ...]:
    """The distinct stoppedReasons of a deployment's stopped tasks, at most ``most``; tasks the
    scheduler stopped on purpose (a scale-in, the rollback's) say nothing about the failure."""
    stopped = session.ecs.describe_tasks(
        target.cluster, session.ecs.list_tasks(target.cluster, target.service, desired_status="STOPPED"))
    reasons = sorted({t.get("stoppedReason") or "no reason given" for t in stopped
                      if t.get("startedBy") == deployment_id})
    return tuple(r for r in reasons if not r.startswith(DELIBERATE))[:most]


def watch(session: Session, target: Target, deployment_id: str, new_arn: str, opts: Options, echo=print,
          started: float | None = None) -> Service:
    """Follow one deployment to COMPLETED (return) or FAILED/rolled back/timeout (raise).

    Two limits: ``opts.timeout`` in all, and ``stall_window`` without any change in the
    deployment's counts or target health (a wedged rollout is reported in minutes)."""
    started = started or time.monotonic()
    deadline = started + opts.timeout
    last, last_change, stall = "", time.monotonic(), None
    while True:
        svc = current_service(session, target)
        dep = svc.deployment(deployment_id)
        line = _progress(session, svc, deployment_id)
        if line != last:
            echo(f"[{time.monotonic() - started:6.1f}s] {line}")
            last, last_change = line, time.monotonic()
        if dep is None or dep.failed or svc.task_definition != new_arn:
            reason = (dep.reason if dep else "") or "the deployment was replaced"
            now_on = svc.task_definition if svc.task_definition != new_arn else None
            raise ShipError(rollout_failed(session.env.name, new_arn, reason, now_on,
                                           stopped_reasons(session, target, deployment_id)))
        if svc.is_steady_on(deployment_id):
            return svc
        stall = stall if stall is not None else stall_window(session, svc)
        now = time.monotonic()
        if now > deadline or now - last_change > stall:
            why = (f"not steady after {opts.timeout:.0f}s" if now > deadline
                   else f"made no progress for {now - last_change:.0f}s")
            raise ShipError(f"rollout of {family_revision(new_arn)} {why}; stuck: "
                            f"{stuck_report(session, target, svc, deployment_id)}")
        time.sleep(poll_interval(time.monotonic() - started, opts.poll, session.env.emulator))


# On the local cloud a check is a few local API calls and a new task answers within a second or
# two: the first seconds of a watch are checked often, the rest every half second at most.
QUICK_POLL, QUICK_WINDOW, EMULATOR_POLL = 0.2, 3.0, 0.5


def poll_interval(elapsed: float, poll: float, emulator: bool) -> float:
    """Seconds until the next check of a rollout ``elapsed`` seconds into its watch."""
    if not emulator:
        return poll
    return min(poll, QUICK_POLL if elapsed < QUICK_WINDOW else EMULATOR_POLL)


def roll_to(session: Session, target: Target, arn: str, opts: Options, echo=print, force: bool = False,
            reason: str = "deploy") -> Service:
    """Point the service at ``arn`` (or force a new deployment) and wait for the outcome."""
    started = time.monotonic()
    svc = current_service(session, target)
    primary = svc.primary
    if svc.task_definition == arn and not force and not (primary and primary.failed):
        # Nothing to change; still wait for (and record) the steady state it reaches.
        echo(f"{target.service} already runs {family_revision(arn)}; nothing to roll out")
        if opts.wait and primary:
            svc = watch(session, target, primary.id, arn, opts, echo, started)
            mark_steady(session, arn)
        return svc
    if opts.dry_run:
        echo(f"dry run: would update {target.service} to {family_revision(arn)}"
             + (" with a forced new deployment" if force else ""))
        return svc
    updated = Service(session.ecs.update_service(target.cluster, target.service, taskDefinition=arn,
                                                 forceNewDeployment=force))
    primary = updated.primary
    if primary is None:
        raise ShipError(f"update of {target.service} started no deployment")
    echo(f"{reason}: {target.service} -> {family_revision(arn)} (deployment {primary.id})")
    if not opts.wait:
        return updated
    svc = watch(session, target, primary.id, arn, opts, echo, started)
    mark_steady(session, arn)
    echo(f"[{time.monotonic() - started:6.1f}s] {target.service} is steady on {family_revision(arn)}")
    return svc
