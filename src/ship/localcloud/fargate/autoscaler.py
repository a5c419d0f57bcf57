"""Service Auto Scaling for the services the data plane runs: the thin loop around
``tracking.decide``.

Every ``period`` seconds (``SHIP_LOCAL_METRIC_PERIOD``; 60 by default, CloudWatch's one-minute
datapoints) ``AutoScaler.step``:

1. reads, under ``emulator.LOCK``, the ECS scalable targets, their target tracking policies,
   the running tasks of their services and the healthy targets of the target groups named
   by ``ALBRequestCountPerTarget`` policies;
2. measures, without the lock, one datapoint per policy (``metrics``: /proc or the engine's
   stats, the load balancer's request counts);
3. under the lock again, asks ``tracking.decide`` per scalable target and applies its answer:
   the new desired count through the path UpdateService takes
   (``ServiceHandle.set_desired_count``), a scaling activity in the emulator
   (DescribeScalingActivities; a not-scaled one once per cause and reason), the scaler's
   memory; then wakes the scheduler, which starts or stops the tasks (its own service events:
   "has started 2 tasks", "has stopped 1 running tasks").

Policies on a customized metric get no datapoints here and never scale. A failure in a step
is logged and the next step starts afresh: the loop never dies.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from ship.localcloud import emulator
from ship.localcloud.emulator import autoscaling, ecs, elbv2
from ship.localcloud.fargate import metrics, tracking

log = logging.getLogger("ship.localcloud.fargate.autoscaler")

PERIOD_ENV = "SHIP_LOCAL_METRIC_PERIOD"
DEFAULT_PERIOD = 60.0
DIMENSION = "ecs:service:DesiredCount"


def period_from_env(environ=os.environ) -> float:
    """Seconds per datapoint: ``SHIP_LOCAL_METRIC_PERIOD`` (1 to 3600), else 60."""
    raw = environ.get(PERIOD_ENV, "").strip()
    if not raw:
        return DEFAULT_PERIOD
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 1.0 <= value <= 3600.0:
        log.warning("%s=%r is not a number of seconds between 1 and 3600: using %.0f", PERIOD_ENV, raw,
                    DEFAULT_PERIOD)
        return DEFAULT_PERIOD
    return value


@dataclass(frozen=True)
class TaskProbe:
    task_id: str
    pid: int | None                  # process runtime: the task's session leader
    container: str | None            # container runtime: the container's name
    engine: object | None
    cpu_units: float                 # the task's cpu (0 when unknown)
    memory_mib: float                # the task's memory (0 when unknown)


@dataclass
class Plan:
    """One scalable target's service, policies and what to measure for them."""

    target: autoscaling.ScalableTarget
    service: ecs.ServiceHandle
    policies: list[autoscaling.TargetTrackingPolicy]
    tasks: list[TaskProbe] = field(default_factory=list)
    groups: dict[str, tuple[str, int]] = field(default_factory=dict)   # policy ARN -> (target group, healthy)


def _probe(run) -> TaskProbe | None:
    from ship.localcloud.runtime.container_runner import ContainerRunner, container_name

    t = run.task
    if run.done or run.handle is None or t.last_status != "RUNNING" or t.desired_status != "RUNNING":
        return None
    units = float(t.cpu or 0) if str(t.cpu or "").isdigit() else 0.0
    mib = float(t.memory or 0) if str(t.memory or "").isdigit() else 0.0
    if isinstance(run.runner, ContainerRunner):
        return TaskProbe(t.id, None, container_name(t.id), run.runner.engine, units, mib)
    return TaskProbe(t.id, run.handle.pid, None, None, units, mib) if run.handle.pid else None


