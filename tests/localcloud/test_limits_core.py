"""The pure core of task limits (runtime/limits.py), table-driven, and the cgroup file protocols
against fake cgroup trees: which mode applies on which machine (the modes this machine
cannot run are covered here), what each mode writes, the CPU bucket without cgroups."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ship.localcloud.runtime import cgroups, enforcers, limits as L
from ship.localcloud.runtime.limits import Facts, Limits

MIB = 1024 * 1024


# ---------------------------------------------------------------------------- task and container limits

@pytest.mark.parametrize("task_cpu,task_memory,container,expected", [
    # Fargate: task size only (the container's memory is the task's here)
    ("256", "512", {}, Limits(cpus=0.25, memory_mib=512)),
    # the container's hard limit is below the task's: the smaller one holds
    ("256", "512", {"memory": 128}, Limits(cpus=0.25, memory_mib=128)),
    ("1024", "2048", {"memory": 4096}, Limits(cpus=1.0, memory_mib=2048)),
    # strings as the API accepts them: "1 vCPU" is 1024 units, "1GB" 1024 MiB
    ("1 vCPU", "1GB", {}, Limits(cpus=1.0, memory_mib=1024)),
    (".5 vcpu", "2 gb", {}, Limits(cpus=0.5, memory_mib=2048)),
    # a soft limit below the hard one is kept, at or above it changes nothing
    ("256", "512", {"memoryReservation": 256}, Limits(cpus=0.25, memory_mib=512, reservation_mib=256)),
    ("256", "512", {"memoryReservation": 512}, Limits(cpus=0.25, memory_mib=512)),
    # container cpu is a weight (2..262144), never a cap
    ("512", "1024", {"cpu": 256}, Limits(cpus=0.5, cpu_shares=256, memory_mib=1024)),
    ("512", "1024", {"cpu": 1}, Limits(cpus=0.5, cpu_shares=2, memory_mib=1024)),
    ("512", "1024", {"cpu": 0}, Limits(cpus=0.5, memory_mib=1024)),
    # EC2-style: no task size, the container's memory only
    (None, None, {"memory": 300, "cpu": 128}, Limits(cpu_shares=128, memory_mib=300)),
    (None, None, {"memoryReservation": 64}, Limits(reservation_mib=64)),
    (None, None, {}, Limits()),
    ("junk", "", {"memory": "x"}, Limits()),
])
def test_task_limits_combine_task_and_container_as_fargate_does(task_cpu, task_memory, container, expected):
    assert L.task_limits(task_cpu, task_memory, container) == expected


@pytest.mark.parametrize("limits,host_cpus,flags", [
    (Limits(cpus=0.25, memory_mib=512), 2, ["--cpus=0.25", "--memory=512m", "--memory-swap=512m"]),
    (Limits(cpus=4.0, memory_mib=8192), 2, ["--cpus=2", "--memory=8192m", "--memory-swap=8192m"]),
    (Limits(cpus=0.5, cpu_shares=256, memory_mib=1024, reservation_mib=256), 8,
     ["--cpus=0.5", "--cpu-shares=256", "--memory=1024m", "--memory-swap=1024m", "--memory-reservation=256m"]),
    (Limits(), 2, []),
])
def test_engine_flags_never_let_a_task_swap(limits, host_cpus, flags):
    assert L.engine_flags(limits, host_cpus) == flags


def test_cgroup_settings_per_version():
    limits = Limits(cpus=0.25, cpu_shares=512, memory_mib=128, reservation_mib=64)
    v1 = [(s.controller, s.file, s.value, s.required) for s in L.cgroup_v1_settings(limits)]
    assert v1 == [
        ("memory", "memory.limit_in_bytes", str(128 * MIB), True),
        ("memory", "memory.memsw.limit_in_bytes", str(128 * MIB), False),
        ("memory", "memory.swappiness", "0", False),
        ("memory", "memory.soft_limit_in_bytes", str(64 * MIB), True),
        ("cpu", "cpu.cfs_period_us", "100000", True),
        ("cpu", "cpu.cfs_quota_us", "25000", True),
        ("cpu", "cpu.shares", "512", True),
    ]
    v2 = [(s.file, s.value) for s in L.cgroup_v2_settings(limits)]
    assert v2 == [("memory.max", str(128 * MIB)), ("memory.swap.max", "0"), ("memory.low", str(64 * MIB)),
                  ("cpu.max", "25000 100000"), ("cpu.weight", str(L.shares_to_weight(512)))]
    assert L.cgroup_v1_settings(Limits()) == [] == L.cgroup_v2_settings(Limits())


@pytest.mark.parametrize("shares,weight", [(2, 1), (1024, 39), (262144, 10000)])
def test_shares_to_weight_as_runc(shares, weight):
    assert L.shares_to_weight(shares) == weight


@pytest.mark.parametrize("shares,nice", [(None, 0), (1024, 0), (4096, 0), (512, 3), (256, 6), (2, 19)])
def test_cpu_shares_become_a_nice_value_without_cgroups(shares, nice):
    assert L.nice_for_shares(shares) == nice


@pytest.mark.parametrize("text,count", [
    ("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", 3),                 # v1 memory.oom_control
    ("low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n", 1),    # v2 memory.events
    ("oom_kill_disable 0\nunder_oom 0\n", 0),                              # kernels before 4.13
    ("", 0),
])
def test_oom_kills_are_read_from_either_version(text, count):
    assert L.oom_kills(text) == count


# ---------------------------------------------------------------------------- the CPU bucket

def test_the_bucket_holds_a_spinning_task_to_its_rate():
    bucket = L.Bucket(rate=0.25, burst=0.025)
    used = wall = 0.0
    pause = 0.0
    for _ in range(100):                 # a task that spins whenever it is not paused, sampled every 0.1 s
        elapsed = 0.1 + pause            # the pause counts as wall time, not as CPU
        used += 0.1
        wall += elapsed
        pause = bucket.step(0.1, elapsed)
    assert used / wall == pytest.approx(0.25, abs=0.01)


@pytest.mark.parametrize("used,elapsed,pause", [
    (0.0, 0.1, 0.0),                     # idle
    (0.02, 0.1, 0.0),                    # within its share
    (0.1, 0.1, 0.3),                     # one CPU for 0.1 s at 0.25: paused 0.3 s
    (0.8, 0.1, 2.0),                     # eight processes at once: capped, the rest of the debt stays
])
def test_the_bucket_pauses_for_the_debt(used, elapsed, pause):
    assert L.Bucket(rate=0.25, burst=0.025).step(used, elapsed) == pytest.approx(pause)


# ---------------------------------------------------------------------------- which mode applies

V2 = dict(v2_dir="/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/ship.scope",
          v2_controllers=frozenset({"cpu", "memory", "pids"}), v2_writable=True)
V1 = dict(v1_memory="/sys/fs/cgroup/memory/user", v1_cpu="/sys/fs/cgroup/cpu", v1_writable=True)


@pytest.mark.parametrize("facts,requested,mode,because", [
    # a delegated v2 group of its own (systemd-run --user --scope -p Delegate=yes)
    (Facts(**V2), "auto", "cgroup2", "cgroup v2 under"),
    # v2 without delegation (a login session's scope): no cgroups as a user
    (Facts(**dict(V2, v2_writable=False)), "auto", "rlimit", "is not delegated to this user"),
    # v2 delegated but shared with the shell that started it
    (Facts(**dict(V2, v2_others=3)), "auto", "rlimit", "also holds 3 other process(es)"),
    # ... unless the controllers are already enabled below it
    (Facts(**dict(V2, v2_others=3, v2_enabled=frozenset({"cpu", "memory"}))), "auto", "cgroup2", "cgroup v2"),
    # v2 without the cpu controller delegated (older systemd delegates memory and pids only)
    (Facts(**dict(V2, v2_controllers=frozenset({"memory", "pids"}))), "auto", "rlimit", "offers no cpu controller"),
    # a hybrid host (this one): v2 mounted without controllers, v1 writable as root
    (Facts(v2_dir="/sys/fs/cgroup/unified", v2_controllers=frozenset({"hugetlb"}), v2_writable=True, **V1),
     "auto", "cgroup1", "offers no cpu or memory controller"),
    # v1 as a user
    (Facts(**dict(V1, v1_writable=False)), "auto", "rlimit", "are not writable (root only)"),
    # a container without its cgroups mounted writable, no v2
    (Facts(), "auto", "rlimit", "no cgroup v2 hierarchy is mounted"),
    # no /proc (macOS): nothing can be applied
    (Facts(linux=False, proc=False), "auto", "off", "tasks run without limits"),
    # asked for by name, and possible
    (Facts(**V2, **V1), "cgroup1", "cgroup1", "cgroup v1 under"),
    (Facts(**V2, **V1), "rlimit", "rlimit", "rlimits and a watchdog"),
    (Facts(**V2, **V1), "off", "off", "SHIP_LOCAL_LIMITS=off"),
    (Facts(**V2, **V1), " Auto ", "cgroup2", "cgroup v2"),
    (Facts(**V2, **V1), None, "cgroup2", "cgroup v2"),
])
def test_the_best_mode_this_machine_offers_applies(facts, requested, mode, because):
    choice = L.choose(facts, requested)
    assert choice.mode == mode
    assert because in choice.why


@pytest.mark.parametrize("facts,requested,message", [
    (Facts(**V1), "cgroup2", "SHIP_LOCAL_LIMITS=cgroup2 cannot apply here: no cgroup v2 hierarchy is mounted; "
                             "unset SHIP_LOCAL_LIMITS to pick what works"),
    (Facts(**V2), "cgroup1", "SHIP_LOCAL_LIMITS=cgroup1 cannot apply here: no cgroup v1 memory and cpu "
                             "hierarchies are mounted; unset SHIP_LOCAL_LIMITS to pick what works"),
    (Facts(proc=False), "rlimit", "SHIP_LOCAL_LIMITS=rlimit cannot apply here: rlimits and the watchdog need "
                                  "Linux and /proc; unset SHIP_LOCAL_LIMITS to pick what works"),
    (Facts(), "cgroups", "SHIP_LOCAL_LIMITS='cgroups' is not one of auto, cgroup2, cgroup1, rlimit, off"),
])
def test_a_mode_asked_for_that_cannot_apply_is_one_line(facts, requested, message):
    with pytest.raises(L.LimitsError) as err:
        L.choose(facts, requested)
    assert str(err.value) == message


# ---------------------------------------------------------------------------- reading the machine

MOUNTINFO = """\
25 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
35 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
36 31 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
37 31 0:32 /docker/abc /sys/fs/cgroup/pids rw shared:16 - cgroup cgroup rw,pids
"""
PROC_CGROUP = """\
12:pids:/docker/abc/x
5:cpu,cpuacct:/user.slice
4:memory:/user.slice/user-1000.slice/session-2.scope
0::/user.slice/user-1000.slice/session-2.scope
"""


def test_mountinfo_and_proc_cgroup_are_read_as_the_kernel_writes_them():
    v1, v2 = cgroups.parse_mountinfo(MOUNTINFO)
    assert v1 == {"cpu": ("/sys/fs/cgroup/cpu,cpuacct", "/"), "memory": ("/sys/fs/cgroup/memory", "/")}
    assert v2 == ("/sys/fs/cgroup/unified", "/")
    paths, path2 = cgroups.parse_proc_cgroup(PROC_CGROUP)
    assert paths["memory"] == "/user.slice/user-1000.slice/session-2.scope" and paths["cpuacct"] == "/user.slice"
    assert path2 == "/user.slice/user-1000.slice/session-2.scope"
    # a mount of a sub-tree (a container's cgroup namespace): paths are relative to its root
    assert cgroups._join(("/sys/fs/cgroup/pids", "/docker/abc"), "/docker/abc/x") == "/sys/fs/cgroup/pids/x"
    assert cgroups._join(("/sys/fs/cgroup/memory", "/"), "/") == "/sys/fs/cgroup/memory"


# ---------------------------------------------------------------------------- the cgroup v2 file protocol

def _fake_v2(root: Path, others: list[int]) -> Path:
    """A delegated v2 group as the kernel shows it: controllers offered, none enabled, processes in it."""
    own = root / "app.slice" / "ship.scope"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text("\n".join(str(p) for p in [os.getpid(), *others]) + "\n")
    return own


class FakeV2(cgroups.CgroupV2):
    """CgroupV2 on an ordinary directory: new groups get the files the kernel would create."""

    def prepare_dir(self, directory):
        fresh = not directory.exists()
        super().prepare_dir(directory)
        if fresh:
            self._files(directory)

    @staticmethod
    def _files(directory):
        for name in ("cgroup.procs", "memory.max", "memory.swap.max", "memory.low", "cpu.max", "cpu.weight"):
            (directory / name).touch()
        (directory / "memory.events").write_text("oom 0\noom_kill 0\n")
        (directory / "cgroup.controllers").write_text("cpu memory\n")

    def task(self, task_id, limits):
        for root in set(self.roots.values()):
            if not (root / task_id).exists():
                (root / task_id).mkdir()
                self._files(root / task_id)
        return super().task(task_id, limits)


def _rmdir_fake(directory: Path) -> None:
    if any(p.is_dir() for p in directory.iterdir()):
        raise OSError(16, "Device or resource busy")   # a group with child groups
    shutil.rmtree(directory)


def test_cgroup_v2_moves_the_serve_to_a_leaf_and_writes_each_task_s_limits(tmp_path, monkeypatch):
    monkeypatch.setattr(cgroups, "_rmdir", _rmdir_fake)
    own = _fake_v2(tmp_path, [])
    facts = Facts(v2_dir=str(own), v2_controllers=frozenset({"cpu", "memory", "pids"}), v2_writable=True)
    choice = L.choose(facts)
    assert choice.mode == "cgroup2"
    group = FakeV2(facts, choice.why)
    group.setup()
    assert (own / cgroups.SERVE_LEAF / "cgroup.procs").read_text() == str(os.getpid())
    assert (own / "cgroup.subtree_control").read_text() == "+cpu +memory"
    root = own / cgroups.TOP / group.namespace
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory"
    assert not (root / "ship-trial").exists(), "the trial group is removed"

    task = group.task("t1", L.task_limits("256", "512", {"memory": 128, "memoryReservation": 64, "cpu": 128}))
    d = root / "t1"
    assert (d / "memory.max").read_text() == str(128 * MIB)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "memory.low").read_text() == str(64 * MIB)
    assert (d / "cpu.max").read_text() == "25000 100000"
    assert (d / "cpu.weight").read_text() == str(L.shares_to_weight(128))
    assert not task.oom_killed()
    (d / "memory.events").write_text("oom 1\noom_kill 1\n")
    assert task.oom_killed()
    task.preexec()                                    # what the task's process does before exec
    assert (d / "cgroup.procs").read_text() == str(os.getpid())
    (d / "cgroup.procs").write_text("")               # the task is over
    task.release()
    assert not d.exists()
    group.close()
    assert not root.exists()


def test_enforcer_falls_back_to_rlimits_when_a_cgroup_cannot_be_set_up(tmp_path):
    facts = Facts(v2_dir=str(tmp_path / "gone"), v2_controllers=frozenset({"cpu", "memory"}), v2_writable=True)
    enforcer = enforcers.build(L.choose(facts), facts)
    assert enforcer.mode == "rlimit"
    assert "not cgroup2: setting up cgroup2 failed" in enforcer.description
    with pytest.raises(L.LimitsError, match="SHIP_LOCAL_LIMITS=cgroup2 cannot apply here: setting up cgroup2"):
        enforcers.build(L.choose(facts, "cgroup2"), facts, strict=True)
