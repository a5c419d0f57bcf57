"""One task's life, on one thread of its own, from PROVISIONING to STOPPED
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html):

PROVISIONING -> PENDING (log file, image, runner, log group, container start)
-> ACTIVATING (load balancer registration) -> RUNNING (watch: exit, stop requests,
container health checks) -> DEACTIVATING (draining) -> STOPPING (SIGTERM, then
SIGKILL after stopTimeout) -> DEPROVISIONING (last logs) -> STOPPED.

Whatever fails, at whatever step, the task ends STOPPED with a ``stoppedReason``
that names the cause (``TaskFailedToStart`` before it ran), and the failure is
logged: the worker never dies silently and never leaves a task half-way.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ship import oci
from ship.localcloud import emulator
from ship.localcloud.emulator import elbv2
from ship.localcloud.emulator.compat import utcnow
from ship.localcloud.emulator.ecs import LocalTask
from ship.localcloud.fargate import scheduler
from ship.localcloud.fargate.awslogs import LogSink
from ship.localcloud.fargate.health import HealthState, task_health
from ship.localcloud.runtime.base import Runner, TaskHandle, TaskSpec
from ship.localcloud.runtime.images import ImageError, ResolvedImage, resolve
from ship.localcloud.runtime.runners import Runners

log = logging.getLogger("ship.localcloud.fargate.lifecycle")

WATCH_TICK = 0.25
DEFAULT_STOP_TIMEOUT = 30.0
MAX_STOP_TIMEOUT = 120.0
SHUTDOWN_STOP_CAP = 10.0


class StartFailure(Exception):
    """The task cannot start; str() is its stoppedReason."""


@dataclass
class Context:
    """What every task worker shares with the data plane."""

    host: str
    endpoint: str
    tasks_dir: Path
    blobs: oci.BlobStore
    runners: Runners
    shutdown: threading.Event
    wake: Callable[[], None]
    release_port: Callable[[int], None]
    event: Callable[[str | None, str], None]     # (service arn, message)


@dataclass
class TaskRun:
    """The data plane's record of a task it runs (not emulator state: never pickled)."""

    task: LocalTask
    container: dict                      # the essential container, overrides applied
    service_arn: str | None
    load_balancers: list[dict]
    port: int
    logs: LogSink
    health: HealthState | None = None
    handle: TaskHandle | None = None
    runner: Runner | None = None
    registered: list[str] = field(default_factory=list)
    ever_ready: bool = False
    failure_counted: bool = False
    done: bool = False
    stop_requested: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def target_groups(self) -> list[str]:
        return sorted({lb["targetGroupArn"] for lb in self.load_balancers if lb.get("targetGroupArn")})


