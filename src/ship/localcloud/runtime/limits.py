"""A task's cpu and memory limits, as decisions: no I/O here.

What Fargate applies, from the task definition
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task_definition_parameters.html):

* task ``cpu``: "the hard limit of CPU units to present for the task" (1024 units
  = 1 vCPU; "1 vCPU" strings are units too): a cap, enforced as a CFS quota;
* task ``memory``: "the hard limit of memory (in MiB) to present to the task"
  ("1 GB" strings are 1024 MiB);
* container ``memory``: "the amount (in MiB) of memory to present to the
  container. If your container attempts to exceed the memory specified here,
  the container is killed": a hard limit too, so the container's is the smaller
  of the two;
* container ``memoryReservation``: the soft limit;
* container ``cpu``: "the number of cpu units reserved for the container",
  which Linux turns into relative CPU shares (2..262144): a weight, not a cap.
  On Fargate a task's containers share only among themselves; where it is set
  it is passed on as a weight (``--cpu-shares``), where it is not the engine's
  default weight stays (the ECS agent's "null means 2 shares" is an EC2 rule
  about competing with other tasks on the instance);
* Fargate has no swap: a task that exceeds its memory is OOM-killed, never
  swapped (``--memory-swap`` equal to ``--memory``; ``memory.swap.max`` 0).

An OOM-killed essential container is reported as ECS does: exit code 137, the
container's ``reason`` ``OOM_REASON``, the task's ``stopCode``
``EssentialContainerExited``
(https://repost.aws/knowledge-center/ecs-resolve-outofmemory-errors).

Which way a process-mode task is held to its limits (``choose``), best first:
cgroup v2 (a delegated group), cgroup v1 (writable memory and cpu hierarchies),
rlimits with a watchdog (no cgroups), or none at all.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
OOM_EXIT_CODE = 137                 # 128 + SIGKILL, what ECS reports for an OOM-killed container

CPU_UNITS_PER_VCPU = 1024
CFS_PERIOD_US = 100_000             # the kernel's and Docker's default period
MIN_CFS_QUOTA_US = 1_000            # the kernel refuses less
MIN_SHARES, MAX_SHARES = 2, 262_144
MIB = 1024 * 1024

MODES = ("auto", "cgroup2", "cgroup1", "rlimit", "off")
ENV_VAR = "SHIP_LOCAL_LIMITS"


class LimitsError(Exception):
    """SHIP_LOCAL_LIMITS asks for something this machine cannot do; str() is one line for people."""


# ---------------------------------------------------------------------------- the task's limits

def parse_cpu_units(value) -> int | None:
    """Task-level cpu as units: "256", 256, "1 vCPU", ".25 vcpu"; None when unset or unreadable."""
    if value is None:
        return None
    text = str(value).strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(vcpus?)?", text)
    if not m or not text:
        return None
    number = float(m.group(1))
    units = number * CPU_UNITS_PER_VCPU if m.group(2) else number
    return int(round(units)) if units > 0 else None


def parse_memory_mib(value) -> int | None:
    """Task-level memory in MiB: "512", 512, "1GB", "1 gb"; None when unset or unreadable."""
    if value is None:
        return None
    text = str(value).strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(gb|mib|mb)?", text)
    if not m or not text:
        return None
    number = float(m.group(1))
    mib = number * 1024 if m.group(2) == "gb" else number
    return int(round(mib)) if mib > 0 else None


def _positive_int(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


@dataclass(frozen=True)
class Limits:
    cpus: float | None = None            # vCPUs the task may use: a hard cap (task cpu / 1024)
    cpu_shares: int | None = None        # the container's cpu units as a weight (2..262144)
    memory_mib: int | None = None        # hard limit: the smaller of task and container memory
    reservation_mib: int | None = None   # soft limit: the container's memoryReservation

    @property
    def memory_bytes(self) -> int | None:
        return self.memory_mib * MIB if self.memory_mib else None

    @property
    def empty(self) -> bool:
        return not (self.cpus or self.cpu_shares or self.memory_mib or self.reservation_mib)

    def describe(self) -> str:
        parts = []
        if self.cpus:
            parts.append(f"{self.cpus:g} vCPU")
        if self.memory_mib:
            parts.append(f"{self.memory_mib} MiB")
        if self.reservation_mib:
            parts.append(f"{self.reservation_mib} MiB reserved")
        if self.cpu_shares:
            parts.append(f"{self.cpu_shares} cpu shares")
        return ", ".join(parts) or "no limits"


def task_limits(task_cpu, task_memory, container: dict) -> Limits:
    """The limits of a task's (one, essential) container: task level and container level combined."""
    units = parse_cpu_units(task_cpu)
    shares = _positive_int(container.get("cpu"))
    hard = [m for m in (parse_memory_mib(task_memory), _positive_int(container.get("memory"))) if m]
    memory = min(hard) if hard else None
    reservation = _positive_int(container.get("memoryReservation"))
    if reservation and memory and reservation >= memory:
        reservation = None                   # a soft limit at or above the hard one changes nothing
    return Limits(
        cpus=units / CPU_UNITS_PER_VCPU if units else None,
        cpu_shares=min(MAX_SHARES, max(MIN_SHARES, shares)) if shares else None,
        memory_mib=memory,
        reservation_mib=reservation,
    )


