"""The container runner: a task's essential container as a real container.

It implements ``ship.localcloud.runtime.base.Runner`` with the engine ``ship.container_cli``
found (Docker or Podman), the way Fargate would run it:

* the image is the one the ECR manifest names: its config digest is the image
  id in the engine's store (``sha256:<hex>``), so no registry is involved;
* ``run --detach --name ship-<task id> --publish 127.0.0.1:<host port>:<container
  port>`` with the task definition's environment (plus the data plane's extra
  variables), entryPoint and command;
* output of ``logs --follow`` goes line by line to the data plane's callback;
* stop is ``stop --time <stopTimeout>`` (the image's stop signal, SIGTERM, then
  SIGKILL), then ``rm --force``;
* the task's cpu and memory become the engine's flags (``limits.engine_flags``:
  ``--cpus``, ``--memory`` with ``--memory-swap`` at the same value, so an
  excess is an OOM kill and never swap, ``--cpu-shares``,
  ``--memory-reservation``); an OOM kill is the engine's ``State.OOMKilled``,
  or, on cgroup v1 hosts, the kernel's OOM notice for the container's memory
  group (``cgroups.OomListener``), listened to from before the command starts.
  Podman runs as ``create``, ``init`` (in the container's StaticDir, where
  Podman 4 looks for the OOM mark its monitor writes in its working
  directory), listen, ``start``;
* every container carries ``ship.localcloud=<instance id>`` and
  ``ship.localcloud.state=<state dir>``, so what a crashed local cloud left
  behind is found and removed by label (``remove_leftovers``).

Containers run on the engine's default bridge network: a task reaches the
host's 127.0.0.1 (and so the emulator's metadata endpoint) only if the engine
routes it there; the app then names itself by hostname and pid instead of its
task id.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from pathlib import Path

from ship import oci
from ship.container_cli import Engine, normalize_id
from ship.errors import ShipError
from ship.localcloud.runtime import cgroups
from ship.localcloud.runtime.base import OutputCallback, TaskHandle, TaskSpec, pump_output
from ship.localcloud.runtime.images import ImageError, ResolvedImage
from ship.localcloud.runtime.limits import OOM_REASON, engine_flags, task_limits
from ship.localcloud.runtime.runners import containers_mark

log = logging.getLogger("ship.localcloud.runtime.container_runner")

LABEL = "ship.localcloud"
STATE_LABEL = "ship.localcloud.state"
TASK_LABEL = "ship.localcloud.task"
NAME_PREFIX = "ship-"
CONTAINER_CONFIG_MEDIA_TYPES = (oci.OCI_CONFIG_MEDIA_TYPE, oci.DOCKER_CONFIG_MEDIA_TYPE)


def container_name(task_id: str) -> str:
    return f"{NAME_PREFIX}{task_id}"


def _container_port(spec: TaskSpec) -> int | None:
    for mapping in spec.container.get("portMappings") or []:
        if mapping.get("containerPort"):
            return int(mapping["containerPort"])
    for key in (spec.image.run_config.get("ExposedPorts") or {}):
        try:
            return int(str(key).split("/")[0])
        except ValueError:
            continue
    return None


def _environment(spec: TaskSpec) -> dict[str, str]:
    """The task definition's environment, then the data plane's variables (the image's own
    ENV is in the image)."""
    env = {item["name"]: str(item.get("value", "")) for item in spec.container.get("environment") or []
           if item.get("name")}
    env.update(spec.environment)
    # The metadata endpoint lives on the host's loopback, which a container on the
    # engine's bridge network cannot reach; the task id is its hostname instead.
    env.pop("ECS_CONTAINER_METADATA_URI_V4", None)
    return env


def init_flags(container: dict) -> list[str]:
    """``linuxParameters.initProcessEnabled`` (supported on Fargate): an init process is the
    container's first process, forwarding signals to the command and reaping its children,
    as the engine's ``--init`` does."""
    parameters = container.get("linuxParameters") or {}
    return ["--init"] if isinstance(parameters, dict) and parameters.get("initProcessEnabled") is True else []