class Worker:
    """Runs one ``TaskRun`` to the end. Each step is a method, so tests can make any fail."""

    def __init__(self, run: TaskRun, ctx: Context):
        self.run, self.ctx, self.t = run, ctx, run.task
        self.started = False

    # ------------------------------------------------------------------ the whole life

    def __call__(self) -> None:
        try:
            self._life()
        except StartFailure as exc:
            self._request_stop(str(exc), scheduler.TASK_FAILED_TO_START)
        except Exception as exc:
            log.exception("task %s: %s", self.t.id, exc)
            if self.started:
                self._request_stop(f"Task stopped by the local cloud: {type(exc).__name__}: {exc}",
                                   scheduler.SCHEDULER_INITIATED)
            else:
                self._request_stop(f"ResourceInitializationError: {type(exc).__name__}: {exc}",
                                   scheduler.TASK_FAILED_TO_START)
        finally:
            self._finish()

    def _life(self) -> None:
        with emulator.LOCK:
            if self._stop_wanted():
                return
            self.t.set_status("PENDING")
            self.t.pull_started_at = utcnow()
        self.step("open_log", self.open_log)
        image = self.step("resolve_image", self.resolve_image)
        runner = self.step("choose_runner", self.choose_runner, image)
        self.step("check_log_group", self.check_log_group)
        if self._stop_wanted() or self.ctx.shutdown.is_set():
            self._request_stop("Task stopped before it started", scheduler.TASK_FAILED_TO_START)
            return
        self.step("start_container", self.start_container, runner, image)
        self.started = True
        self.register_targets()
        self.watch()

    def step(self, name: str, fn, *args):
        """Run a start step; anything unexpected becomes a StartFailure naming the step."""
        try:
            return fn(*args)
        except (StartFailure, ImageError) as exc:
            raise StartFailure(str(exc)) from None
        except Exception as exc:
            log.exception("task %s: %s failed", self.t.id, name)
            raise StartFailure(f"ResourceInitializationError: {name.replace('_', ' ')} failed: "
                               f"{type(exc).__name__}: {exc}") from None

    # ------------------------------------------------------------------ start steps

    def open_log(self) -> None:
        self.run.logs.open()

    def resolve_image(self) -> ResolvedImage:
        return resolve(self.run.container.get("image", ""), self.ctx.blobs)

    def choose_runner(self, image: ResolvedImage) -> Runner:
        runner = self.ctx.runners.find(image)
        if runner is None:
            raise StartFailure(f"CannotPullContainerError: {image.uri} is a container image "
                               f"({image.config_media_type}) and this local cloud has no container runner")
        return runner

    def check_log_group(self) -> None:
        if not self.run.logs.group_ready():
            raise StartFailure(
                "ResourceInitializationError: failed to validate logger args: create stream has been "
                "retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: "
                f"The specified log group does not exist. (group {self.run.logs.group_name})")

    def start_container(self, runner: Runner, image: ResolvedImage) -> None:
        t, run = self.t, self.run
        meta = f"{self.ctx.endpoint}/_ship/metadata/{t.id}"
        region = run.logs.target.region if run.logs.target else t.region_name
        spec = TaskSpec(task_id=t.id, task_arn=t.task_arn, container=run.container, image=image, port=run.port,
                        environment={"ECS_CONTAINER_METADATA_URI_V4": meta, "ECS_CONTAINER_METADATA_URI": meta,
                                     "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
                                     "AWS_REGION": region, "AWS_DEFAULT_REGION": region},
                        log_file=self.ctx.tasks_dir / f"{t.id}.log", cpu=t.cpu, memory=t.memory)
        try:
            handle = runner.start(spec, run.logs.write)
        except ImageError:
            raise
        except Exception as exc:
            raise StartFailure(f"CannotStartContainerError: {type(exc).__name__}: {exc}") from None
        container_port = next((pm.get("containerPort") for pm in run.container.get("portMappings") or []), None)
        now = utcnow()
        with emulator.LOCK:
            run.handle, run.runner = handle, runner
            t.pull_stopped_at = now
            t.set_listening(run.port, container_port)
            for c in t.containers:
                c["runtimeId"] = f"{t.id}-{handle.pid}"
                c["imageDigest"] = image.digest
                if c.get("name") == run.container.get("name"):
                    c["lastStatus"] = "RUNNING"
        if run.health is not None:
            run.health = HealthState(run.health.check, started=time.monotonic())
        log.info("task %s running pid %s on %s:%s", t.id, handle.pid, self.ctx.host, run.port)

    # ------------------------------------------------------------------ running

    def register_targets(self) -> None:
        t, run = self.t, self.run
        with emulator.LOCK:
            if run.target_groups and not self._stop_wanted():
                t.set_status("ACTIVATING")
        for tg in run.target_groups:
            if self._stop_wanted():
                break
            with emulator.LOCK:
                elbv2.register_target(tg, self.ctx.host, run.port)
                run.registered.append(tg)
            self.ctx.event(run.service_arn, f"registered 1 targets in (target-group {tg})")
        with emulator.LOCK:
            if not self._stop_wanted():
                t.set_status("RUNNING")
                t.started_at = utcnow()
        self.ctx.wake()

    def watch(self) -> None:
        """Until the container exits or a stop is asked for; runs the container health check."""
        while True:
            code = self.poll()
            if code is not None:
                self._request_stop("Essential container in task exited", scheduler.ESSENTIAL_CONTAINER_EXITED)
                return
            if self._stop_wanted() or self.ctx.shutdown.is_set():
                return
            if self.run.health is not None and self.run.health.due(time.monotonic()):
                self.health_check()
            self.run.stop_requested.wait(WATCH_TICK)

    def poll(self) -> int | None:
        runner, handle = self.run.runner, self.run.handle
        assert runner is not None and handle is not None      # watched only once started
        return runner.poll(handle)

    def health_check(self) -> None:
        run = self.run
        hs, runner, handle = run.health, run.runner, run.handle
        assert hs is not None and runner is not None and handle is not None   # checked only once started
        code = runner.exec(handle, list(hs.check.argv), hs.check.timeout)
        if not hs.record(code == 0, time.monotonic()):
            return
        with emulator.LOCK:
            for c in self.t.containers:
                if c.get("name") == run.container.get("name"):
                    c["healthStatus"] = hs.status
            self.t.health_status = task_health([(True, hs.status)])
            self.t.version += 1
        log.info("task %s: container %s is %s", self.t.id, run.container.get("name"), hs.status)
        self.ctx.wake()

    # ------------------------------------------------------------------ stopping

    def _stop_wanted(self) -> bool:
        return self.run.stop_requested.is_set() or self.t.desired_status == "STOPPED"

    def _request_stop(self, reason: str, code: str) -> None:
        with emulator.LOCK:
            self.t.request_stop(reason, code)
        self.run.stop_requested.set()

    def _finish(self) -> None:
        """DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED; every sub-step guarded."""
        run, t = self.run, self.t
        if t.desired_status != "STOPPED":
            self._request_stop("Task stopped by the local cloud", scheduler.SCHEDULER_INITIATED)
        problems: list[str] = []
        delay = self._guarded(problems, "deregister targets", self.deregister_targets) or 0.0
        if delay and not self.ctx.shutdown.is_set():
            self.ctx.shutdown.wait(delay)
        with emulator.LOCK:
            t.set_status("STOPPING")
            t.stopping_at = t.stopping_at or utcnow()
        exit_code = self._guarded(problems, "stop container", self.stop_container)
        with emulator.LOCK:
            t.set_status("DEPROVISIONING")
            for c in t.containers:
                c["lastStatus"] = "STOPPED"
                if c.get("name") == run.container.get("name") and exit_code is not None:
                    c["exitCode"] = exit_code if exit_code >= 0 else 128 - exit_code
                    if run.handle is not None and run.handle.reason:
                        c["reason"] = run.handle.reason      # e.g. OutOfMemoryError: Container killed ...
            t.execution_stopped_at = utcnow()
        self._guarded(problems, "deliver logs", self.flush_logs)
        run.logs.close()
        with emulator.LOCK:
            if problems:
                for c in t.containers:
                    c["reason"] = "; ".join(problems)
            t.set_status("STOPPED")
            t.stopped_at = utcnow()
            run.done = True
        self._guarded(problems, "release port", self.ctx.release_port, run.port)
        log.info("task %s stopped (%s), exit %s", t.id, t.stopped_reason, exit_code)
        self.ctx.wake()

    def _guarded(self, problems: list, what: str, fn, *args):
        try:
            return fn(*args)
        except Exception as exc:
            log.exception("task %s: %s failed", self.t.id, what)
            problems.append(f"{what} failed: {type(exc).__name__}: {exc}")
            return None

    def deregister_targets(self) -> float:
        run, t = self.run, self.t
        delay = 0.0
        alive = run.handle is not None and run.runner is not None and run.runner.poll(run.handle) is None
        with emulator.LOCK:
            for tg in run.registered:
                delay = max(delay, elbv2.deregister_target(tg, self.ctx.host, run.port))
            if run.registered and alive:
                t.set_status("DEACTIVATING")
            registered, run.registered = run.registered, []
        for tg in registered:
            self.ctx.event(run.service_arn, f"deregistered 1 targets in (target-group {tg})")
        return delay if alive else 0.0

    def stop_container(self) -> int | None:
        run = self.run
        if run.handle is None or run.runner is None:
            return None
        timeout = min(float(run.container.get("stopTimeout") or DEFAULT_STOP_TIMEOUT), MAX_STOP_TIMEOUT)
        if self.ctx.shutdown.is_set():
            timeout = min(timeout, SHUTDOWN_STOP_CAP)
        return run.runner.stop(run.handle, timeout)

    def flush_logs(self) -> None:
        self.run.logs.flush()
