"""The line a failed rollout ends with points to where the reason is: the tasks' logs."""

import pytest

from ship.actions.rollout import rollout_failed

TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/hello-local:{}"


@pytest.mark.parametrize("now_on, expected", [
    (TD.format(7), "rollout of hello-local:8 failed: ECS deployment circuit breaker: tasks failed to start.; "
                   "rolled back, hello-local:7 keeps serving; see why in the tasks' output: `inv logs --env=local`"),
    (None, "rollout of hello-local:8 failed: ECS deployment circuit breaker: tasks failed to start.; see why in "
           "the tasks' output: `inv logs --env=local`"),
])
def test_circuit_breaker_message_points_to_logs(now_on, expected):
    assert rollout_failed("local", TD.format(8), "ECS deployment circuit breaker: tasks failed to start.",
                          now_on) == expected


def test_the_stopped_tasks_reasons_are_in_the_line():
    """A task that failed before its process started has no log lines: the line carries its reason."""
    line = rollout_failed("local", TD.format(8), "ECS deployment circuit breaker: tasks failed to start.", None,
                          ("ResourceInitializationError: open log failed: OSError: [Errno 30] Read-only file system",))
    assert line == ("rollout of hello-local:8 failed: ECS deployment circuit breaker: tasks failed to start.; "
                    "its tasks stopped: ResourceInitializationError: open log failed: OSError: [Errno 30] "
                    "Read-only file system; see why in the tasks' output: `inv logs --env=local`")
