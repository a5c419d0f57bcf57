"""The ECS service scheduler's rules, one table row per documented behaviour.

Pure function, no emulator, no processes: the whole file runs in milliseconds.
Sources (cited per row):
  DT   https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-ecs.html
  CB   https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-circuit-breaker.html
  HC   https://docs.aws.amazon.com/AmazonECS/latest/developerguide/healthcheck.html
  LB   https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-load-balancing.html
  CS   https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html
  TH   https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-throttle-logic.html
  SC   https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Task.html (stopCode)
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ship.localcloud.fargate import scheduler as S

NOW = 10_000.0
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/1"
OLD, NEW = "ecs-svc/old", "ecs-svc/new"


def settings(**kw) -> S.Settings:
    base = dict(desired=2, minimum_healthy_percent=100, maximum_percent=200, circuit_breaker=True,
                rollback=True, grace=0.0, load_balanced=True)
    base.update(kw)
    return S.Settings(**base)


def task(tid: str, dep: str = NEW, *, ready: bool = True, **kw) -> S.Task:
    """A RUNNING task; ``ready`` = its target is healthy (else initial) and it ran ~100 s."""
    base = dict(id=tid, deployment_id=dep, created=NOW - 200 + int(tid.strip("t") or 0), last_status="RUNNING",
                started=NOW - 100, targets=((TG, "healthy" if ready else "initial"),), target_groups=1,
                ever_ready=ready)
    base.update(kw)
    return S.Task(**base)


def snap(tasks=(), deps=None, memory=None, **kw) -> S.Snapshot:
    deps = deps if deps is not None else (S.Deployment(NEW, "PRIMARY", "td:2"),)
    memory = memory or S.Memory(last_completed_task_definition="td:1", last_completed_deployment=OLD)
    return S.Snapshot("web", settings(**kw), tuple(deps), tuple(tasks), memory, NOW, next_deployment_id="ecs-svc/rb")


ROLLING = (S.Deployment(NEW, "PRIMARY", "td:2"), S.Deployment(OLD, "ACTIVE", "td:1", "COMPLETED"))


def stopped_ids(d: S.Decisions) -> list[str]:
    return [s.task_id for s in d.stops]


# ----------------------------------------------------------------------------- rolling update

ROLLING_ROWS = [
    pytest.param(snap(), dict(starts=[NEW, NEW], stops=[]),
                 id="DT: a new service launches desiredCount tasks"),
    pytest.param(snap([task("t1", OLD), task("t2", OLD)], ROLLING), dict(starts=[NEW, NEW], stops=[]),
                 id="DT: maximumPercent 200 launches the whole new set beside the old one"),
    pytest.param(snap([task(f"t{i}", OLD) for i in range(4)], ROLLING, desired=4, maximum_percent=150),
                 dict(starts=[NEW, NEW], stops=[]),
                 id="DT: maximumPercent caps running+pending tasks at floor(desired x max / 100)"),
    pytest.param(snap([task("t1", OLD), task("t2", OLD)], ROLLING, maximum_percent=100, minimum_healthy_percent=50),
                 dict(starts=[], stops=["t1"]),
                 id="DT: maximumPercent 100 makes room by stopping old tasks down to minimumHealthyPercent"),
    pytest.param(snap([task("t1", OLD), task("t2", OLD), task("t3", ready=False), task("t4", ready=False)],
                      ROLLING), dict(starts=[], stops=[]),
                 id="DT: minimumHealthyPercent 100 keeps every old task until new ones are healthy"),
    pytest.param(snap([task("t1", OLD), task("t2", OLD), task("t3"), task("t4", ready=False)], ROLLING),
                 dict(starts=[], stops=["t1"]),
                 id="DT: one old task stops for each new task that turned healthy"),
    pytest.param(snap([task("t1", OLD, ready=False), task("t2", OLD)], ROLLING, maximum_percent=100),
                 dict(stops=["t1"]),
                 id="DT: old tasks that are not healthy are stopped regardless of minimumHealthyPercent"),
    pytest.param(snap([task("t1"), task("t2", last_status="STOPPED", desired_status="STOPPED",
                                        stop_code=S.USER_INITIATED)]), dict(starts=[NEW], stops=[]),
                 id="DT: a task stopped by StopTask is replaced and is not a failure"),
    pytest.param(snap([task("t1"), task("t2"), task("t3")], desired=2), dict(starts=[], stops=["t1"]),
                 id="DT: scale-in stops tasks beyond desiredCount (unhealthy first, then oldest)"),
    pytest.param(snap([task("t1"), task("t2", ready=False), task("t3")], desired=2), dict(stops=["t2"]),
                 id="DT: scale-in stops an unhealthy task before a healthy one"),
]


@pytest.mark.parametrize("snapshot, expected", ROLLING_ROWS)
def test_rolling_update(snapshot, expected):
    d = S.decide(snapshot)
    if "starts" in expected:
        assert d.starts == expected["starts"]
    assert stopped_ids(d) == expected["stops"]


# ----------------------------------------------------------------------------- health

def _health_rows():
    unhealthy_tg = dict(targets=((TG, "unhealthy"),))
    yield pytest.param(snap([task("t1", **unhealthy_tg), task("t2")]),
                       "Task failed ELB health checks in (target-group " + TG + ")", True,
                       id="LB: a target unhealthy past the grace period is stopped, replaced and counted as failed")
    yield pytest.param(snap([task("t1", started=NOW - 10, **unhealthy_tg), task("t2")], grace=60), None, False,
                       id="CS: healthCheckGracePeriodSeconds ignores unhealthy ELB checks after a task starts")
    yield pytest.param(snap([task("t1", has_health_check=True, health="UNHEALTHY"), task("t2")]),
                       "Task failed container health checks", True,
                       id="HC: an essential container that turns UNHEALTHY gets its task replaced, a failure")
    yield pytest.param(snap([task("t1", has_health_check=True, health="UNHEALTHY", started=NOW - 5), task("t2")],
                            grace=30), None, False,
                       id="CS: the grace period also covers container health checks")
    yield pytest.param(snap([task("t1", has_health_check=False, health="UNHEALTHY"), task("t2")]), None, False,
                       id="HC: a task without container health checks is never stopped for its health status")
    yield pytest.param(snap([task("t1", ready=False, stop_code=S.ESSENTIAL_CONTAINER_EXITED,
                                  desired_status="STOPPED", last_status="STOPPED")]), None, True,
                       id="CB: an essential container that exits before the task was healthy is a failure")
    yield pytest.param(snap([task("t1", stop_code=S.ESSENTIAL_CONTAINER_EXITED, desired_status="STOPPED",
                                  last_status="STOPPED")]), None, False,
                       id="CB: an exit after the task was healthy is replaced but not a deployment failure")
    yield pytest.param(snap([task("t1", ready=False, last_status="STOPPED", desired_status="STOPPED",
                                  stop_code=S.TASK_FAILED_TO_START, started=None)]), None, True,
                       id="SC: TaskFailedToStart counts toward the circuit breaker")
    yield pytest.param(snap([task("t1", ready=False, last_status="STOPPED", desired_status="STOPPED",
                                  stop_code=S.TASK_FAILED_TO_START, failure_counted=True)]), None, False,
                       id="CB: a failed task is counted once, not at every step")


@pytest.mark.parametrize("snapshot, reason, failure", list(_health_rows()))
def test_health_and_failures(snapshot, reason, failure):
    d = S.decide(snapshot)
    reasons = {s.task_id: s.reason for s in d.stops}
    assert reasons.get("t1") == reason
    assert (d.failures == ["t1"]) is failure
    if failure:
        assert d.failed_tasks == {NEW: 1}
        assert d.memory.fail_streak == 1 and d.memory.next_launch_at > NOW


READINESS_ROWS = [
    pytest.param(task("t1"), settings(), True, id="LB: healthy target and no container check: healthy"),
    pytest.param(task("t1", ready=False), settings(), False, id="LB: a target still in initial is not healthy yet"),
    pytest.param(task("t1", targets=()), settings(), False,
                 id="LB: a task not yet registered in its target group is not healthy"),
    pytest.param(task("t1", has_health_check=True, health="UNKNOWN"), settings(), False,
                 id="DT: with a container check the scheduler waits for HEALTHY as well as the target"),
    pytest.param(task("t1", has_health_check=True, health="HEALTHY"), settings(), True,
                 id="DT: HEALTHY container and healthy target: healthy"),
    pytest.param(task("t1", targets=(), target_groups=0, started=NOW - 10), settings(load_balanced=False), True,
                 id="DT: without load balancer or container check, RUNNING is healthy"),
    pytest.param(task("t1", last_status="PENDING", started=None), settings(), False,
                 id="DT: a PENDING task never counts as healthy"),
]


@pytest.mark.parametrize("t, s, ready", READINESS_ROWS)
def test_what_counts_as_healthy(t, s, ready):
    assert S.is_ready(t, s, NOW) is ready


MIN_HEALTHY_ROWS = [
    pytest.param(task("t1", targets=(), target_groups=0, started=NOW - 10), settings(load_balanced=False), False,
                 id="DT: without load balancer or container check, 40 s of RUNNING before it counts toward "
                    "minimumHealthyPercent"),
    pytest.param(task("t1", targets=(), target_groups=0, started=NOW - 41), settings(load_balanced=False), True,
                 id="DT: without load balancer or container check, counts after 40 s RUNNING"),
    pytest.param(task("t1", targets=(), target_groups=0, started=NOW - 1, has_health_check=True, health="HEALTHY"),
                 settings(load_balanced=False), True,
                 id="DT: with a container check, counts as soon as HEALTHY"),
    pytest.param(task("t1", started=NOW - 1), settings(), True,
                 id="DT: with a load balancer, counts as soon as its target is healthy"),
]


@pytest.mark.parametrize("t, s, counts", MIN_HEALTHY_ROWS)
def test_what_counts_toward_minimum_healthy_percent(t, s, counts):
    assert S.counts_toward_minimum_healthy(t, s, NOW) is counts


def test_old_tasks_without_any_health_check_wait_40_seconds_before_being_replaced():
    """DT: a new task with neither a load balancer nor a container check must run 40 s before
    an old one is stopped for it (minimumHealthyPercent 100)."""
    bare = dict(targets=(), target_groups=0)
    young = snap([task("t1", OLD, **bare), task("t2", OLD, **bare), task("t3", started=NOW - 5, **bare),
                  task("t4", started=NOW - 5, **bare)], ROLLING, load_balanced=False)
    assert S.decide(young).stops == []
    old_enough = replace(young, now=NOW + 40)
    assert sorted(stopped_ids(S.decide(old_enough))) == ["t1", "t2"]


# ----------------------------------------------------------------------------- circuit breaker

@pytest.mark.parametrize("desired, threshold", [
    (1, 3), (2, 3), (6, 3), (7, 4), (10, 5), (11, 6), (399, 200), (400, 200), (1000, 200)])
def test_circuit_breaker_threshold_is_half_desired_clamped_3_to_200(desired, threshold):
    """CB: "the threshold is 0.5 x desired count, rounded up, with a minimum of 3 and a maximum of 200"."""
    assert S.circuit_breaker_threshold(desired) == threshold


def _breaker(failed: int, **kw) -> S.Snapshot:
    deps = (S.Deployment(NEW, "PRIMARY", "td:2", "IN_PROGRESS", failed),
            S.Deployment(OLD, "ACTIVE", "td:1", "COMPLETED"))
    return snap([task("t1", OLD), task("t2", OLD)], deps, **kw)


def test_circuit_breaker_trips_at_the_threshold_and_rolls_back():
    """CB: FAILED at the threshold; with rollback, a new deployment of the last COMPLETED task definition."""
    d = S.decide(_breaker(3))
    assert d.rollout[NEW][0] == "FAILED"
    assert d.rollout[NEW][1] == "ECS deployment circuit breaker: tasks failed to start."
    assert d.new_deployment == ("ecs-svc/rb", "td:1")
    assert f"(deployment {NEW}) deployment failed: tasks failed to start." in d.events
    assert f"(deployment {NEW}) rolling back to deployment {OLD}." in d.events
    # the rollback is a deployment of its own: it launches its tasks, the older ones then retire
    assert d.starts == ["ecs-svc/rb", "ecs-svc/rb"] and d.memory.fail_streak == 0


def test_circuit_breaker_below_the_threshold_keeps_the_rollout_going():
    d = S.decide(_breaker(2))
    assert NEW not in d.rollout and d.new_deployment is None and d.starts == [NEW, NEW]


def test_circuit_breaker_without_rollback_fails_and_stops_launching():
    """CB: rollback off: the deployment is FAILED, old tasks keep running, nothing new launches."""
    d = S.decide(_breaker(3, rollback=False))
    assert d.rollout[NEW][0] == "FAILED" and d.new_deployment is None
    assert d.starts == [] and d.stops == []


def test_circuit_breaker_off_keeps_retrying():
    d = S.decide(_breaker(50, circuit_breaker=False))
    assert d.rollout == {} and d.starts == [NEW, NEW]


def test_rollback_needs_a_completed_deployment_to_return_to():
    d = S.decide(_breaker(3, memory=S.Memory()))
    assert d.rollout[NEW][0] == "FAILED" and d.new_deployment is None


def test_a_failed_deployment_launches_nothing_more():
    deps = (S.Deployment(NEW, "PRIMARY", "td:2", "FAILED", 3),)
    assert S.decide(snap([], deps)).starts == []


# ----------------------------------------------------------------------------- completion and events

def test_completion_removes_older_deployments_and_reaches_steady_state():
    """DT: COMPLETED once desiredCount tasks of the primary are healthy and no old task runs."""
    done_old = task("t1", OLD, last_status="STOPPED", desired_status="STOPPED", stop_code=S.SCHEDULER_INITIATED)
    d = S.decide(snap([done_old, task("t2"), task("t3")], ROLLING))
    assert d.rollout[NEW] == ("COMPLETED", f"ECS deployment {NEW} completed.")
    assert d.remove == [OLD]
    assert d.memory.steady and d.memory.last_completed_task_definition == "td:2"
    assert d.memory.last_completed_deployment == NEW
    assert "has reached a steady state." in d.events


def test_not_complete_while_an_old_task_is_still_stopping():
    stopping = task("t1", OLD, desired_status="STOPPED", stop_code=S.SCHEDULER_INITIATED, last_status="DEACTIVATING")
    d = S.decide(snap([stopping, task("t2"), task("t3")], ROLLING))
    assert NEW not in d.rollout and d.remove == []


def test_steady_state_is_announced_once_and_lost_when_a_task_goes():
    steady = S.Memory(steady=True, last_completed_task_definition="td:2", last_completed_deployment=NEW)
    deps = (S.Deployment(NEW, "PRIMARY", "td:2", "COMPLETED"),)
    d = S.decide(snap([task("t1"), task("t2")], deps, memory=steady))
    assert "has reached a steady state." not in d.events and d.memory.steady
    d = S.decide(snap([task("t1")], deps, memory=steady))
    assert not d.memory.steady and d.starts == [NEW]


def test_stopping_registered_old_tasks_says_draining():
    """LB: tasks leaving a target group drain first (deregistration delay)."""
    d = S.decide(snap([task("t1", OLD), task("t2", OLD), task("t3"), task("t4")], ROLLING))
    assert sorted(stopped_ids(d)) == ["t1", "t2"]
    assert "has begun draining connections on 2 tasks." in d.events
    assert "has stopped 2 running tasks: (task t1) (task t2)." in d.events


def test_counts_per_deployment_include_tasks_being_launched():
    pending = task("t3", last_status="PENDING", started=None, ready=False)
    d = S.decide(snap([task("t1", OLD), task("t2", OLD), pending], ROLLING))
    assert d.counts[OLD] == (2, 0)
    assert d.counts[NEW] == (0, 2)          # one PENDING plus the one launched now


def test_launches_wait_for_the_backoff_after_failures():
    """TH: tasks that keep failing to start are launched less and less often."""
    memory = S.Memory(fail_streak=4, next_launch_at=NOW + 5)
    assert S.decide(snap(memory=memory)).starts == []
    assert S.decide(snap(memory=replace(memory, next_launch_at=NOW - 1))).starts == [NEW, NEW]


def test_a_task_that_turns_healthy_resets_the_failure_streak():
    memory = S.Memory(fail_streak=3, next_launch_at=NOW + 5)
    d = S.decide(snap([task("t1", ever_ready=False), task("t2")], memory=memory))
    assert d.ready == ["t1"] and d.memory.fail_streak == 0


def test_a_deleted_service_stops_all_its_tasks():
    d = S.decide_deleted(snap([task("t1"), task("t2")]))
    assert [(s.task_id, s.reason) for s in d.stops] == [("t1", "Service deleted"), ("t2", "Service deleted")]
