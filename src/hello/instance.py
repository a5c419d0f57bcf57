"""Which replica is answering: the ECS task id when the task metadata
endpoint answers, else hostname and pid."""

from __future__ import annotations

import json
import os
import socket
import urllib.request


def task_id_from_metadata(uri: str, timeout: float) -> str | None:
    """The task id from ``${ECS_CONTAINER_METADATA_URI_V4}/task``, or None."""
    if not uri:
        return None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/task", timeout=timeout) as resp:
            arn = json.load(resp).get("TaskARN", "")
    except (OSError, ValueError):
        return None
    # arn:aws:ecs:region:account:task/cluster/<task id>
    task_id = arn.rsplit("/", 1)[-1]
    return task_id or None


def describe_instance(metadata_uri: str, timeout: float) -> str:
    task_id = task_id_from_metadata(metadata_uri, timeout)
    if task_id:
        return task_id
    return f"{socket.gethostname()}:{os.getpid()}"
