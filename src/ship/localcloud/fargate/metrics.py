"""The metrics Service Auto Scaling's predefined metric types stand for, measured from the
tasks the data plane runs and from the local load balancer.

* ``ECSServiceAverageCPUUtilization``: CloudWatch's ``AWS/ECS CPUUtilization`` of the service,
  "(Total CPU units used by tasks in service) x 100 / (Total CPU units specified in task
  definition) x (number of tasks in service)"; 1024 CPU units are one vCPU, so a task using one
  CPU second per second uses 1024 units
  (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cloudwatch-metrics.html,
  "Service utilization");
* ``ECSServiceAverageMemoryUtilization``: ``MemoryUtilization``, the same with MiB of memory;
* ``ALBRequestCountPerTarget``: ``AWS/ApplicationELB RequestCountPerTarget`` of the target group,
  the requests the group received divided by its healthy targets, per minute (its only
  statistic is Sum over the one-minute period; "this represents the average, not the sum")
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html).

How a task is measured:

* process runtime: every process of the task's session (the runner starts each task as a
  session of its own, so its whole process tree shares the task's session id), read from
  ``/proc``: CPU is ``utime + stime + cutime + cstime`` (reaped children included, never twice),
  memory is the sum of ``Pss`` (``smaps_rollup``; pages the forked workers share are counted
  once, as a cgroup would count them; ``Rss`` where Pss cannot be read);
* container runtime: the engine's ``stats``: Podman's cumulative ``CPUNano`` and ``MemUsage``,
  or Docker's ``CPUPerc`` and ``MemUsage`` columns.

The functions at the top are pure (tables of samples in, a datapoint out); the samplers at the
bottom read ``/proc`` and run the engine.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from ship import procfs

log = logging.getLogger("ship.localcloud.fargate.metrics")

CPU_UNITS_PER_VCPU = 1024
MIB = 1024 * 1024
PER_MINUTE = 60.0

CPU = "ECSServiceAverageCPUUtilization"
MEMORY = "ECSServiceAverageMemoryUtilization"
REQUESTS = "ALBRequestCountPerTarget"
PREDEFINED = (CPU, MEMORY, REQUESTS)


@dataclass(frozen=True)
class Usage:
    """One sample of one task's resource use."""

    at: float                          # seconds (any clock, the same for every sample)
    cpu_seconds: float | None = None   # cumulative CPU time (process tree, Podman)
    cpu_rate: float | None = None      # or CPU seconds per second, as the engine measured it (Docker)
    memory_bytes: int | None = None


# -- pure ---------------------------------------------------------------------------------------------------

def cpu_units_used(prev: Usage | None, cur: Usage) -> float | None:
    """CPU units the task used on average between two samples (1024 per busy CPU)."""
    if cur.cpu_rate is not None:
        return max(0.0, cur.cpu_rate) * CPU_UNITS_PER_VCPU
    if prev is None or prev.cpu_seconds is None or cur.cpu_seconds is None or cur.at <= prev.at:
        return None
    return max(0.0, cur.cpu_seconds - prev.cpu_seconds) / (cur.at - prev.at) * CPU_UNITS_PER_VCPU


def service_cpu_utilization(tasks: Iterable[tuple[float | None, float]]) -> float | None:
    """(units used, units reserved) per task -> the service's CPUUtilization (%); None without data."""
    known = [(used, reserved) for used, reserved in tasks if used is not None and reserved > 0]
    if not known:
        return None
    return 100.0 * sum(u for u, _ in known) / sum(r for _, r in known)


def service_memory_utilization(tasks: Iterable[tuple[int | None, float]]) -> float | None:
    """(bytes used, MiB reserved) per task -> the service's MemoryUtilization (%); None without data."""
    known = [(used, mib) for used, mib in tasks if used is not None and mib > 0]
    if not known:
        return None
    return 100.0 * sum(u for u, _ in known) / (sum(m for _, m in known) * MIB)


def requests_per_target(prev: tuple[float, int] | None, cur: tuple[float, int], healthy: int) -> float | None:
    """(time, cumulative requests) of a target group at two samples and its healthy targets ->
    RequestCountPerTarget per minute; None when there is nothing to divide by."""
    if prev is None or healthy <= 0 or cur[0] <= prev[0]:
        return None
    return max(0, cur[1] - prev[1]) / healthy * PER_MINUTE / (cur[0] - prev[0])


