"""Container health checks as ECS runs them: the task definition's ``healthCheck``
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_HealthCheck.html).

Pure: ``HealthCheck`` reads the settings, ``HealthState`` turns check results into
a container's ``healthStatus``, ``task_health`` folds containers into the task's.
The checks themselves run inside the task through ``Runner.exec``.

* command ``["CMD-SHELL", "cmd"]`` runs ``/bin/sh -c cmd``, ``["CMD", exe, args...]``
  runs ``exe`` directly, ``["NONE"]`` disables the check;
* interval 5-300 s (default 30), timeout 2-60 s (default 5), retries 1-10
  (default 3), startPeriod 0-300 s (default 0);
* UNKNOWN until the first result; a pass makes the container HEALTHY; ``retries``
  failures in a row make it UNHEALTHY; failures within ``startPeriod`` do not
  count, but a pass within it does.
"""

from __future__ import annotations

from dataclasses import dataclass

HEALTHY, UNHEALTHY, UNKNOWN = "HEALTHY", "UNHEALTHY", "UNKNOWN"


def _clamp(value, low: float, high: float, default: float) -> float:
    try:
        return min(high, max(low, float(value)))
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class HealthCheck:
    argv: tuple[str, ...]
    interval: float = 30.0
    timeout: float = 5.0
    retries: int = 3
    start_period: float = 0.0

    @classmethod
    def from_container(cls, container: dict) -> "HealthCheck | None":
        hc = container.get("healthCheck") or {}
        command = [str(c) for c in hc.get("command") or []]
        if not command or command[0] == "NONE":
            return None
        argv: tuple[str, ...]
        if command[0] == "CMD-SHELL":
            argv = ("/bin/sh", "-c", " ".join(command[1:]))
        elif command[0] == "CMD":
            argv = tuple(command[1:])
        else:                       # Docker takes a bare command as CMD-SHELL
            argv = ("/bin/sh", "-c", " ".join(command))
        if not argv:
            return None
        return cls(argv, interval=_clamp(hc.get("interval", 30), 5, 300, 30.0),
                   timeout=_clamp(hc.get("timeout", 5), 2, 60, 5.0),
                   retries=int(_clamp(hc.get("retries", 3), 1, 10, 3)),
                   start_period=_clamp(hc.get("startPeriod", 0), 0, 300, 0.0))


@dataclass
class HealthState:
    check: HealthCheck
    started: float               # when the container started (any clock, same as ``now``)
    status: str = UNKNOWN
    failures: int = 0
    next_at: float = 0.0

    def __post_init__(self):
        self.next_at = self.started + self.check.interval

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def record(self, passed: bool, now: float) -> bool:
        """Fold one check result in; True when the status changed."""
        before = self.status
        self.next_at = now + self.check.interval
        if passed:
            self.failures = 0
            self.status = HEALTHY
        elif now - self.started >= self.check.start_period or self.status == HEALTHY:
            self.failures += 1
            if self.failures >= self.check.retries:
                self.status = UNHEALTHY
        return self.status != before


def task_health(containers: list[tuple[bool, str | None]]) -> str:
    """The task's healthStatus from (essential, container health or None without a check).

    HEALTHY when every essential container with a check passes, UNHEALTHY when one
    fails, else UNKNOWN (non-essential containers never count)."""
    checked = [status for essential, status in containers if essential and status is not None]
    if not checked:
        return UNKNOWN
    if UNHEALTHY in checked:
        return UNHEALTHY
    return HEALTHY if all(s == HEALTHY for s in checked) else UNKNOWN
