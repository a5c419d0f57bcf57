"""The rollout watcher's verdicts: what a stuck rollout reports, and that a wedged one is
called stuck after ``stall_window`` without progress rather than after the whole timeout."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ship.actions import Options, rollout
from ship.errors import ShipError

DEP, OLD = "ecs-svc/new", "ecs-svc/old"
TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/t/1"


def _task(tid, dep, port, status="RUNNING", health="UNKNOWN", desired="RUNNING", reason=None):
    return {"taskArn": f"arn:aws:ecs:us-east-1:1:task/c/{tid}", "startedBy": dep, "lastStatus": status,
            "desiredStatus": desired, "healthStatus": health, "stoppedReason": reason,
            "attachments": [{"details": [{"name": "privateIPv4Address", "value": "127.0.0.1"}]}],
            "containers": [{"name": "app", "healthStatus": health,
                            "networkBindings": [{"bindIP": "127.0.0.1", "hostPort": port}]}]}


class FakeSession:
    def __init__(self, tasks, stopped=(), targets=()):
        self.env = SimpleNamespace(name="local", emulator=False)
        by_arn = {t["taskArn"]: t for t in [*tasks, *stopped]}
        self.ecs = SimpleNamespace(
            list_tasks=lambda c, s, desired_status="RUNNING": [
                t["taskArn"] for t in (tasks if desired_status == "RUNNING" else stopped)],
            describe_tasks=lambda c, arns: [by_arn[a] for a in arns],
            describe_service=lambda c, s: SERVICE)
        self.elbv2 = SimpleNamespace(
            target_health=lambda tg: [{"Target": {"Id": "127.0.0.1", "Port": p},
                                       "TargetHealth": {"State": s}} for p, s in targets],
            describe_target_group=lambda tg: {"HealthCheckIntervalSeconds": 5, "HealthyThresholdCount": 2,
                                              "UnhealthyThresholdCount": 3})


SERVICE = {"serviceName": "web", "taskDefinition": "arn:td/web:2", "desiredCount": 2, "runningCount": 2,
           "pendingCount": 0, "healthCheckGracePeriodSeconds": 0,
           "loadBalancers": [{"targetGroupArn": TG, "containerName": "app"}],
           "deployments": [{"id": DEP, "status": "PRIMARY", "taskDefinition": "arn:td/web:2", "desiredCount": 2,
                            "runningCount": 2, "pendingCount": 0, "rolloutState": "IN_PROGRESS"},
                           {"id": OLD, "status": "ACTIVE", "taskDefinition": "arn:td/web:1", "desiredCount": 0,
                            "runningCount": 1, "pendingCount": 0, "rolloutState": "COMPLETED"}]}


def test_the_stuck_report_names_only_what_holds_the_rollout():
    session = FakeSession(
        [_task("aaaaaaaaaaaa1", DEP, 1001), _task("bbbbbbbbbbbb2", DEP, 1002), _task("cccccccccccc3", OLD, 1003)],
        targets=[(1001, "healthy"), (1002, "unhealthy"), (1003, "healthy")])
    svc = rollout.Service(SERVICE)
    report = rollout.stuck_report(session, rollout.Target("c", "web"), svc, DEP)
    assert "aaaaaaaaaaaa" not in report            # healthy: counted, not named
    assert "1/2 new tasks healthy" in report
    assert "task bbbbbbbbbbbb RUNNING, target unhealthy" in report
    assert "1 tasks of older deployments still running" in report


def test_the_stuck_report_says_why_tasks_stopped():
    session = FakeSession([], stopped=[_task("dddddddddddd4", DEP, 1004, "STOPPED", desired="STOPPED",
                                             reason="ResourceInitializationError: open log failed")])
    report = rollout.stuck_report(session, rollout.Target("c", "web"), rollout.Service(SERVICE), DEP)
    assert "0/2 new tasks healthy" in report and "2 new tasks not started yet" in report
    assert "1 new tasks stopped (ResourceInitializationError: open log failed)" in report


def test_a_rollout_without_progress_is_stuck_after_the_stall_window(monkeypatch):
    session = FakeSession([_task("aaaaaaaaaaaa1", DEP, 1001, "PENDING")], targets=[])
    clock = iter(range(0, 10_000, 30))
    monkeypatch.setattr(rollout.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(rollout.time, "sleep", lambda s: None)
    monkeypatch.setattr(rollout, "_progress", lambda *a: "new web:2: 0/2 running, 1 pending")
    with pytest.raises(ShipError) as err:
        rollout.watch(session, rollout.Target("c", "web"), DEP, "arn:td/web:2", Options(timeout=900), echo=lambda s: 0)
    message = str(err.value)
    assert "made no progress for" in message and "task aaaaaaaaaaaa PENDING" in message
    assert rollout.stall_window(session, rollout.Service(SERVICE)) == rollout.STALL_MIN


def test_on_aws_targets_are_matched_by_the_task_address():
    """awsvpc tasks on Fargate have no network bindings: a target is the task's own IP."""
    task = _task("eeeeeeeeeeee5", DEP, None)
    task["containers"][0]["networkBindings"] = []
    task["attachments"][0]["details"][0]["value"] = "10.0.1.7"
    targets = {("10.0.1.7", 5000): ("unhealthy", "Health checks failed"), ("10.0.1.8", 5000): ("healthy", "")}
    assert rollout._task_problem(task, targets) == "task eeeeeeeeeeee RUNNING, target unhealthy (Health checks failed)"


def test_a_failed_rollouts_reasons_leave_out_the_schedulers_own_stops():
    tg = "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/t/1)"
    session = FakeSession([], stopped=[
        _task("eeeeeeeeeeee5", DEP, 1005, "STOPPED", desired="STOPPED",
              reason="Scaling activity initiated by (deployment ecs-svc/new)"),
        _task("ffffffffffff6", DEP, 1006, "STOPPED", desired="STOPPED", reason=tg),
        _task("aaaaaaaaaaaa7", OLD, 1007, "STOPPED", desired="STOPPED", reason="Essential container in task exited")])
    assert rollout.stopped_reasons(session, rollout.Target("c", "web"), DEP) == (tg,)


@pytest.mark.parametrize("elapsed, poll, emulator, expected", [
    (0.0, 2.0, False, 2.0),      # AWS: the options' pace throughout
    (60.0, 2.0, False, 2.0),
    (0.0, 2.0, True, 0.2),       # the local cloud: the first seconds often
    (2.9, 2.0, True, 0.2),
    (3.0, 2.0, True, 0.5),       # then every half second at most
    (3.0, 0.1, True, 0.1),       # never slower than asked
    (60.0, 0.5, True, 0.5),
])
def test_a_rollout_is_checked_often_at_first_on_the_local_cloud(elapsed, poll, emulator, expected):
    assert rollout.poll_interval(elapsed, poll, emulator) == expected
