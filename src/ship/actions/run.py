"""Run a one-off command with the environment's task definition, the way
``copilot task run`` and ``ecs run`` do: RunTask of the service's current
revision with the command as a container override, the service's network
configuration, the task's log stream printed as it comes, and the task's exit
code as the result. The same calls on the local cloud and on AWS.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass

from ship.aws import Session
from ship.config import Environment
from ship.errors import ShipError
from ship.queries import current_service, target_of, task_definition

STARTED_BY = "ship-run"
POLL = 1.0
LOG_GRACE = 5.0            # seconds to keep reading a stopped task's stream for late lines


def command_line(remainder: str, argv: list[str] | None = None) -> list[str]:
    """The command after ``--``: from the real argv (keeps the caller's quoting), else from
    Invoke's remainder string."""
    argv = sys.argv if argv is None else argv
    if "--" in argv:
        return list(argv[argv.index("--") + 1:])
    return shlex.split(remainder or "")


@dataclass
class OneOff:
    cluster: str
    task_arn: str
    container: str
    log_group: str | None
    log_stream: str | None
    revision: str = ""

    @property
    def id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]


def start(session: Session, env: Environment, command: list[str]) -> OneOff:
    """RunTask of the service's current revision with ``command``; nothing is started on bad input."""
    if not command:
        raise ShipError("say what to run after --, e.g. `inv run --env=local -- python -m flask routes`")
    target = target_of(env)
    svc = current_service(session, target)
    td = task_definition(session, svc.task_definition)
    container = td.container(svc.container_name)
    kwargs = {"taskDefinition": td.arn, "count": 1, "startedBy": STARTED_BY, "group": f"{STARTED_BY}:{svc.name}",
              "overrides": {"containerOverrides": [{"name": container["name"], "command": command}]}}
    launch = svc.raw.get("launchType")
    if launch:
        kwargs["launchType"] = launch
    elif svc.raw.get("capacityProviderStrategy"):
        kwargs["capacityProviderStrategy"] = svc.raw["capacityProviderStrategy"]
    if svc.raw.get("networkConfiguration"):
        kwargs["networkConfiguration"] = svc.raw["networkConfiguration"]
    resp = session.ecs.run_task(target.cluster, **kwargs)
    if not resp.get("tasks"):
        reasons = "; ".join(f"{f.get('arn', '')} {f.get('reason', '')}".strip() for f in resp.get("failures", []))
        raise ShipError(f"run {' '.join(command)} on {td.label}: ECS started no task ({reasons or 'no reason given'})")
    arn = resp["tasks"][0]["taskArn"]
    options = (container.get("logConfiguration") or {}).get("options") or {}
    group, prefix = options.get("awslogs-group"), options.get("awslogs-stream-prefix")
    stream = f"{prefix}/{container['name']}/{arn.rsplit('/', 1)[-1]}" if group and prefix else None
    return OneOff(target.cluster, arn, container["name"], group, stream, td.label)


class _LogReader:
    def __init__(self, session: Session, task: OneOff, echo):
        self.session, self.task, self.echo, self.token = session, task, echo, None

    def read(self) -> int:
        """Print the lines that arrived since the last read; how many."""
        if not self.task.log_stream or not self.task.log_group:
            return 0
        count = 0
        while True:
            resp = self.session.logs.stream_events(self.task.log_group, self.task.log_stream, self.token)
            events = resp.get("events", [])
            for ev in events:
                self.echo(ev["message"].rstrip("\n"))
            count += len(events)
            token = resp.get("nextForwardToken")
            if not events or not token or token == self.token:
                self.token = token or self.token
                return count
            self.token = token


def _describe(session: Session, task: OneOff) -> dict:
    found = session.ecs.describe_tasks(task.cluster, [task.task_arn])
    if not found:
        raise ShipError(f"task {task.id} is gone from cluster {task.cluster}")
    return found[0]


def wait(session: Session, task: OneOff, echo=print, timeout: float = 3600.0, poll: float = POLL) -> dict:
    """Print the task's log lines until it has STOPPED (and its last lines are in); the task."""
    reader = _LogReader(session, task, echo)
    deadline = time.monotonic() + timeout
    status = ""
    while True:
        described = _describe(session, task)
        reader.read()
        if described.get("lastStatus") != status:
            status = described.get("lastStatus", "")
            echo(f"[task {task.id[:12]} {status}]")
        if status == "STOPPED":
            break
        if time.monotonic() > deadline:
            session.ecs.stop_task(task.cluster, task.task_arn, f"{STARTED_BY}: no result after {timeout:.0f}s")
            raise ShipError(f"task {task.id} did not finish within {timeout:.0f}s; it was stopped "
                            f"(see `inv logs`)")
        time.sleep(poll)
    quiet_until = time.monotonic() + LOG_GRACE
    while time.monotonic() < quiet_until:      # awslogs may deliver the last lines a little later
        if reader.read():
            quiet_until = time.monotonic() + LOG_GRACE
        elif reader.token is not None:
            break
        time.sleep(poll)
    return described


def exit_code(task: dict, container: str) -> int:
    """The container's exit code; a one-line ShipError when the task never ran it to an end."""
    tid = task["taskArn"].rsplit("/", 1)[-1]
    for c in task.get("containers", []):
        if c.get("name") == container and c.get("exitCode") is not None:
            return int(c["exitCode"])
    reason = task.get("stoppedReason") or "no reason given"
    raise ShipError(f"task {tid} stopped without an exit code ({task.get('stopCode', 'unknown')}): {reason}")


def exit_line(task: dict, container: str, code: int) -> str:
    """The last line ``inv run`` prints: the exit code, and the container's ``reason`` when ECS
    gives one (an OOM kill: "OutOfMemoryError: Container killed due to memory usage")."""
    tid = task["taskArn"].rsplit("/", 1)[-1]
    reason = next((c.get("reason") for c in task.get("containers", []) if c.get("name") == container), None)
    return f"task {tid} exited with {code}" + (f" ({reason})" if reason else "")


def run(env: Environment, command: list[str], echo=print, session: Session | None = None,
        timeout: float = 3600.0) -> int:
    """Run ``command`` as a one-off task; returns its exit code."""
    session = session or Session(env)
    task = start(session, env, command)
    echo(f"running `{shlex.join(command)}` as task {task.id} ({task.revision})")
    try:
        described = wait(session, task, echo, timeout)
    except KeyboardInterrupt:
        session.ecs.stop_task(task.cluster, task.task_arn, f"{STARTED_BY}: interrupted")
        echo(f"interrupted: task {task.id} is being stopped")
        raise
    code = exit_code(described, task.container)
    echo(exit_line(described, task.container, code))
    return code
