"""How process-mode tasks are held to their limits on this machine: the mode ``limits.choose``
picks from what ``cgroups.probe`` finds (``SHIP_LOCAL_LIMITS`` may ask for one), set up once
per serve process.

An ``Enforcer`` makes a ``TaskLimiter`` per task; the process runner calls it
around the task's life: ``preexec`` in the task's process before exec,
``started`` with its pid, ``oom_killed`` once it has exited, ``unthrottle``
before asking it to stop, ``release`` when it is gone.
"""

from __future__ import annotations

import atexit
import logging
import os
from typing import Protocol

from ship.localcloud.runtime import cgroups, limits as L, watchdog

log = logging.getLogger("ship.localcloud.runtime.limits")


class TaskLimiter(Protocol):
    def preexec(self) -> None: ...

    def started(self, pid: int) -> None: ...

    def oom_killed(self) -> bool: ...

    def unthrottle(self) -> None: ...

    def release(self) -> None: ...


class Enforcer(Protocol):
    mode: str
    description: str

    def setup(self) -> None: ...

    def task(self, task_id: str, limits: L.Limits) -> TaskLimiter: ...

    def close(self) -> None: ...


class Unlimited:
    """Nothing applied (SHIP_LOCAL_LIMITS=off, or a system without /proc)."""

    def preexec(self) -> None:
        pass

    def started(self, pid: int) -> None:
        pass

    def oom_killed(self) -> bool:
        return False

    def unthrottle(self) -> None:
        pass

    def release(self) -> None:
        pass


class NoLimits:
    mode = "off"

    def __init__(self, why: str):
        self.description = why

    def setup(self) -> None:
        pass

    def task(self, task_id: str, limits: L.Limits) -> Unlimited:
        return Unlimited()

    def close(self) -> None:
        pass


def build(choice: L.Choice, facts: L.Facts, strict: bool = False) -> Enforcer:
    """The enforcer of ``choice``, set up; a cgroup mode that fails to set up falls back to rlimits
    (LimitsError instead when it was asked for by name: ``strict``)."""
    if choice.mode in ("cgroup2", "cgroup1"):
        group: cgroups.CgroupV1 | cgroups.CgroupV2
        group = cgroups.CgroupV2(facts, choice.why) if choice.mode == "cgroup2" else cgroups.CgroupV1(facts, choice.why)
        try:
            group.setup()
            return group
        except OSError as exc:
            why = f"setting up {choice.mode} failed ({exc.strerror or exc}: {getattr(exc, 'filename', '')})"
            if strict:
                raise L.LimitsError(f"{L.ENV_VAR}={choice.mode} cannot apply here: {why}") from None
            log.warning("task limits: %s; using rlimits", why)
            return watchdog.RlimitEnforcer(f"rlimits and a watchdog; not {choice.mode}: {why}")
    if choice.mode == "rlimit":
        return watchdog.RlimitEnforcer(choice.why)
    return NoLimits(choice.why)


def for_machine(requested: str | None = None) -> Enforcer:
    """This machine's enforcer (LimitsError when ``SHIP_LOCAL_LIMITS`` asks for one it cannot have)."""
    if requested is None:
        requested = os.environ.get(L.ENV_VAR, "auto")
    facts = cgroups.probe()
    choice = L.choose(facts, requested)
    enforcer = build(choice, facts, strict=requested.strip().lower() == choice.mode)
    atexit.register(enforcer.close)
    log.info("task limits (process runtime): %s: %s", enforcer.mode, enforcer.description)
    return enforcer