def _argv(spec: TaskSpec) -> tuple[str | None, list[str] | None]:
    """(--entrypoint, command) from the task definition; None keeps the image's."""
    entrypoint = spec.container.get("entryPoint")
    command = spec.container.get("command")
    if entrypoint:
        # The CLI takes one word for --entrypoint: the rest goes in front of the command,
        # which is what the engine would run anyway.
        return entrypoint[0], list(entrypoint[1:]) + list(command or [])
    return None, (list(command) if command else None)


class ContainerRunner:
    """Runs container images with a Docker-compatible engine."""

    kind = "container"

    def __init__(self, engine: Engine, instance: str, state_dir: str | Path, host: str = "127.0.0.1"):
        self.engine = engine
        self.instance = instance
        self.state_dir = str(Path(state_dir).resolve())
        self.host = host
        self.host_cpus = os.cpu_count() or 1
        self.listen_for_oom = cgroups.host_uses_v1_memory()
        self._ids: dict[str, str] = {}           # config digest -> engine image id
        self._oom: dict[str, cgroups.OomListener] = {}
        self._dirs: dict[str, str | None] = {}   # task id -> the container's StaticDir (Podman)
        self._mu = threading.Lock()

    @property
    def limits(self) -> str:
        """How tasks are held to their cpu and memory (for /_ship/health)."""
        oom = f"OOM kills as {self.engine.name} reports them"
        if self.listen_for_oom:
            oom += " or as the kernel notifies them for the container's cgroup v1 memory group"
        return (f"{self.engine.name} run --cpus (task cpu) --memory --memory-swap (no swap) --cpu-shares "
                f"--memory-reservation; {oom}")

    def _mark(self) -> None:
        """Before a container exists: a local cloud that starts after this one died removes it
        before it answers (runtime/runners.py)."""
        mark = containers_mark(self.state_dir)
        try:
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.touch()
        except OSError as exc:
            log.warning("cannot write %s (%s): a local cloud started after this one dies looks for "
                        "its leftover containers only after it answers", mark, exc)

    # ---- Runner interface

    def can_run(self, image: ResolvedImage) -> bool:
        return not image.is_process_image and image.config_media_type in CONTAINER_CONFIG_MEDIA_TYPES

    def prepare(self, image: ResolvedImage) -> None:
        self.local_image(image)

    def labels(self, task_id: str) -> dict[str, str]:
        return {LABEL: self.instance, STATE_LABEL: self.state_dir, TASK_LABEL: task_id}

    def run_args(self, spec: TaskSpec, image_id: str) -> list[str]:
        """The ``run`` command line for ``spec`` (without starting anything)."""
        port = _container_port(spec)
        entrypoint, command = _argv(spec)
        return self.engine.run_args(
            image_id.split(":", 1)[-1], command,
            name=container_name(spec.task_id),
            detach=True,
            ports=[(self.host, spec.port, port)] if port else [],
            env=_environment(spec),
            labels=self.labels(spec.task_id),
            entrypoint=entrypoint,
            extra=["--pull", "never", "--hostname", spec.task_id, *init_flags(spec.container),
                   *engine_flags(task_limits(spec.cpu, spec.memory, spec.container), self.host_cpus)],
        )

    def start(self, spec: TaskSpec, on_output: OutputCallback) -> TaskHandle:
        image_id = self.local_image(spec.image)
        name = container_name(spec.task_id)
        self._mark()
        self.engine.remove_container(name)        # a leftover of the same task id
        cmd = self.run_args(spec, image_id)
        podman = self.engine.name == "podman"
        if podman:
            # create, init (the container's cgroup and first process exist, the command has not
            # started), listen for OOM kills, then start: one that dies at once is not missed.
            cmd = [cmd[0], "create", *[a for i, a in enumerate(cmd[2:]) if not (i == 0 and a == "--detach")]]
        container_id = self._engine_step(spec, cmd[1:], "run")
        if podman:
            # Podman starts the container's monitor (conmon) at `init`, in the working directory
            # of that command, and conmon marks an OOM kill with a file named `oom` there, while
            # Podman looks for it in the container's own directory (StaticDir): initialised from
            # anywhere else, an OOM kill reads as a plain exit 137 and leaves a stray `oom` file.
            static_dir = (self.engine.container_inspect(name) or {}).get("StaticDir") or None
            with self._mu:
                self._dirs[spec.task_id] = static_dir
            self._engine_step(spec, ["init", name], "init", cwd=static_dir)
            if self.listen_for_oom and task_limits(spec.cpu, spec.memory, spec.container).memory_mib:
                self._listen_for_oom(spec.task_id, self.engine.container_inspect(name) or {})
            self._engine_step(spec, ["start", name], "start")
        info = self.engine.container_inspect(container_id) or {}
        pid = (info.get("State") or {}).get("Pid") or None
        handle = TaskHandle(spec.task_id, self.host, spec.port, pid, proc=None)
        handle.proc = self.engine.popen(self.engine.logs_args(name, follow=True)[1:], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        handle.reader = threading.Thread(target=self._read, args=(handle.proc, on_output),
                                         name=f"ctr-out-{spec.task_id[:8]}", daemon=True)
        handle.reader.start()
        log.info("task %s: container %s (%s) from image %s", spec.task_id, name, container_id[:12],
                 image_id[:19])
        return handle

    def _engine_step(self, spec: TaskSpec, args: list[str], what: str, cwd: str | None = None) -> str:
        """One engine command of a task's start: its last output line (an id), or ImageError after
        removing what it left."""
        name = container_name(spec.task_id)
        proc = self.engine.call(args, check=False, timeout=300, what=f"{self.engine.name} {what}", cwd=cwd)
        if proc.returncode != 0:
            self._quiet_remove(name)
            with self._mu:
                self._dirs.pop(spec.task_id, None)
                listener = self._oom.pop(spec.task_id, None)
            if listener is not None:
                listener.close()
            reason = (proc.stderr or proc.stdout or "no output").strip().splitlines()[-1:]
            raise ImageError(f"CannotStartContainerError: {self.engine.name} {what} {spec.image.uri}: "
                             f"{reason[0] if reason else 'no output'}")
        lines = proc.stdout.strip().splitlines()
        return lines[-1] if lines else name

    def _listen_for_oom(self, task_id: str, info: dict) -> None:
        pid = (info.get("State") or {}).get("Pid") or None
        listener = cgroups.OomListener.for_pid(int(pid)) if pid else None
        if listener is not None:
            with self._mu:
                self._oom[task_id] = listener

    def poll(self, handle: TaskHandle) -> int | None:
        if handle.exit_code is not None:
            return handle.exit_code
        logs = handle.proc
        if logs is not None and logs.poll() is None:
            return None                       # `logs --follow` ends when the container does
        state = self.engine.container_state(container_name(handle.task_id))
        if state is None:
            handle.exit_code = -1             # removed behind our back
        elif not state[0]:
            self._exited(handle, state[1] if state[1] is not None else -1)
        return handle.exit_code

    def _exited(self, handle: TaskHandle, code: int) -> None:
        """Record the container's exit on its own (and whether it was an OOM kill)."""
        if self._oom_killed(handle.task_id):
            handle.reason = OOM_REASON
            log.info("task %s: %s (exit %s)", handle.task_id, OOM_REASON, code)
        handle.exit_code = code

    def _oom_killed(self, task_id: str) -> bool:
        proc = self.engine.call("container", "inspect", "--format", "{{.State.OOMKilled}}", container_name(task_id),
                                check=False)
        if proc.returncode == 0 and proc.stdout.strip() == "true":
            return True
        with self._mu:
            listener = self._oom.get(task_id)
        return listener is not None and listener.fired

    def exec(self, handle: TaskHandle, argv: list[str], timeout: float) -> int | None:
        """``exec`` in the task's container: its exit code, None when it outlived ``timeout``."""
        cmd = self.engine.argv("exec", container_name(handle.task_id), list(argv))
        with self._mu:
            cwd = self._dirs.get(handle.task_id)    # where an exec session's monitor writes, as at init
        try:
            return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=timeout, cwd=cwd).returncode
        except subprocess.TimeoutExpired:
            return None
        except OSError:
            return 127

    def stop(self, handle: TaskHandle, timeout: float) -> int | None:
        name = container_name(handle.task_id)
        state = self.engine.container_state(name)
        if handle.exit_code is None and state is not None and not state[0]:
            self._exited(handle, state[1] if state[1] is not None else -1)   # it ended on its own
        try:
            self.engine.stop(name, timeout)
        except ShipError as exc:
            log.warning("task %s: %s", handle.task_id, exc)
        state = self.engine.container_state(name)
        if state is not None and not state[0]:
            handle.exit_code = state[1]
        with self._mu:
            self._dirs.pop(handle.task_id, None)
            listener = self._oom.pop(handle.task_id, None)
        if listener is not None:
            listener.close()
        if handle.reader is not None:
            handle.reader.join(timeout=5)
        if handle.proc is not None and handle.proc.poll() is None:
            handle.proc.kill()
        self._quiet_remove(name)
        return handle.exit_code

    # ---- images

    def local_image(self, image: ResolvedImage) -> str:
        """The engine's id of the image the ECR manifest names (its config digest)."""
        digest = getattr(image, "config_digest", "") or ""
        with self._mu:
            if digest in self._ids:
                return self._ids[digest]
        found = self.engine.image_id(digest.split(":", 1)[-1]) if digest else None
        if found is None and not digest:
            found = self._find_by_layers(image)
        if found is None or (digest and normalize_id(found) != digest):
            raise ImageError(
                f"CannotPullContainerError: {image.uri}: image {digest or '(config digest unknown)'} "
                f"is not in {self.engine.name}'s image store; build it on this machine (inv build) "
                "before deploying it to the local cloud")
        with self._mu:
            self._ids[digest] = found
        return found

    def _find_by_layers(self, image: ResolvedImage) -> str | None:
        """Fallback without a config digest: the local image with the same layer diff ids."""
        want = list((image.config.get("rootfs") or {}).get("diff_ids") or [])
        if not want:
            return None
        for row in self.engine.images():
            try:
                info = self.engine.image_inspect(row["id"])
            except ShipError:
                continue
            if list((info.get("RootFS") or {}).get("Layers") or []) == want:
                return normalize_id(info.get("Id", ""))
        return None

    # ---- helpers

    @staticmethod
    def _read(proc: subprocess.Popen, on_output: OutputCallback) -> None:
        pump_output(proc, on_output)
        proc.wait()

    def _quiet_remove(self, name: str) -> None:
        try:
            self.engine.remove_container(name)
        except ShipError as exc:
            log.warning("%s", exc)


def remove_leftovers(engine: Engine, state_dir: str | Path | None = None, keep_instance: str | None = None) -> int:
    """Force-remove containers a local cloud left behind: those of ``state_dir`` (all local
    clouds when None), except the running instance ``keep_instance``. Returns the count."""
    label = f"{STATE_LABEL}={Path(state_dir).resolve()}" if state_dir else LABEL
    ids = engine.containers(label=label)
    if keep_instance:
        mine = set(engine.containers(label=f"{LABEL}={keep_instance}"))
        ids = [i for i in ids if i not in mine]
    for container in ids:
        engine.remove_container(container)
    return len(ids)


def container_runner(state_dir: str | Path, instance: str, host: str = "127.0.0.1") -> ContainerRunner | None:
    """A runner with the engine that answers (None without one), after removing the containers
    an earlier local cloud on ``state_dir`` left behind."""
    from ship import container_cli

    found = container_cli.detect()
    if found is None:
        return None
    removed = remove_leftovers(found, state_dir, keep_instance=instance)
    if removed:
        log.info("removed %d leftover container(s) of an earlier local cloud", removed)
    containers_mark(state_dir).unlink(missing_ok=True)     # none is left now
    return ContainerRunner(found, instance, state_dir, host)
