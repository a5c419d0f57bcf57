"""The ECS service scheduler as a pure function: a snapshot of one service in,
decisions out. No I/O, no clock, no emulator: ``decide(snapshot)`` is all.

The rules and where AWS documents them:

* rolling update within ``minimumHealthyPercent`` / ``maximumPercent``
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html);
* what counts as a healthy task: the load balancer's target health and the
  essential containers' health checks; toward ``minimumHealthyPercent``, a task
  with neither counts after 40 s of RUNNING (same page, "minimumHealthyPercent");
* ``healthCheckGracePeriodSeconds``: unhealthy ELB and container health checks
  are ignored that long after a task started
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html);
* replacement of tasks that stopped, or whose target or essential container is
  unhealthy (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/healthcheck.html,
  .../service-load-balancing.html);
* the deployment circuit breaker: a deployment fails when its failed tasks reach
  clamp(ceil(0.5 x desired), 3, 200), and rolls back to the last COMPLETED
  deployment when rollback is on
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html);
* launch throttling of tasks that keep failing to start
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-throttle-logic.html);
* a deleted service's tasks are stopped; it stays DRAINING until every task has reached
  STOPPING or STOPPED, then turns INACTIVE
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

# Stop codes (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html#ECS-Type-Task-stopCode)
TASK_FAILED_TO_START = "TaskFailedToStart"
ESSENTIAL_CONTAINER_EXITED = "EssentialContainerExited"
USER_INITIATED = "UserInitiated"
SCHEDULER_INITIATED = "ServiceSchedulerInitiated"

PENDING_STATES = ("PROVISIONING", "PENDING", "ACTIVATING")
DRAINED_STATES = ("STOPPING", "DEPROVISIONING", "STOPPED")   # a deleted service waits for these
NO_HEALTH_CHECK_SETTLE = 40.0     # s of RUNNING that stand for "healthy" without any health check
MAX_LAUNCH_BACKOFF = 15.0


def circuit_breaker_threshold(desired: int) -> int:
    """Failed tasks that fail a deployment: clamp(ceil(0.5 x desired), 3, 200)."""
    return min(200, max(3, math.ceil(0.5 * desired)))


@dataclass(frozen=True)
class Settings:
    desired: int
    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    circuit_breaker: bool = False
    rollback: bool = False
    grace: float = 0.0
    load_balanced: bool = False
    settle: float = NO_HEALTH_CHECK_SETTLE


@dataclass(frozen=True)
class Deployment:
    id: str
    status: str                   # PRIMARY | ACTIVE
    task_definition: str
    rollout_state: str = "IN_PROGRESS"
    failed_tasks: int = 0


@dataclass(frozen=True)
class Task:
    id: str
    deployment_id: str
    created: float                # epoch seconds (ordering only)
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    stop_code: str | None = None  # set once the task is being stopped
    started: float | None = None  # epoch seconds it reached RUNNING
    targets: tuple[tuple[str, str], ...] = ()   # (target group arn, state) for each registered group
    target_groups: int = 0        # groups the task must be registered in
    health: str = "UNKNOWN"       # the task's healthStatus (from its essential containers)
    has_health_check: bool = False
    ever_ready: bool = False
    failure_counted: bool = False

    @property
    def stopping(self) -> bool:
        return self.desired_status == "STOPPED" or self.stop_code is not None

    @property
    def done(self) -> bool:
        return self.last_status == "STOPPED"


@dataclass(frozen=True)
class Memory:
    """What the scheduler remembers about a service between steps (kept in the emulator)."""

    steady: bool = False
    fail_streak: int = 0
    next_launch_at: float = 0.0   # epoch seconds
    last_completed_task_definition: str | None = None
    last_completed_deployment: str | None = None


@dataclass(frozen=True)
class Snapshot:
    service: str
    settings: Settings
    deployments: tuple[Deployment, ...]
    tasks: tuple[Task, ...]
    memory: Memory
    now: float                    # epoch seconds
    next_deployment_id: str = ""  # the id a deployment created by this step gets (rollback)


@dataclass(frozen=True)
class Stop:
    task_id: str
    reason: str
    code: str = SCHEDULER_INITIATED


@dataclass
class Decisions:
    starts: list[str] = field(default_factory=list)          # one deployment id per task to start
    stops: list[Stop] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)        # task ids now counted as failed
    ready: list[str] = field(default_factory=list)           # task ids that became ready for the first time
    events: list[str] = field(default_factory=list)
    rollout: dict[str, tuple[str, str]] = field(default_factory=dict)   # deployment id -> (state, reason)
    failed_tasks: dict[str, int] = field(default_factory=dict)          # deployment id -> new failedTasks
    new_deployment: tuple[str, str] | None = None             # (id, task definition): the rollback
    remove: list[str] = field(default_factory=list)           # deployment ids that are over
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)    # deployment id -> (running, pending)
    memory: Memory = field(default_factory=Memory)
    drained: bool = False                                     # a deleted service may turn INACTIVE


# ---------------------------------------------------------------------------- task predicates

def is_ready(task: Task, s: Settings, now: float) -> bool:
    """Healthy: RUNNING, its targets healthy (with a load balancer), its essential containers
    HEALTHY (with container health checks)."""
    if task.last_status != "RUNNING" or task.stopping:
        return False
    if s.load_balanced:
        if len(task.targets) < task.target_groups or any(state != "healthy" for _, state in task.targets):
            return False
    if task.has_health_check:
        return task.health == "HEALTHY"
    return True


def counts_toward_minimum_healthy(task: Task, s: Settings, now: float) -> bool:
    """As ``is_ready``, except that a task with neither a load balancer nor a container
    health check counts only after 40 s of RUNNING (DT, "minimumHealthyPercent")."""
    if not is_ready(task, s, now):
        return False
    if s.load_balanced or task.has_health_check:
        return True
    return task.started is not None and now - task.started >= s.settle


def _past_grace(task: Task, s: Settings, now: float) -> bool:
    return task.started is not None and now - task.started >= s.grace


def _health_failure(task: Task, s: Settings, now: float) -> tuple[str, str] | None:
    """(stoppedReason, event) when the task fails a health check past the grace period."""
    if task.last_status != "RUNNING" or task.stopping or not _past_grace(task, s, now):
        return None
    for tg, state in task.targets:
        if state == "unhealthy":
            return (f"Task failed ELB health checks in (target-group {tg})",
                    f"(task {task.id}) is unhealthy in (target-group {tg}).")
    if task.has_health_check and task.health == "UNHEALTHY":
        return "Task failed container health checks", f"(task {task.id}) failed container health checks."
    return None


def _is_failure(task: Task) -> bool:
    """A stopped task that counts toward the circuit breaker."""
    if task.stop_code == TASK_FAILED_TO_START:
        return True
    return task.stop_code == ESSENTIAL_CONTAINER_EXITED and not task.ever_ready


# ---------------------------------------------------------------------------- the step

class _Step:
    def __init__(self, snap: Snapshot):
        self.snap, self.s, self.now = snap, snap.settings, snap.now
        self.out = Decisions(memory=snap.memory)
        self.stopping: set[str] = {t.id for t in snap.tasks if t.stopping}
        self.deps = {d.id: d for d in snap.deployments}

    # -- helpers
    def live(self) -> list[Task]:
        return [t for t in self.snap.tasks if not t.done and t.id not in self.stopping]

    def ready(self, t: Task) -> bool:
        return t.id not in self.stopping and is_ready(t, self.s, self.now)

    def stop(self, task: Task, reason: str, code: str = SCHEDULER_INITIATED) -> None:
        if task.id not in self.stopping:
            self.stopping.add(task.id)
            self.out.stops.append(Stop(task.id, reason, code))

    def event(self, message: str) -> None:
        self.out.events.append(message)

    def count_failure(self, task: Task) -> None:
        if task.failure_counted or task.id in self.out.failures:
            return
        self.out.failures.append(task.id)
        dep = self.deps.get(task.deployment_id)
        if dep is not None:
            dep = replace(dep, failed_tasks=dep.failed_tasks + 1)
            self.deps[dep.id] = dep
            self.out.failed_tasks[dep.id] = dep.failed_tasks
        m = self.out.memory
        streak = m.fail_streak + 1
        self.out.memory = replace(m, fail_streak=streak,
                                  next_launch_at=self.now + min(MAX_LAUNCH_BACKOFF, 0.5 * 2 ** (streak - 1)))

    def set_rollout(self, dep: Deployment, state: str, reason: str) -> Deployment:
        dep = replace(dep, rollout_state=state)
        self.deps[dep.id] = dep
        self.out.rollout[dep.id] = (state, reason)
        return dep

    def primary(self) -> Deployment | None:
        return next((d for d in self.deps.values() if d.status == "PRIMARY"), None)


def _observe_tasks(st: _Step) -> None:
    """Failures to count, tasks that failed health checks, tasks ready for the first time."""
    for task in st.snap.tasks:
        if task.stopping or task.done:
            if _is_failure(task):
                st.count_failure(task)
            continue
        failed = _health_failure(task, st.s, st.now)
        if failed is not None:
            reason, event = failed
            st.count_failure(task)
            st.stop(task, reason)
            st.event(event)
            st.event(f"has stopped 1 running tasks: (task {task.id}).")
        elif st.ready(task) and not task.ever_ready:
            st.out.ready.append(task.id)
            st.out.memory = replace(st.out.memory, fail_streak=0)


def _circuit_breaker(st: _Step, primary: Deployment) -> Deployment:
    """Fail the primary deployment when its failures reach the threshold; maybe roll back."""
    s = st.s
    if not (s.circuit_breaker and primary.rollout_state == "IN_PROGRESS"
            and primary.failed_tasks >= circuit_breaker_threshold(s.desired)):
        return primary
    failed = st.set_rollout(primary, "FAILED", "ECS deployment circuit breaker: tasks failed to start.")
    st.event(f"(deployment {failed.id}) deployment failed: tasks failed to start.")
    target = st.snap.memory.last_completed_task_definition
    if not (s.rollback and target and st.snap.next_deployment_id):
        return failed
    new_id = st.snap.next_deployment_id
    st.out.new_deployment = (new_id, target)
    st.deps[failed.id] = replace(failed, status="ACTIVE")
    rolled = Deployment(new_id, "PRIMARY", target)
    st.deps[new_id] = rolled
    back_to = st.snap.memory.last_completed_deployment or ""
    st.event(f"(deployment {failed.id}) rolling back to deployment {back_to}.".replace(" .", "."))
    st.out.memory = replace(st.out.memory, fail_streak=0, next_launch_at=0.0)
    return rolled


def _scale_in(st: _Step, primary: Deployment, p_live: list[Task]) -> None:
    extra = len(p_live) - st.s.desired
    if extra <= 0:
        return
    victims = sorted(p_live, key=lambda t: (st.ready(t), t.created))[:extra]
    for t in victims:
        st.stop(t, f"Scaling activity initiated by (deployment {primary.id})")
    st.event(f"has stopped {extra} running tasks: " + " ".join(f"(task {t.id})" for t in victims) + ".")


def _launch(st: _Step, primary: Deployment) -> int:
    s = st.s
    live = st.live()
    p_live = [t for t in live if t.deployment_id == primary.id]
    old_live = [t for t in live if t.deployment_id != primary.id]
    max_total = math.floor(s.desired * s.maximum_percent / 100)
    need = s.desired - len(p_live)
    room = (max_total - len(live)) if old_live else need
    launch = max(0, min(need, room))
    if launch and st.now < st.out.memory.next_launch_at:
        launch = 0
    st.out.starts.extend([primary.id] * launch)
    return launch


def _retire_old(st: _Step, primary: Deployment, launched: int) -> None:
    """Stop tasks of older deployments while keeping minimumHealthyPercent ready."""
    old_live = [t for t in st.live() if t.deployment_id != primary.id]
    if not old_live:
        return

    def healthy(t: Task) -> bool:
        return t.id not in st.stopping and counts_toward_minimum_healthy(t, st.s, st.now)

    min_healthy = math.ceil(st.s.desired * st.s.minimum_healthy_percent / 100)
    budget = sum(1 for t in st.live() if healthy(t)) - min_healthy
    stopped = []
    for t in sorted(old_live, key=healthy):
        if healthy(t):
            if budget <= 0:
                continue
            budget -= 1
        st.stop(t, f"Scaling activity initiated by (deployment {primary.id})")
        stopped.append(t)
    if stopped:
        if any(t.targets for t in stopped):
            st.event(f"has begun draining connections on {len(stopped)} tasks.")
        st.event(f"has stopped {len(stopped)} running tasks: " + " ".join(f"(task {t.id})" for t in stopped) + ".")


def _completion(st: _Step, primary: Deployment, launched: int) -> None:
    s = st.s
    p_live = [t for t in st.live() if t.deployment_id == primary.id]
    p_ready = sum(1 for t in p_live if st.ready(t))
    others_busy = any(t.deployment_id != primary.id and not t.done for t in st.snap.tasks)
    m = st.out.memory
    if launched == 0 and p_ready >= s.desired and len(p_live) == s.desired and not others_busy:
        if primary.rollout_state != "COMPLETED":
            st.set_rollout(primary, "COMPLETED", f"ECS deployment {primary.id} completed.")
            st.event(f"(deployment {primary.id}) deployment completed.")
        st.out.remove.extend(d for d in st.deps if d != primary.id)
        m = replace(m, last_completed_task_definition=primary.task_definition,
                    last_completed_deployment=primary.id)
        if not m.steady:
            m = replace(m, steady=True)
            st.event("has reached a steady state.")
    elif m.steady:
        m = replace(m, steady=False)
    st.out.memory = m


def _counts(st: _Step) -> None:
    for dep_id in st.deps:
        running = pending = 0
        for t in st.snap.tasks:
            if t.deployment_id != dep_id or t.desired_status != "RUNNING" or t.id in st.stopping:
                continue
            running += t.last_status == "RUNNING"
            pending += t.last_status in PENDING_STATES
        st.out.counts[dep_id] = (running, pending + st.out.starts.count(dep_id))


def decide(snap: Snapshot) -> Decisions:
    """One scheduler step for one service."""
    st = _Step(snap)
    _observe_tasks(st)
    primary = st.primary()
    if primary is not None:
        primary = _circuit_breaker(st, primary)
    if primary is not None and primary.rollout_state != "FAILED":
        _scale_in(st, primary, [t for t in st.live() if t.deployment_id == primary.id])
        launched = _launch(st, primary)
        _retire_old(st, primary, launched)
        _completion(st, primary, launched)
    _counts(st)
    return st.out


def decide_deleted(snap: Snapshot) -> Decisions:
    """A deleted (DRAINING) service: every task it still runs is stopped; once all have reached
    STOPPING or STOPPED it is drained."""
    st = _Step(snap)
    for t in st.live():
        st.stop(t, "Service deleted")
    _counts(st)
    st.out.drained = all(t.last_status in DRAINED_STATES for t in snap.tasks)
    return st.out