def target_group_suffix(resource_label: str | None) -> str | None:
    """``targetgroup/<name>/<id>`` of an ALBRequestCountPerTarget ResourceLabel
    (``app/<load-balancer-name>/<id>/targetgroup/<target-group-name>/<id>``)."""
    m = re.fullmatch(r"app/[^/]+/[^/]+/(targetgroup/[^/]+/[^/]+)", resource_label or "")
    return m.group(1) if m else None


_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "tb": 1000 ** 4,
               "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "tib": 1024 ** 4}


def parse_size(text: str) -> int | None:
    """``12.5MiB`` / ``4.17MB`` / ``0B`` -> bytes."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]+)\s*", text)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        return None
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def parse_stats_line(line: str, at: float) -> tuple[str, Usage] | None:
    """One line of ``Engine.stats_args``' output -> (container name, usage)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    if not isinstance(row, dict):
        return None
    name = str(row.get("Name") or row.get("name") or "").lstrip("/")
    if "CPUNano" in row:                                   # podman: its own counters
        return name, Usage(at, cpu_seconds=int(row["CPUNano"]) / 1e9, memory_bytes=int(row.get("MemUsage") or 0))
    cpu = str(row.get("CPUPerc") or "").strip().rstrip("%")  # docker: formatted columns
    memory = parse_size(str(row.get("MemUsage") or "").split("/")[0])
    try:
        rate = float(cpu) / 100.0 if cpu else None
    except ValueError:
        rate = None
    return name, Usage(at, cpu_rate=rate, memory_bytes=memory)


# -- the process runtime: /proc -------------------------------------------------------------------------------

def _memory(pid: str, proc: Path) -> int:
    try:
        for line in (proc / pid / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int((proc / pid / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def process_usage(sessions: Mapping[str, int], at: float, proc: Path = Path("/proc")) -> dict[str, Usage]:
    """Usage of each task (task id -> its session id, the pid of the process the runner started),
    summed over the task's process tree. One pass over ``/proc`` for every task."""
    wanted = {sid: task for task, sid in sessions.items()}
    ticks: dict[str, int] = {}
    memory: dict[str, int] = {}
    try:
        pids = [p.name for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return {}
    for pid in pids:
        fields = procfs.fields(pid, proc)
        if fields is None:
            continue
        try:
            task = wanted.get(int(fields[procfs.SESSION]))
        except ValueError:
            continue
        if task is None:
            continue
        # utime stime cutime cstime: its own and its waited-for children's
        ticks[task] = ticks.get(task, 0) + sum(int(v) for v in fields[procfs.UTIME:procfs.UTIME + 4])
        memory[task] = memory.get(task, 0) + _memory(pid, proc)
    return {task: Usage(at, cpu_seconds=ticks[task] / procfs.CLK_TCK, memory_bytes=memory[task]) for task in ticks}


# -- the container runtime: the engine's stats ------------------------------------------------------------------

def engine_usage(engine, names: Mapping[str, str], at: float) -> dict[str, Usage]:
    """Usage of each task (task id -> container name) from one ``stats`` call; a container that
    is gone makes the whole call fail, so then each is asked on its own."""
    if not names:
        return {}
    by_name = {name: task for task, name in names.items()}
    out: dict[str, Usage] = {}
    groups = [list(names.values())]
    proc = _stats(engine, groups[0])
    if proc is None and len(names) > 1:
        groups = [[n] for n in names.values()]
    for group in groups:
        result = proc if len(groups) == 1 else _stats(engine, group)
        for line in (result or "").splitlines():
            parsed = parse_stats_line(line, at)
            if parsed is not None and parsed[0] in by_name:
                out[by_name[parsed[0]]] = parsed[1]
    return out


def _stats(engine, containers: list[str]) -> str | None:
    import subprocess

    cmd = engine.stats_args(containers)
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s stats failed: %s", engine.name, exc)
        return None
    if proc.returncode != 0:
        log.debug("%s stats %s: %s", engine.name, " ".join(containers), (proc.stderr or "").strip()[-200:])
        return None
    return proc.stdout
