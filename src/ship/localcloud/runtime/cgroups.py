"""Control groups for process-mode tasks, and the kernel's OOM notice for containers.

* ``probe()`` gathers the ``limits.Facts`` of this machine (mounts, this
  process's groups, controllers, who may write them);
* ``CgroupV1`` and ``CgroupV2`` make one group per task below the serve
  process's own group (never beside it: the tasks stay inside whatever limits
  and accounting the local cloud itself runs under), write the task's limits,
  move the task's first process in before it execs, read its OOM kills and
  remove the group when the task is over. Layout:
  ``<own group>/ship-localcloud/<serve pid>-<start time>/<task id>``; groups
  an earlier serve left (it was killed) are removed by the next one.
  In cgroup v2 the serve process first moves itself into a leaf of its own
  group (``ship-localcloud-serve``) when it must enable controllers there
  ("no internal processes"), which it may only do alone in a delegated group;
* ``OomListener`` is for containers on cgroup v1 hosts, where Podman does not
  always see an OOM kill (``State.OOMKilled`` stays false on hybrid
  hierarchies): it asks the kernel for the container's memory group's OOM
  notifications (``cgroup.event_control``), as conmon does.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import threading
import time
from pathlib import Path

from ship import procfs
from ship.localcloud.runtime import limits as L

log = logging.getLogger("ship.localcloud.runtime.cgroups")

TOP = "ship-localcloud"
SERVE_LEAF = "ship-localcloud-serve"


# ---------------------------------------------------------------------------- reading the machine

def _unescape(field: str) -> str:
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def parse_mountinfo(text: str) -> tuple[dict[str, tuple[str, str]], tuple[str, str] | None]:
    """(v1 controller -> (mount point, mount root), v2 (mount point, mount root) or None)."""
    v1: dict[str, tuple[str, str]] = {}
    v2: tuple[str, str] | None = None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        root, point, fstype = _unescape(fields[3]), _unescape(fields[4]), tail[0]
        if fstype == "cgroup2" and v2 is None:
            v2 = (point, root)
        elif fstype == "cgroup":
            for option in tail[2].split(","):
                if option in ("memory", "cpu") and option not in v1:
                    v1[option] = (point, root)
    return v1, v2


def parse_proc_cgroup(text: str) -> tuple[dict[str, str], str | None]:
    """(v1 controller -> path, v2 path or None) from /proc/<pid>/cgroup."""
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if hid == "0" and controllers == "":
            v2 = path
        else:
            for name in controllers.split(","):
                v1[name] = path
    return v1, v2


def _join(mount: tuple[str, str], path: str) -> str:
    point, root = mount
    if root != "/" and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return os.path.normpath(point + "/" + path.lstrip("/"))


def _read(path: Path | str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _writable(path: str | Path) -> bool:
    return os.access(path, os.W_OK)


def _pids(directory: Path | str) -> list[int]:
    return [int(p) for p in _read(Path(directory) / "cgroup.procs").split() if p.isdigit()]


def own_groups(proc: Path = Path("/proc"), pid: int | None = None) -> tuple[dict[str, str], str | None]:
    """(v1 controller -> directory, v2 directory) of ``pid`` (this process)."""
    mounts_v1, mount_v2 = parse_mountinfo(_read(proc / "self" / "mountinfo"))
    paths_v1, path_v2 = parse_proc_cgroup(_read(proc / str(pid or os.getpid()) / "cgroup"))
    dirs = {c: _join(mounts_v1[c], paths_v1[c]) for c in ("memory", "cpu") if c in mounts_v1 and c in paths_v1}
    return dirs, (_join(mount_v2, path_v2) if mount_v2 and path_v2 is not None else None)


def probe(proc: Path = Path("/proc")) -> L.Facts:
    if not proc.is_dir():
        return L.Facts(linux=os.uname().sysname == "Linux", proc=False)
    v1, v2 = own_groups(proc)
    me = os.getpid()
    v2_dir = v2 if v2 and os.path.isdir(v2) else None
    return L.Facts(
        linux=True, proc=True,
        v2_dir=v2_dir,
        v2_controllers=frozenset(_read(f"{v2_dir}/cgroup.controllers").split()) if v2_dir else frozenset(),
        v2_enabled=frozenset(_read(f"{v2_dir}/cgroup.subtree_control").split()) if v2_dir else frozenset(),
        v2_writable=v2_dir is not None and _writable(v2_dir) and _writable(f"{v2_dir}/cgroup.procs"),
        v2_others=len([p for p in _pids(v2_dir) if p != me]) if v2_dir else 0,
        v1_memory=v1.get("memory"), v1_cpu=v1.get("cpu"),
        v1_writable=len(v1) == 2 and all(_writable(d) for d in v1.values()),
    )


def host_uses_v1_memory(proc: Path = Path("/proc")) -> bool:
    """True when the memory controller lives in a cgroup v1 hierarchy (the OOM listener's case)."""
    mounts_v1, _ = parse_mountinfo(_read(proc / "self" / "mountinfo"))
    return "memory" in mounts_v1


# ---------------------------------------------------------------------------- one task's group

class CgroupTask:
    """One task's group (one directory per v1 hierarchy, one in v2)."""

    def __init__(self, dirs: dict[str, Path], oom_file: Path):
        self.dirs = dirs
        self.oom_file = oom_file
        unique = sorted(set(dirs.values()))
        self._procs_files = [os.fsencode(d / "cgroup.procs") for d in unique]

    def preexec(self) -> None:
        """In the task's process, after fork and before exec: join the group."""
        pid = str(os.getpid()).encode()
        for path in self._procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, pid)
            finally:
                os.close(fd)

    def started(self, pid: int) -> None:
        pass

    def unthrottle(self) -> None:
        pass

    def oom_killed(self) -> bool:
        return L.oom_kills(_read(self.oom_file)) > 0

    def release(self) -> None:
        """Kill what is left in the group, then remove it (idempotent)."""
        _empty_and_remove(sorted(set(self.dirs.values()), reverse=True))


