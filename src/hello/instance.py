"""Which replica is answering: the ECS task id when the task metadata
endpoint answers, else hostname and pid."""

from __future__ import annotations

import json
import os
import socket
import urllib.request

ATTEMPTS = 3


def task_id_from_metadata(uri: str, timeout: float, attempts: int = ATTEMPTS) -> str | None:
    """The task id from ``${ECS_CONTAINER_METADATA_URI_V4}/task``, or None.

    An endpoint that does not answer within ``timeout`` is asked again, waiting twice as long
    each time (``attempts`` in all): a busy machine can be slow to answer while a task starts.
    A refused connection or an error answer is final."""
    if not uri:
        return None
    wait = timeout
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/task", timeout=wait) as resp:
                arn = json.load(resp).get("TaskARN", "")
            break
        except (OSError, ValueError) as exc:
            timed_out = isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError)
            if not timed_out or attempt == attempts - 1:
                return None
            wait *= 2
    # arn:aws:ecs:region:account:task/cluster/<task id>
    task_id = arn.rsplit("/", 1)[-1]
    return task_id or None


def describe_instance(metadata_uri: str, timeout: float) -> str:
    task_id = task_id_from_metadata(metadata_uri, timeout)
    if task_id:
        return task_id
    return f"{socket.gethostname()}:{os.getpid()}"
