"""The awslogs log driver: a task's output to its CloudWatch Logs stream
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using_awslogs.html).

Lines are buffered (bounded: the oldest are dropped past ``MAX_PENDING``, and
the drop is said in the stream), mirrored to ``<state>/tasks/<id>.log``, and
delivered to the emulator's Logs backend when the data plane flushes.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ship.localcloud import emulator
from ship.localcloud.emulator import logs

log = logging.getLogger("ship.localcloud.fargate.awslogs")

MAX_PENDING = 10_000
MAX_EVENT_BYTES = 256 * 1024 - 26     # CloudWatch Logs: 256 KiB per event including 26 bytes overhead


@dataclass(frozen=True)
class AwsLogs:
    group: str
    stream: str
    region: str
    create_group: bool = False

    @classmethod
    def from_container(cls, container: dict, task_id: str, default_region: str) -> "AwsLogs | None":
        conf = container.get("logConfiguration") or {}
        opts = conf.get("options") or {}
        if conf.get("logDriver") != "awslogs" or not opts.get("awslogs-group"):
            return None
        prefix = opts.get("awslogs-stream-prefix")
        stream = f"{prefix}/{container.get('name')}/{task_id}" if prefix else task_id
        return cls(opts["awslogs-group"], stream, opts.get("awslogs-region") or default_region,
                   str(opts.get("awslogs-create-group", "false")).lower() == "true")


class LogSink:
    """One task's output: bounded buffer, local file, delivery to CloudWatch Logs."""

    def __init__(self, target: AwsLogs | None, account: str, path: Path):
        self.target, self.account, self.path = target, account, path
        self._pending: collections.deque = collections.deque()
        self._dropped = 0
        self._mu = threading.Lock()
        self._flush_mu = threading.Lock()      # one delivery at a time keeps the stream in order
        self._file: TextIO | None = None

    @property
    def group_name(self) -> str | None:
        return self.target.group if self.target is not None else None

    def open(self) -> None:
        self._file = open(self.path, "a", buffering=1, encoding="utf-8")

    def group_ready(self) -> bool:
        """Whether delivery can work: the group exists, or the driver may create it."""
        if self.target is None or self.target.create_group:
            return True
        with emulator.LOCK:
            return logs.log_group_exists(self.target.region, self.account, self.target.group)

    def write(self, line: str) -> None:
        line = line.encode("utf-8")[:MAX_EVENT_BYTES].decode("utf-8", "ignore")
        with self._mu:
            if len(self._pending) >= MAX_PENDING:
                self._pending.popleft()
                self._dropped += 1
            self._pending.append({"timestamp": int(time.time() * 1000), "message": line})
            f = self._file
        if f is not None:
            try:
                f.write(line + "\n")
            except (ValueError, OSError):
                pass

    def flush(self) -> None:
        """Deliver what is pending to the task's stream."""
        with self._flush_mu:
            self._deliver()

    def _deliver(self) -> None:
        with self._mu:
            events, self._pending = list(self._pending), collections.deque()
            dropped, self._dropped = self._dropped, 0
        if dropped:
            events.insert(0, {"timestamp": events[0]["timestamp"] if events else int(time.time() * 1000),
                              "message": f"[ship-localcloud] {dropped} log lines dropped (buffer full)"})
        if not events or self.target is None:
            return
        t = self.target
        with emulator.LOCK:
            delivered = logs.put_log_events(t.region, self.account, t.group, t.stream, events,
                                            create_group=t.create_group)
        if not delivered:
            log.warning("log group %s is gone: %d lines of %s dropped", t.group, len(events), t.stream)

    @property
    def has_pending(self) -> bool:
        return bool(self._pending) or bool(self._dropped)

    def close(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass
