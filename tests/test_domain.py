from ship.domain import STEADY_TAG, Service, TaskDefinition

TD = {
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/hello-local:3",
    "family": "hello-local", "revision": 3, "networkMode": "awsvpc", "cpu": "256", "memory": "512",
    "requiresCompatibilities": ["FARGATE"], "executionRoleArn": "arn:aws:iam::1:role/exec",
    "containerDefinitions": [
        {"name": "hello", "image": "1.dkr.ecr.us-east-1.amazonaws.com/hello@sha256:" + "a" * 64, "memory": 512,
         "essential": True, "environment": [{"name": "A", "value": "1"}]},
        {"name": "sidecar", "image": "busybox", "essential": False},
    ],
    "status": "ACTIVE", "registeredAt": "2026-01-01", "compatibilities": ["EC2", "FARGATE"],
}


def test_copy_changes_only_the_image():
    td = TaskDefinition(TD, (("team", "web"), (STEADY_TAG, "x")))
    kwargs = td.register_kwargs("new-image", "hello")
    assert kwargs["containerDefinitions"][0] == dict(TD["containerDefinitions"][0], image="new-image")
    assert kwargs["containerDefinitions"][1] == TD["containerDefinitions"][1]
    assert kwargs["cpu"] == "256" and kwargs["executionRoleArn"].endswith("exec")
    # Read-only fields are not sent back, and the steady mark does not carry over.
    assert "revision" not in kwargs and "status" not in kwargs and "compatibilities" not in kwargs
    assert kwargs["tags"] == [{"key": "team", "value": "web"}]
    assert td.steady_at == "x"


def test_single_essential_container_is_found_without_a_name():
    assert TaskDefinition(TD).container()["name"] == "hello"


def test_service_steadiness_needs_one_completed_deployment():
    base = {"serviceName": "s", "taskDefinition": "td:2", "desiredCount": 2, "runningCount": 2, "pendingCount": 0}
    done = Service(dict(base, deployments=[{"id": "d2", "status": "PRIMARY", "rolloutState": "COMPLETED"}]))
    assert done.is_steady_on("d2")
    two = Service(dict(base, deployments=[{"id": "d2", "status": "PRIMARY", "rolloutState": "COMPLETED"},
                                          {"id": "d1", "status": "ACTIVE", "rolloutState": "COMPLETED"}]))
    assert not two.is_steady_on("d2")
    failed = Service(dict(base, deployments=[{"id": "d2", "status": "PRIMARY", "rolloutState": "FAILED"}]))
    assert not failed.is_steady_on("d2") and failed.primary.failed
