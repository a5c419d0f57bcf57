"""The process runner: process images (ship.oci) run as local processes.

Each task process runs in its own process group (session), gets
PR_SET_PDEATHSIG=SIGKILL (from one long-lived spawner thread, because the
kernel ties that signal to the thread that forked), and is recorded in
``<state>/tasks/<task id>.pid`` (pid + start time) so leftovers can be killed
after a crash of the local cloud.

The task's cpu and memory are applied by the machine's ``enforcers.Enforcer``
(cgroup v2, cgroup v1, or rlimits and a watchdog: ``limits.choose``); a task
killed for its memory exits as an OOM kill (``TaskHandle.reason``).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import queue
import signal
import subprocess
import threading
from concurrent.futures import Future
from pathlib import Path

from ship import procfs
from ship.localcloud.runtime import enforcers
from ship.localcloud.runtime.base import OutputCallback, TaskHandle, TaskSpec, pump_output
from ship.localcloud.runtime.images import ImageError, ResolvedImage, RootfsCache
from ship.localcloud.runtime.limits import OOM_REASON, task_limits

log = logging.getLogger("ship.localcloud.runtime.process_runner")


_PR_SET_PDEATHSIG = 1


def _set_pdeathsig() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # best effort (non-Linux)
        pass


class Spawner:
    def __init__(self) -> None:
        self._q: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="task-spawner", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            kwargs, fut = self._q.get()
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(subprocess.Popen(**kwargs))
                except BaseException as exc:
                    fut.set_exception(exc)

    def popen(self, **kwargs) -> subprocess.Popen:
        fut: Future = Future()
        self._q.put((kwargs, fut))
        return fut.result()


_SPAWNER: Spawner | None = None
_SPAWNER_LOCK = threading.Lock()


def spawner() -> Spawner:
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = Spawner()
        return _SPAWNER


def record_task_pid(tasks_dir: Path, task_id: str, pid: int) -> None:
    tasks_dir.mkdir(parents=True, exist_ok=True)
    (tasks_dir / f"{task_id}.pid").write_text(json.dumps({"pid": pid, "start": procfs.start_time(pid)}))


def forget_task_pid(tasks_dir: Path, task_id: str) -> None:
    try:
        (tasks_dir / f"{task_id}.pid").unlink()
    except FileNotFoundError:
        pass


def kill_leftover_tasks(tasks_dir: Path) -> int:
    """SIGKILL the process group of every recorded task that still runs."""
    killed = 0
    for rec in Path(tasks_dir).glob("*.pid"):
        try:
            data = json.loads(rec.read_text())
            pid, start = int(data["pid"]), data.get("start")
        except (OSError, ValueError, KeyError, TypeError):
            rec.unlink(missing_ok=True)
            continue
        if start and procfs.start_time(pid) == start:
            try:
                os.killpg(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        rec.unlink(missing_ok=True)
    return killed


# --------------------------------------------------------------------------
# the process runner
# --------------------------------------------------------------------------

def _env_list(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for item in pairs or []:
        k, _, v = item.partition("=")
        out[k] = v
    return out


class ProcessRunner:
    """Runs a process image: Cmd in ``<rootfs>/app`` with ``<rootfs>/venv/bin`` first on PATH."""

    kind = "process"

    def __init__(self, rootfs: RootfsCache, tasks_dir: Path, enforcer: enforcers.Enforcer | None = None):
        self.rootfs = rootfs
        self.tasks_dir = Path(tasks_dir)
        self.enforcer = enforcer if enforcer is not None else enforcers.for_machine()
        self._limiters: dict[str, enforcers.TaskLimiter] = {}
        self._mu = threading.Lock()

    @property
    def limits(self) -> str:
        """Which way tasks are held to their cpu and memory here (for /_ship/health)."""
        return f"{self.enforcer.mode}: {self.enforcer.description}"

    def can_run(self, image: ResolvedImage) -> bool:
        return image.is_process_image

    def prepare(self, image: ResolvedImage) -> None:
        self.rootfs.materialize(image)

    def command(self, spec: TaskSpec) -> list[str]:
        cfg = spec.image.run_config
        entrypoint = spec.container.get("entryPoint")
        if entrypoint is None:
            entrypoint = cfg.get("Entrypoint") or []
        cmd = spec.container.get("command")
        if cmd is None:
            cmd = cfg.get("Cmd") or []
        argv = list(entrypoint) + list(cmd)
        if not argv:
            raise ImageError("CannotStartContainerError: the image has no Cmd/Entrypoint and the task "
                             "definition no command")
        return argv

    def start(self, spec: TaskSpec, on_output: OutputCallback) -> TaskHandle:
        root = self.rootfs.materialize(spec.image)
        cfg = spec.image.run_config
        workdir = cfg.get("WorkingDir") or "/app"
        cwd = root / workdir.lstrip("/") if workdir.startswith("/app") else root / "app"
        if not cwd.is_dir():
            cwd = root / "app"
        env = {"PATH": f"{root / 'venv' / 'bin'}:/usr/local/bin:/usr/bin:/bin",
               "HOME": str(root / "app"), "LANG": "C.UTF-8"}
        env.update(_env_list(cfg.get("Env")))
        env["PATH"] = f"{root / 'venv' / 'bin'}:" + env.get("PATH", "/usr/bin:/bin").replace(
            f"{root / 'venv' / 'bin'}:", "")
        env["VIRTUAL_ENV"] = str(root / "venv")
        for item in spec.container.get("environment") or []:
            env[item["name"]] = str(item.get("value", ""))
        env.update(spec.environment)
        env["PORT"] = str(spec.port)
        env["HOST"] = "127.0.0.1"  # a plain process shares the host's interfaces: loopback only
        argv = self.command(spec)
        exe = argv[0]
        if "/" not in exe:
            candidate = root / "venv" / "bin" / exe
            if candidate.exists():
                argv[0] = str(candidate)
        limiter = self._limiter(spec)

        def preexec() -> None:
            _set_pdeathsig()
            limiter.preexec()

        try:
            proc = spawner().popen(args=argv, cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=preexec)
        except (OSError, subprocess.SubprocessError) as exc:
            self._forget(spec.task_id)
            what = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ImageError(f"CannotStartContainerError: {argv[0]}: {what}")
        limiter.started(proc.pid)
        record_task_pid(self.tasks_dir, spec.task_id, proc.pid)
        handle = TaskHandle(spec.task_id, "127.0.0.1", spec.port, proc.pid, proc, env=env, cwd=str(cwd))
        handle.reader = threading.Thread(target=pump_output, args=(proc, on_output),
                                         name=f"task-out-{spec.task_id[:8]}", daemon=True)
        handle.reader.start()
        return handle

    def _limiter(self, spec: TaskSpec) -> enforcers.TaskLimiter:
        limits = task_limits(spec.cpu, spec.memory, spec.container)
        try:
            limiter = self.enforcer.task(spec.task_id, limits)
        except OSError as exc:
            raise ImageError(f"ResourceInitializationError: failed to apply the task's limits ({limits.describe()}) "
                             f"with {self.enforcer.mode}: {exc.strerror or exc}") from None
        with self._mu:
            self._limiters[spec.task_id] = limiter
        return limiter

    def _forget(self, task_id: str) -> None:
        with self._mu:
            limiter = self._limiters.pop(task_id, None)
        if limiter is not None:
            limiter.release()

    def _exited(self, handle: TaskHandle, code: int) -> None:
        """Record the exit of the task's main process (and whether it was an OOM kill)."""
        with self._mu:
            limiter = self._limiters.get(handle.task_id)
        if limiter is not None and limiter.oom_killed():
            handle.reason = OOM_REASON
            log.info("task %s: %s (exit %s)", handle.task_id, OOM_REASON, code)
        handle.exit_code = code

    def poll(self, handle: TaskHandle) -> int | None:
        if handle.exit_code is None and handle.proc is not None:
            code = handle.proc.poll()
            if code is not None:
                self._exited(handle, code)
        return handle.exit_code

    def exec(self, handle: TaskHandle, argv: list[str], timeout: float) -> int | None:
        """Run ``argv`` with the task's environment and working directory, in its own
        process group (killed whole when it outlives ``timeout``); within the task's limits, as a
        command run inside a container is."""
        with self._mu:
            limiter = self._limiters.get(handle.task_id)

        def preexec() -> None:
            _set_pdeathsig()
            if limiter is not None:
                limiter.preexec()

        try:
            proc = spawner().popen(args=argv, cwd=handle.cwd, env=handle.env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True, preexec_fn=preexec)
        except (OSError, subprocess.SubprocessError):
            return 127
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
            return None

    def stop(self, handle: TaskHandle, timeout: float) -> int | None:
        proc: subprocess.Popen | None = handle.proc
        if proc is None:
            return handle.exit_code
        with self._mu:
            limiter = self._limiters.get(handle.task_id)
        if limiter is not None:
            limiter.unthrottle()               # a paused task would not see its SIGTERM
        code = proc.poll()
        if code is not None and handle.exit_code is None:
            self._exited(handle, code)         # it ended on its own: an OOM kill is reported as one
        if code is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=max(0.0, timeout))
            except subprocess.TimeoutExpired:
                log.info("task %s ignored SIGTERM for %.0fs: SIGKILL", handle.task_id, timeout)
        # whatever the main process did, nothing of the task's group may survive
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        handle.exit_code = proc.returncode
        if handle.reader is not None:
            handle.reader.join(timeout=2)
        self._forget(handle.task_id)           # kills what is left in its cgroup, removes the group
        forget_task_pid(self.tasks_dir, handle.task_id)
        return handle.exit_code
