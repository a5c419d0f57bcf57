"""The ECS data plane: runs the tasks the emulator's ECS asks for.

One reconcile thread, every ``TICK`` or when woken: under ``emulator.LOCK`` it
settles tasks it never started (restored from a saved state: STOPPED, with the
reason), adopts RunTask tasks, and for every service builds a snapshot, asks
the pure ``scheduler`` for decisions and applies them (``services``). Each task
then lives on a thread of its own (``lifecycle.Worker``); no I/O happens under
the lock.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable

from ship import oci
from ship.localcloud import emulator
from ship.localcloud.emulator import ecs, elbv2
from ship.localcloud.emulator.compat import utcnow
from ship.localcloud.fargate import metadata, scheduler, services
from ship.localcloud.fargate.awslogs import AwsLogs, LogSink
from ship.localcloud.fargate.health import HealthCheck, HealthState
from ship.localcloud.fargate.lifecycle import SHUTDOWN_STOP_CAP, Context, TaskRun, Worker
from ship.localcloud.fargate.ports import PortAllocator
from ship.localcloud.runtime.base import Runner
from ship.localcloud.runtime.images import RootfsCache
from ship.localcloud.runtime.process_runner import ProcessRunner
from ship.localcloud.runtime.runners import Runners, may_have_containers

log = logging.getLogger("ship.localcloud.fargate.dataplane")

TICK = 0.5
KEEP_STOPPED = 100
STOPPED_TTL = 3600.0
ORPHAN_REASON = ("Task stopped: the local cloud restarted and this task, restored from a saved state, "
                 "was never started by it")


class DataPlane:
    settle = scheduler.NO_HEALTH_CHECK_SETTLE

    def __init__(self, state_dir: Path, endpoint: str, host: str = "127.0.0.1", instance: str = "",
                 runners: list[Runner] | None = None, on_runners: Callable[[Runners], None] | None = None):
        self.state = Path(state_dir)
        self.host = host
        self.tasks_dir = self.state / "tasks"
        self.tasks_dir.mkdir(parents=True, exist_ok=True)
        blobs = oci.BlobStore(self.state / "blobs")
        self.runners = (Runners(runners, on_known=on_runners) if runners is not None
                        else self._default_runners(blobs, instance, on_runners))
        self.ports = PortAllocator(host)
        self.runs: dict[str, TaskRun] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.ctx = Context(host=host, endpoint=endpoint, tasks_dir=self.tasks_dir, blobs=blobs,
                           runners=self.runners, shutdown=self._stop, wake=self.wake,
                           release_port=self.ports.release, event=self._event)
        self._thread = threading.Thread(target=self._loop, name="dataplane", daemon=True)

    def _default_runners(self, blobs: oci.BlobStore, instance: str,
                         on_runners: Callable[[Runners], None] | None) -> Runners:
        process = ProcessRunner(RootfsCache(self.state / "rootfs", blobs), self.tasks_dir)

        def containers() -> Runner | None:
            # Container images run as containers when an engine (Docker or Podman) answers.
            from ship.localcloud.runtime.container_runner import container_runner

            return container_runner(self.state, instance or "unknown", self.host)

        if may_have_containers(self.state):
            # what a local cloud that died left running is removed before this one answers
            return Runners([process, *filter(None, [containers()])], on_known=on_runners)
        return Runners([process], lookup=containers, on_known=on_runners)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Reconcile soon (a task changed, a target's health changed)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop every task (stopTimeout capped at SHUTDOWN_STOP_CAP), then the reconcile thread."""
        self._stop_all()
        self._stop.set()
        self._wake.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=10)
        for run in self._stop_all():          # and any task a last reconcile started
            if run.thread is not None:
                run.thread.join(timeout=SHUTDOWN_STOP_CAP + 15)

    def _stop_all(self) -> list[TaskRun]:
        with emulator.LOCK:
            live = [r for r in self.runs.values() if not r.done]
            for run in live:
                run.task.request_stop("Local cloud stopped", scheduler.SCHEDULER_INITIATED)
                run.stop_requested.set()
        return live

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            if self._stop.is_set():
                break
            for step in (self.reconcile, self.flush_logs):
                try:
                    step()
                except Exception:
                    log.exception("data plane step %s failed", step.__name__)

    # ------------------------------------------------------------------ reconcile

    def reconcile(self) -> None:
        now = time.time()
        with emulator.LOCK:
            elbv2.prune_draining()
            to_start = self._adopt_tasks()
            for svc in ecs.iter_services():
                try:
                    to_start += self._step_service(svc, now)
                except Exception:
                    log.exception("service %s: scheduler step failed", svc.name)
            ecs.update_cluster_counts()
            self._prune_stopped()
        for run in to_start:
            self._spawn(run)

    def _step_service(self, svc: ecs.ServiceHandle, now: float) -> list[TaskRun]:
        runs = [self.runs[t.id] for t in svc.tasks() if t.id in self.runs]
        snap = services.snapshot(svc, runs, self.host, now, self.settle, ecs.services.new_deployment_id())
        decisions = scheduler.decide(snap) if svc.active else scheduler.decide_deleted(snap)
        return services.apply(svc, decisions, {r.task.id: r for r in runs}, self._new_run)

    def _adopt_tasks(self) -> list[TaskRun]:
        """Tasks this data plane does not run: restored ones end STOPPED, RunTask ones start."""
        to_start = []
        for task in ecs.all_local_tasks():
            if task.id in self.runs or task.last_status == "STOPPED":
                continue
            if task.process != ecs.PROCESS:
                self._settle_orphan(task)
            elif task.owner_service is None:
                run = self._new_run(task)
                if run is not None:
                    to_start.append(run)
            else:
                self._stop_unstarted(task, "Task stopped: the data plane lost track of it",
                                     scheduler.SCHEDULER_INITIATED)
        return to_start

    def _settle_orphan(self, task: ecs.LocalTask) -> None:
        svc = next((s for s in ecs.iter_services() if s.arn == task.owner_service), None)
        if task.host_port:
            for lb in svc.load_balancers if svc else []:
                if lb.get("targetGroupArn"):
                    elbv2.deregister_target(lb["targetGroupArn"], self.host, task.host_port)
        code = scheduler.SCHEDULER_INITIATED if task.started_at else scheduler.TASK_FAILED_TO_START
        self._stop_unstarted(task, ORPHAN_REASON, code)
        if svc is not None:
            svc.event(f"has stopped 1 running tasks: (task {task.id}): the local cloud restarted.")
        log.info("task %s: %s", task.id, ORPHAN_REASON)

    @staticmethod
    def _stop_unstarted(task: ecs.LocalTask, reason: str, code: str) -> None:
        task.request_stop(reason, code)
        now = utcnow()
        task.stopping_at = task.stopping_at or now
        task.execution_stopped_at = task.stopped_at = now
        for c in task.containers:
            c["lastStatus"] = "STOPPED"
        task.set_status("STOPPED")

    def _new_run(self, task: ecs.LocalTask) -> TaskRun | None:
        """The run record of a new task; a task that cannot get one is STOPPED at once."""
        try:
            td = ecs.task_definition_of(task)
            container = ecs.effective_container(td, task.overrides)
            svc = next((s for s in ecs.iter_services() if s.arn == task.owner_service), None)
            port = self.ports.allocate()
        except Exception as exc:
            log.exception("task %s cannot be set up", task.id)
            self._stop_unstarted(task, f"ResourceInitializationError: {type(exc).__name__}: {exc}",
                                 scheduler.TASK_FAILED_TO_START)
            return None
        sink = LogSink(AwsLogs.from_container(container, task.id, task.region_name), task.account_id,
                       self.tasks_dir / f"{task.id}.log")
        check = HealthCheck.from_container(container)
        run = TaskRun(task=task, container=container, service_arn=task.owner_service,
                      load_balancers=svc.load_balancers if svc else [], port=port, logs=sink,
                      health=HealthState(check, started=time.monotonic()) if check else None)
        self.runs[task.id] = run
        return run

    def _spawn(self, run: TaskRun) -> None:
        run.thread = threading.Thread(target=Worker(run, self.ctx), name=f"task-{run.task.id[:8]}", daemon=True)
        run.thread.start()

    def _event(self, service_arn: str | None, message: str) -> None:
        if service_arn is None:
            return
        with emulator.LOCK:
            for svc in ecs.iter_services():
                if svc.arn == service_arn:
                    svc.event(message)

    def _prune_stopped(self) -> None:
        stopped = [t for t in ecs.all_local_tasks() if t.last_status == "STOPPED"]
        stopped.sort(key=lambda t: t.stopped_at or utcnow())
        cutoff = time.time() - STOPPED_TTL
        excess = len(stopped) - KEEP_STOPPED
        for i, task in enumerate(stopped):
            if i < excess or (task.stopped_at and task.stopped_at.timestamp() < cutoff):
                ecs.forget_task(task)
                self.runs.pop(task.id, None)

    # ------------------------------------------------------------------ logs and metadata

    def flush_logs(self) -> None:
        for run in list(self.runs.values()):
            if not run.done and run.logs.has_pending:
                try:
                    run.logs.flush()
                except Exception:
                    log.exception("delivering the logs of task %s failed", run.task.id)

    def task_metadata(self, task_id: str) -> dict | None:
        with emulator.LOCK:
            run = self.runs.get(task_id)
            if run is None:
                return None
            pid = run.handle.pid if run.handle else None
            return metadata.payload(run.task, run.container, run.port, pid,
                                    run.health.status if run.health else None)