class AutoScaler:
    def __init__(self, dataplane, request_counts: Callable[[], dict[str, int]] | None = None,
                 period: float | None = None):
        self.dataplane = dataplane
        self.request_counts = request_counts or dict
        self.period = period or period_from_env()
        self.history: dict[str, collections.deque] = {}        # policy ARN -> datapoints, oldest first
        self.usage: dict[str, metrics.Usage] = {}               # task id -> its last sample
        self.requests: dict[str, tuple[float, int]] = {}        # target group ARN -> (time, requests)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="autoscaler", daemon=True)

    def start(self) -> None:
        log.info("service auto scaling: one datapoint every %.0f s", self.period)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.step()
            except Exception:
                log.exception("service auto scaling step failed")

    # ------------------------------------------------------------------ one step

    def step(self) -> None:
        with emulator.LOCK:
            plans = self.plans()
        datapoints = self.measure(plans)
        live = {p.arn for plan in plans for p in plan.policies}
        for arn in [a for a in self.history if a not in live]:
            del self.history[arn]
        changed = False
        with emulator.LOCK:
            for plan in plans:
                try:
                    changed |= self.evaluate(plan, datapoints)
                except Exception:
                    log.exception("auto scaling of %s failed", plan.target.resource_id)
        if changed:
            self.dataplane.wake()

    def plans(self) -> list[Plan]:
        """Under the lock: every ECS scalable target with a policy and an ACTIVE service."""
        services = {(s.account, s.region, f"service/{s.cluster_name}/{s.name}"): s
                    for s in ecs.iter_services() if s.active}
        runs = list(self.dataplane.runs.values())
        out = []
        for target in autoscaling.scalable_targets("ecs"):
            svc = services.get((target.account, target.region, target.resource_id))
            if svc is None or target.dimension != DIMENSION:
                continue
            policies = autoscaling.scaling_policies(target.account, target.region, target.resource_id)
            if not policies:
                continue
            plan = Plan(target, svc, policies)
            plan.tasks = [p for p in (_probe(r) for r in runs if r.service_arn == svc.arn) if p is not None]
            for policy in policies:
                if policy.metric_type == metrics.REQUESTS:
                    group = _target_group(policy.resource_label)
                    if group is not None:
                        healthy = sum(1 for _h, _p, state in elbv2.target_states(group) if state == "healthy")
                        plan.groups[policy.arn] = (group, healthy)
            out.append(plan)
        return out

    def measure(self, plans: list[Plan]) -> dict[str, float | None]:
        """Without the lock: one datapoint per policy ARN (None: insufficient data)."""
        now = time.monotonic()
        tasks = [t for plan in plans for t in plan.tasks]
        usage = metrics.process_usage({t.task_id: t.pid for t in tasks if t.pid}, now)
        by_engine: dict[int, tuple[object, dict[str, str]]] = {}
        for t in tasks:
            if t.container and t.engine is not None:
                by_engine.setdefault(id(t.engine), (t.engine, {}))[1][t.task_id] = t.container
        for engine, names in by_engine.values():
            usage.update(metrics.engine_usage(engine, names, now))
        counts = self.request_counts() if any(plan.groups for plan in plans) else {}
        out: dict[str, float | None] = {}
        for plan in plans:
            for policy in plan.policies:
                out[policy.arn] = self._datapoint(policy, plan, usage, counts, now)
        self.usage = usage
        for group, _healthy in {g for plan in plans for g in plan.groups.values()}:
            self.requests[group] = (now, counts.get(group, 0))
        return out

    def _datapoint(self, policy, plan: Plan, usage: dict, counts: dict, now: float) -> float | None:
        if policy.metric_type == metrics.CPU:
            return metrics.service_cpu_utilization(
                (metrics.cpu_units_used(self.usage.get(t.task_id), usage[t.task_id]), t.cpu_units)
                for t in plan.tasks if t.task_id in usage)
        if policy.metric_type == metrics.MEMORY:
            return metrics.service_memory_utilization(
                (usage[t.task_id].memory_bytes, t.memory_mib) for t in plan.tasks if t.task_id in usage)
        if policy.metric_type == metrics.REQUESTS and policy.arn in plan.groups:
            group, healthy = plan.groups[policy.arn]
            return metrics.requests_per_target(self.requests.get(group), (now, counts.get(group, 0)), healthy)
        return None

    def evaluate(self, plan: Plan, datapoints: dict[str, float | None]) -> bool:
        """Under the lock: record the datapoints, decide, apply. True when the desired count changed."""
        target, svc = plan.target, plan.service
        policies = []
        for p in plan.policies:
            history = self.history.setdefault(p.arn, collections.deque(maxlen=tracking.LOW_DATAPOINTS))
            history.append(datapoints.get(p.arn))
            policies.append(tracking.Policy(
                p.name, p.target_value, tuple(history), float(p.scale_out_cooldown), float(p.scale_in_cooldown),
                p.disable_scale_in, p.alarm_high or f"TargetTracking-{target.resource_id}-AlarmHigh",
                p.alarm_low or f"TargetTracking-{target.resource_id}-AlarmLow"))
        if not svc.active:
            return False
        stored = autoscaling.scaling_memory(target.account, target.region, target.namespace, target.resource_id,
                                            target.dimension)
        limits = tracking.Limits(target.min_capacity, target.max_capacity, target.dynamic_scaling_out_suspended,
                                 target.dynamic_scaling_in_suspended)
        current = svc.desired_count
        d = tracking.decide(current, limits, policies, tracking.Memory(**asdict(stored)), time.time())
        if d is None:
            return False
        for key, value in asdict(d.memory).items():
            setattr(stored, key, value)
        if d.scaled:
            svc.set_desired_count(d.capacity)
            log.info("%s: desired count %d -> %d (%s, metric %.1f)", target.resource_id, current, d.capacity,
                     d.cause, d.metric)
        self._record(target, d, current)
        return d.scaled

    @staticmethod
    def _record(target: autoscaling.ScalableTarget, d: tracking.Decision, current: int) -> None:
        now = time.time()
        if d.scaled:
            activity = autoscaling.ScalingActivity(
                autoscaling.new_activity_id(), target.namespace, target.resource_id, target.dimension,
                f"Setting desired count to {d.capacity}.", d.cause, now, now, "Successful",
                f"Successfully set desired count to {d.capacity}. Change successfully fulfilled by ecs.")
        else:
            reason = autoscaling.NotScaledReason(
                d.not_scaled or tracking.ALREADY_AT_DESIRED,
                max_capacity=target.max_capacity if d.not_scaled == tracking.ALREADY_AT_MAX else None,
                min_capacity=target.min_capacity if d.not_scaled == tracking.ALREADY_AT_MIN else None,
                current_capacity=current)
            last = autoscaling.last_activity(target.account, target.region, target.namespace, target.resource_id,
                                             target.dimension)
            if last is not None and last.not_scaled == (reason,) and last.cause == d.cause:
                return                  # the same condition, still lasting: said once
            activity = autoscaling.ScalingActivity(
                autoscaling.new_activity_id(), target.namespace, target.resource_id, target.dimension,
                f"Setting desired count to {d.capacity}.", d.cause, now, now, "Failed",
                f"Failed to set desired count to {d.capacity}", (reason,))
        autoscaling.record_activity(target.account, target.region, activity)


def _target_group(resource_label: str | None) -> str | None:
    suffix = metrics.target_group_suffix(resource_label)
    if suffix is None:
        return None
    return next((tg.arn for tg in elbv2.target_groups() if tg.arn.endswith(":" + suffix)), None)
