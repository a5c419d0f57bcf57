"""The task metadata endpoint v4 payload
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-metadata-endpoint-v4-fargate.html):
``${ECS_CONTAINER_METADATA_URI_V4}`` is the container, ``.../task`` the task."""

from __future__ import annotations

from ship.localcloud.emulator.ecs import LocalTask


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def payload(task: LocalTask, container: dict, port: int, pid: int | None, health: str | None) -> dict:
    """{"task": ..., "container": ...} for a task the data plane runs."""
    family, _, revision = task.task_definition_arn.rsplit("/", 1)[-1].rpartition(":")
    entry = task.containers[0] if task.containers else {}
    c = {
        "DockerId": f"{task.id}-{pid or 0}",
        "Name": container.get("name"),
        "Image": container.get("image"),
        "ImageID": entry.get("imageDigest"),
        "Labels": {"com.amazonaws.ecs.cluster": task.cluster_arn, "com.amazonaws.ecs.task-arn": task.task_arn,
                   "com.amazonaws.ecs.task-definition-family": family,
                   "com.amazonaws.ecs.task-definition-version": revision,
                   "com.amazonaws.ecs.container-name": container.get("name")},
        "DesiredStatus": task.desired_status,
        "KnownStatus": task.last_status,
        "Type": "NORMAL",
        "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["127.0.0.1"]}],
        "Ports": [{"ContainerPort": port, "HostPort": port, "Protocol": "tcp", "HostIp": "127.0.0.1"}],
    }
    if health is not None:
        c["Health"] = {"status": health}
    if entry.get("exitCode") is not None:
        c["ExitCode"] = entry["exitCode"]
    t = {
        "Cluster": task.cluster_arn,
        "TaskARN": task.task_arn,
        "Family": family,
        "Revision": revision,
        "DesiredStatus": task.desired_status,
        "KnownStatus": task.last_status,
        "LaunchType": task.launch_type,
        "AvailabilityZone": task.availability_zone,
        "PullStartedAt": _iso(task.pull_started_at),
        "PullStoppedAt": _iso(task.pull_stopped_at),
        "Containers": [c],
    }
    if task.group.startswith("service:"):
        t["ServiceName"] = task.group.split(":", 1)[1]
    return {"task": t, "container": c}