# ---------------------------------------------------------------------------- how each mode says it

def engine_flags(limits: Limits, host_cpus: int) -> list[str]:
    """``docker run`` / ``podman run`` flags (the same for both). ``--cpus`` is capped at the
    machine's CPUs: Docker refuses more than the host has."""
    flags: list[str] = []
    if limits.cpus:
        flags.append(f"--cpus={min(limits.cpus, float(max(1, host_cpus))):g}")
    if limits.cpu_shares:
        flags.append(f"--cpu-shares={limits.cpu_shares}")
    if limits.memory_mib:
        flags += [f"--memory={limits.memory_mib}m", f"--memory-swap={limits.memory_mib}m"]
    if limits.reservation_mib:
        flags.append(f"--memory-reservation={limits.reservation_mib}m")
    return flags


def cfs_quota_us(cpus: float) -> int:
    return max(MIN_CFS_QUOTA_US, int(round(cpus * CFS_PERIOD_US)))


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares to cgroup v2 cpu.weight (runc's conversion)."""
    shares = min(MAX_SHARES, max(MIN_SHARES, shares))
    return 1 + ((shares - 2) * 9999) // 262142


@dataclass(frozen=True)
class Setting:
    controller: str      # "memory" | "cpu" (the v1 hierarchy; one directory in v2)
    file: str
    value: str
    required: bool = True


def cgroup_v1_settings(limits: Limits) -> list[Setting]:
    out: list[Setting] = []
    if limits.memory_bytes:
        value = str(limits.memory_bytes)
        out += [Setting("memory", "memory.limit_in_bytes", value),
                # memory+swap at the same value: no swap (absent without swap accounting)
                Setting("memory", "memory.memsw.limit_in_bytes", value, required=False),
                Setting("memory", "memory.swappiness", "0", required=False)]
    if limits.reservation_mib:
        out.append(Setting("memory", "memory.soft_limit_in_bytes", str(limits.reservation_mib * MIB)))
    if limits.cpus:
        out += [Setting("cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US)),
                Setting("cpu", "cpu.cfs_quota_us", str(cfs_quota_us(limits.cpus)))]
    if limits.cpu_shares:
        out.append(Setting("cpu", "cpu.shares", str(limits.cpu_shares)))
    return out


def cgroup_v2_settings(limits: Limits) -> list[Setting]:
    out: list[Setting] = []
    if limits.memory_bytes:
        out += [Setting("memory", "memory.max", str(limits.memory_bytes)),
                Setting("memory", "memory.swap.max", "0", required=False)]
    if limits.reservation_mib:
        out.append(Setting("memory", "memory.low", str(limits.reservation_mib * MIB)))
    if limits.cpus:
        out.append(Setting("cpu", "cpu.max", f"{cfs_quota_us(limits.cpus)} {CFS_PERIOD_US}"))
    if limits.cpu_shares:
        out.append(Setting("cpu", "cpu.weight", str(shares_to_weight(limits.cpu_shares))))
    return out


def oom_kills(text: str) -> int:
    """The ``oom_kill`` count of a v1 ``memory.oom_control`` or a v2 ``memory.events``."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def nice_for_shares(shares: int | None) -> int:
    """A nice value whose CFS weight is about ``shares``/1024 of a default process (each nice
    step is about x1.25), for where there is no cgroup: only ever lower priority (0..19)."""
    if not shares or shares >= 1024:
        return 0
    return min(19, max(0, int(round(math.log(1024 / shares) / math.log(1.25)))))


def data_rlimit(limits: Limits) -> int | None:
    """RLIMIT_DATA for each process of a task without cgroups: twice its memory, a backstop
    for what the watchdog cannot see between two samples (the watchdog kills at 1x)."""
    return 2 * limits.memory_bytes if limits.memory_bytes else None


# ---------------------------------------------------------------------------- CPU without cgroups

@dataclass
class Bucket:
    """A CFS-like quota without cgroups: ``rate`` CPU-seconds per second, at most ``burst``
    saved up. ``step`` returns how long to pause the task to pay for what it used."""

    rate: float
    burst: float
    max_pause: float = 2.0
    tokens: float = 0.0

    def step(self, used: float, elapsed: float) -> float:
        """``used`` CPU seconds over the last ``elapsed`` wall seconds (a pause included)."""
        self.tokens = min(self.burst, self.tokens + self.rate * max(0.0, elapsed)) - max(0.0, used)
        if self.tokens >= 0:
            return 0.0
        return min(self.max_pause, -self.tokens / self.rate)


# ---------------------------------------------------------------------------- which mode applies

@dataclass(frozen=True)
class Facts:
    """What this machine offers the serve process (gathered by ``cgroups.probe``)."""

    linux: bool = True
    proc: bool = True                              # /proc, for the watchdog
    v2_dir: str | None = None                      # this process's cgroup v2 directory
    v2_controllers: frozenset[str] = frozenset()   # that directory's cgroup.controllers
    v2_enabled: frozenset[str] = frozenset()       # its cgroup.subtree_control
    v2_writable: bool = False
    v2_others: int = 0                             # other processes in that cgroup
    v1_memory: str | None = None                   # this process's v1 memory cgroup directory
    v1_cpu: str | None = None                      # and cpu one
    v1_writable: bool = False                      # both writable


@dataclass(frozen=True)
class Choice:
    mode: str            # "cgroup2" | "cgroup1" | "rlimit" | "off"
    why: str             # why this one (and why not the better ones), for the log and local.status


NEEDED = frozenset({"memory", "cpu"})


def _why_not_v2(f: Facts) -> str | None:
    if f.v2_dir is None:
        return "no cgroup v2 hierarchy is mounted"
    missing = sorted(NEEDED - f.v2_controllers)
    if missing:
        return f"the cgroup v2 group {f.v2_dir} offers no {' or '.join(missing)} controller"
    if not f.v2_writable:
        return f"the cgroup v2 group {f.v2_dir} is not delegated to this user (not writable)"
    if f.v2_others and not NEEDED <= f.v2_enabled:
        return (f"the cgroup v2 group {f.v2_dir} also holds {f.v2_others} other process(es); start the local "
                "cloud in a group of its own (systemd-run --user --scope -p Delegate=yes ...)")
    return None


def _why_not_v1(f: Facts) -> str | None:
    if not (f.v1_memory and f.v1_cpu):
        return "no cgroup v1 memory and cpu hierarchies are mounted"
    if not f.v1_writable:
        return f"the cgroup v1 groups {f.v1_memory} and {f.v1_cpu} are not writable (root only)"
    return None


def _why_not_rlimit(f: Facts) -> str | None:
    if not (f.linux and f.proc):
        return "rlimits and the watchdog need Linux and /proc"
    return None


def choose(facts: Facts, requested: str | None = "auto") -> Choice:
    """The mode for process-mode tasks; LimitsError when an explicitly requested one cannot apply."""
    requested = (requested or "auto").strip().lower()
    if requested not in MODES:
        raise LimitsError(f"{ENV_VAR}={requested!r} is not one of {', '.join(MODES)}")
    if requested == "off":
        return Choice("off", f"{ENV_VAR}=off: tasks run without cpu and memory limits")
    checks = (("cgroup2", _why_not_v2), ("cgroup1", _why_not_v1), ("rlimit", _why_not_rlimit))
    passed_over: list[str] = []
    for mode, why_not in checks:
        if requested not in ("auto", mode):
            continue
        reason = why_not(facts)
        if reason is None:
            return Choice(mode, "; ".join([_how(mode, facts)] + passed_over))
        if requested == mode:
            raise LimitsError(f"{ENV_VAR}={mode} cannot apply here: {reason}; unset {ENV_VAR} to pick what works")
        passed_over.append(f"not {_NAMES[mode]}: {reason}")
    return Choice("off", "tasks run without limits: " + "; ".join(passed_over))


_NAMES = {"cgroup2": "cgroup v2", "cgroup1": "cgroup v1", "rlimit": "rlimits"}


def _how(mode: str, f: Facts) -> str:
    if mode == "cgroup2":
        return f"cgroup v2 under {f.v2_dir}: memory.max, memory.swap.max 0, cpu.max per task"
    if mode == "cgroup1":
        return (f"cgroup v1 under {f.v1_memory} (memory) and {f.v1_cpu} (cpu): memory.limit_in_bytes without "
                "swap, cpu.cfs_quota_us per task")
    return ("rlimits and a watchdog: RLIMIT_DATA, memory sampled every 0.1 s and OOM-killed above the limit, "
            "CPU held to its share by pausing the task (SIGSTOP/SIGCONT)")
