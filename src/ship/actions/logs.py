"""Read the service's logs from CloudWatch Logs through the API."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from ship.aws import Session
from ship.config import Environment
from ship.errors import ShipError
from ship.queries import current_service, target_of, task_definition

_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(since: str) -> int:
    """'10m' -> epoch milliseconds ten minutes ago."""
    match = _SINCE.match(since.strip())
    if not match:
        raise ShipError(f"--since={since!r} is not a duration: use e.g. 30s, 10m, 2h or 1d")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    return int((time.time() - seconds) * 1000)


def log_group(env: Environment, session: Session) -> tuple[str, str]:
    svc = current_service(session, target_of(env))
    td = task_definition(session, svc.task_definition)
    options = td.container(svc.container_name).get("logConfiguration", {}).get("options", {})
    group = options.get("awslogs-group")
    if not group:
        raise ShipError(f"{td.label} does not send its logs to CloudWatch (no awslogs-group)")
    return group, options.get("awslogs-stream-prefix", "")


def tail(env: Environment, since: str = "10m", follow: bool = False, echo=print, poll: float = 2.0,
         session: Session | None = None, max_polls: int | None = None, pattern: str = "") -> int:
    """Print the service's log events (those matching ``pattern``, a CloudWatch Logs filter pattern)."""
    start = parse_since(since)      # bad input is said before anything is asked of AWS
    session = session or Session(env)
    group, prefix = log_group(env, session)
    seen: set[str] = set()
    printed = polls = 0
    while True:
        token = None
        newest = start
        while True:
            resp = session.logs.filter_events(group, start_ms=start, token=token, pattern=pattern or None)
            for ev in resp.get("events", []):
                if ev["eventId"] in seen:
                    continue
                seen.add(ev["eventId"])
                stamp = datetime.fromtimestamp(ev["timestamp"] / 1000, timezone.utc).strftime("%H:%M:%S")
                task = ev.get("logStreamName", "").rsplit("/", 1)[-1][:8]
                echo(f"{stamp} {task} {ev['message'].rstrip()}")
                printed += 1
                newest = max(newest, ev["timestamp"])
            token = resp.get("nextToken")
            if not token:
                break
        polls += 1
        if not follow or (max_polls is not None and polls >= max_polls):
            return printed
        start = newest
        time.sleep(poll)