def _kill_members(directory: Path) -> int:
    kill = directory / "cgroup.kill"
    pids = _pids(directory)
    if pids and kill.exists():
        try:
            kill.write_text("1")
            return len(pids)
        except OSError:
            pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return len(pids)


def _rmdir(directory: Path) -> None:
    directory.rmdir()                  # a group without processes or child groups; its files go with it


def _empty_and_remove(dirs: list[Path], wait: float = 5.0) -> None:
    deadline = time.monotonic() + wait
    for d in dirs:
        while d.is_dir():
            _kill_members(d)
            try:
                _rmdir(d)
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    log.warning("cannot remove the task group %s: %s", d, exc.strerror)
                    break
                time.sleep(0.05)


# ---------------------------------------------------------------------------- v1 and v2

class _Cgroups:
    """What v1 and v2 share: the namespace of this serve, sweeping, probing a group."""

    mode = ""
    controllers: tuple[str, ...] = ("memory", "cpu")

    def __init__(self, bases: dict[str, Path], why: str):
        self.description = why
        start = procfs.start_time(os.getpid()) or "0"
        self.namespace = f"{os.getpid()}-{start}"
        self.tops = {c: Path(bases[c]) / TOP for c in self.controllers}
        self.roots = {c: top / self.namespace for c, top in self.tops.items()}

    def settings(self, limits: L.Limits) -> list[L.Setting]:
        raise NotImplementedError

    def oom_file(self, dirs: dict[str, Path]) -> Path:
        raise NotImplementedError

    def prepare_dir(self, directory: Path) -> None:
        """Make ``directory`` (v2: with the controllers enabled for its children)."""
        directory.mkdir(exist_ok=True)

    def setup(self) -> None:
        """Create this serve's groups and try one task group; OSError when this does not work here."""
        for top in sorted(set(self.tops.values())):
            self.prepare_dir(top)
        self.sweep()
        for root in sorted(set(self.roots.values())):
            self.prepare_dir(root)
        trial = self.task("ship-trial", L.Limits(cpus=0.5, cpu_shares=512, memory_mib=64, reservation_mib=32))
        trial.oom_killed()
        trial.release()

    def sweep(self) -> None:
        """Remove the groups of earlier serves that are gone (their tasks died with them)."""
        for top in sorted(set(self.tops.values())):
            namespaces = sorted(p for p in top.iterdir() if p.is_dir()) if top.is_dir() else []
            for ns in namespaces:
                pid, _, start = ns.name.partition("-")
                if ns.name == self.namespace or (pid.isdigit() and procfs.start_time(int(pid)) == start):
                    continue
                _empty_and_remove(sorted((p for p in ns.iterdir() if p.is_dir()), reverse=True) + [ns])

    def task(self, task_id: str, limits: L.Limits) -> CgroupTask:
        dirs = {c: root / task_id for c, root in self.roots.items()}
        try:
            for d in sorted(set(dirs.values())):
                d.mkdir(exist_ok=True)
            for s in self.settings(limits):
                path = dirs[s.controller] / s.file
                if not s.required and not path.exists():
                    continue
                path.write_text(s.value)
        except OSError:
            _empty_and_remove(sorted(set(dirs.values())))
            raise
        return CgroupTask(dirs, self.oom_file(dirs))

    def close(self) -> None:
        """At the serve's exit: remove its groups (its tasks are stopped by then)."""
        roots = sorted(set(self.roots.values()))
        _empty_and_remove([d for r in roots if r.is_dir() for d in r.iterdir() if d.is_dir()] + roots, wait=2.0)


