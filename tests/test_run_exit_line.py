"""`inv run`'s last line: the exit code, and ECS's container reason when there is one
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-error-codes.html)."""

import pytest

from ship.actions.run import exit_line

ARN = "arn:aws:ecs:us-east-1:123456789012:task/hello-local/0123abcd"
OOM = "OutOfMemoryError: Container killed due to memory usage"


@pytest.mark.parametrize("containers, code, expected", [
    ([{"name": "app", "exitCode": 0}], 0, "task 0123abcd exited with 0"),
    ([{"name": "app", "exitCode": 137, "reason": OOM}], 137, f"task 0123abcd exited with 137 ({OOM})"),
    ([{"name": "app", "exitCode": 3, "reason": None}], 3, "task 0123abcd exited with 3"),
    ([{"name": "sidecar", "reason": OOM}, {"name": "app", "exitCode": 1}], 1, "task 0123abcd exited with 1"),
    ([], 2, "task 0123abcd exited with 2"),
])
def test_exit_line_names_the_container_s_reason(containers, code, expected):
    assert exit_line({"taskArn": ARN, "containers": containers}, "app", code) == expected