class CgroupV1(_Cgroups):
    mode = "cgroup1"

    def __init__(self, facts: L.Facts, why: str):
        assert facts.v1_memory and facts.v1_cpu          # choose() picked cgroup1
        super().__init__({"memory": Path(facts.v1_memory), "cpu": Path(facts.v1_cpu)}, why)

    def settings(self, limits: L.Limits) -> list[L.Setting]:
        return L.cgroup_v1_settings(limits)

    def oom_file(self, dirs: dict[str, Path]) -> Path:
        return dirs["memory"] / "memory.oom_control"


class CgroupV2(_Cgroups):
    mode = "cgroup2"

    def __init__(self, facts: L.Facts, why: str):
        assert facts.v2_dir                                # choose() picked cgroup2
        self.own = Path(facts.v2_dir)
        super().__init__({"memory": self.own, "cpu": self.own}, why)

    def settings(self, limits: L.Limits) -> list[L.Setting]:
        return L.cgroup_v2_settings(limits)

    def oom_file(self, dirs: dict[str, Path]) -> Path:
        return dirs["memory"] / "memory.events"

    @staticmethod
    def _enable(directory: Path) -> None:
        enabled = set(_read(directory / "cgroup.subtree_control").split())
        wanted = [c for c in sorted(L.NEEDED) if c not in enabled]
        if wanted:
            (directory / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))

    def prepare_dir(self, directory: Path) -> None:
        directory.mkdir(exist_ok=True)
        self._enable(directory)

    def setup(self) -> None:
        if not L.NEEDED <= set(_read(self.own / "cgroup.subtree_control").split()):
            # "No internal processes": leave our own group for a leaf before enabling controllers in it.
            leaf = self.own / SERVE_LEAF
            leaf.mkdir(exist_ok=True)
            (leaf / "cgroup.procs").write_text(str(os.getpid()))
            self._enable(self.own)
        super().setup()


# ---------------------------------------------------------------------------- containers on cgroup v1

class OomListener:
    """The kernel's OOM notifications for one cgroup v1 memory group, on a thread of its own."""

    def __init__(self, memory_dir: Path):
        self.memory_dir = memory_dir
        self.fired = False
        self._stop = threading.Event()
        self._efd = os.eventfd(0, os.EFD_CLOEXEC)
        control = os.open(memory_dir / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        try:
            (memory_dir / "cgroup.event_control").write_text(f"{self._efd} {control}")
        except OSError:
            os.close(self._efd)
            raise
        finally:
            os.close(control)                      # the kernel keeps its own reference
        self._thread = threading.Thread(target=self._wait, name=f"oom-{memory_dir.name[-12:]}", daemon=True)
        self._thread.start()

    @classmethod
    def for_pid(cls, pid: int) -> OomListener | None:
        """A listener on the memory group of process ``pid``, or None (cgroup v2, not permitted, gone)."""
        dirs, _ = own_groups(pid=pid)
        memory = dirs.get("memory")
        if memory is None:
            return None
        try:
            return cls(Path(memory))
        except OSError as exc:
            log.info("no OOM notifications for %s: %s", memory, exc.strerror or exc)
            return None

    def _wait(self) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([self._efd], [], [], 0.5)
                if not ready:
                    continue
                os.eventfd_read(self._efd)
                if self._settle():
                    return
        except OSError:
            return
        finally:
            os.close(self._efd)

    def _settle(self) -> bool:
        """After a notification: an OOM kill (counted a moment after the notice) or the group's
        removal end the watch (True); anything else (an OOM that killed nothing) does not."""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            text = _read(self.memory_dir / "memory.oom_control")
            if not text:
                return True                        # the group is gone: the container was removed
            if L.oom_kills(text) > 0:
                self.fired = True
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
