"""The data plane: keeps every ECS service's tasks running the way ECS does,
registers them in their target groups (the ``alb`` package health-checks
them and serves the listeners), and ships task output to CloudWatch Logs.

One reconcile thread decides (under ``emulator.LOCK``, never doing I/O while
holding it); starting and stopping a task happen on their own threads.
"""

from __future__ import annotations

import copy
import logging
import math
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ship import oci
from ship.localcloud import emulator
from ship.localcloud.emulator import ecs, elbv2, logs
from ship.localcloud.emulator.compat import utcnow
from ship.localcloud.runtime.base import Runner, TaskHandle, TaskSpec
from ship.localcloud.runtime.images import ImageError, RootfsCache, resolve
from ship.localcloud.runtime.process import ProcessRunner

log = logging.getLogger("ship.localcloud.fargate.dataplane")

TICK = 0.5
KEEP_STOPPED = 100
STOPPED_TTL = 3600.0
SHUTDOWN_STOP_CAP = 10.0
MAX_STOP_TIMEOUT = 120.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class TaskRuntime:
    task: ecs.LocalTask
    service_arn: str
    deployment_id: str
    containers: list[dict]
    essential: dict
    load_balancers: list[dict]
    grace: float
    region: str
    account: str
    port: int
    handle: TaskHandle | None = None
    runner: Runner | None = None
    started_mono: float | None = None
    ever_ready: bool = False
    registered: list[str] = field(default_factory=list)   # target group ARNs
    stopping: bool = False
    failed_counted: bool = False
    log_group: str | None = None
    log_stream: str | None = None
    log_create_group: bool = False
    log_buf: list = field(default_factory=list)
    log_mu: threading.Lock = field(default_factory=threading.Lock)
    log_file: IO[str] | None = None
    done: bool = False


class DataPlane:
    def __init__(self, state_dir: Path, endpoint: str, host: str = "127.0.0.1", instance: str = ""):
        self.state = Path(state_dir)
        self.endpoint = endpoint
        self.host = host
        self.tasks_dir = self.state / "tasks"
        self.tasks_dir.mkdir(parents=True, exist_ok=True)
        self.blobs = oci.BlobStore(self.state / "blobs")
        self.rootfs = RootfsCache(self.state / "rootfs", self.blobs)
        self.runners: list[Runner] = [ProcessRunner(self.rootfs, self.tasks_dir)]
        # Container images run as containers when an engine (Docker or Podman) answers.
        from ship.localcloud.runtime.container import container_runner

        containers = container_runner(self.state, instance or "unknown", host)
        if containers is not None:
            self.runners.append(containers)
        self.runtimes: dict[str, TaskRuntime] = {}
        self._ports_in_use: set[int] = set()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._shutting_down = False
        self._thread = threading.Thread(target=self._loop, name="dataplane", daemon=True)
        self._workers: set[threading.Thread] = set()
        self._workers_mu = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Reconcile soon (target health changed, for example)."""
        self._wake.set()

    def stop(self) -> None:
        self._shutting_down = True
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        with emulator.LOCK:
            live = [rt for rt in self.runtimes.values() if not rt.done]
        threads = []
        for rt in live:
            threads.append(self._spawn(self._stop_task, rt, "Local cloud stopped", "ServiceSchedulerInitiated",
                                       False))
        with self._workers_mu:
            pending = list(self._workers)
        for t in pending + threads:
            t.join(timeout=SHUTDOWN_STOP_CAP + 15)
        self._flush_logs()

    def _spawn(self, fn, *args) -> threading.Thread:
        def run():
            try:
                fn(*args)
            except Exception:
                log.exception("%s failed", fn.__name__)
            finally:
                with self._workers_mu:
                    self._workers.discard(threading.current_thread())

        t = threading.Thread(target=run, daemon=True, name=fn.__name__)
        with self._workers_mu:
            self._workers.add(t)
        t.start()
        return t

    def _loop(self) -> None:
        last_flush = 0.0
        while not self._stop.is_set():
            self._wake.wait(TICK)
            self._wake.clear()
            if self._stop.is_set():
                break
            for step in (self._reconcile,):
                try:
                    step()
                except Exception:
                    log.exception("data plane step %s failed", step.__name__)
            if time.monotonic() - last_flush >= TICK:
                last_flush = time.monotonic()
                try:
                    self._flush_logs()
                except Exception:
                    log.exception("log flush failed")

    # ------------------------------------------------------------------ reconcile

    def _is_ready(self, rt: TaskRuntime) -> bool:
        t = rt.task
        if t.last_status != "RUNNING" or t.desired_status != "RUNNING":
            return False
        if not rt.load_balancers:
            return True
        if len(rt.registered) < len({lb.get("targetGroupArn") for lb in rt.load_balancers
                                     if lb.get("targetGroupArn")}):
            return False
        return all(elbv2.target_state(tg, self.host, rt.port) == "healthy" for tg in rt.registered)

    def _count_failure(self, svc: ecs.ServiceHandle, rt: TaskRuntime) -> None:
        if rt.failed_counted:
            return
        rt.failed_counted = True
        dep = next((d for d in svc.deployments if d["id"] == rt.deployment_id), None)
        if dep is not None:
            dep["failedTasks"] = int(dep.get("failedTasks") or 0) + 1
            dep["updatedAt"] = utcnow()
        bk = svc.bookkeeping
        bk["fail_streak"] = bk.get("fail_streak", 0) + 1
        bk["next_launch_at"] = time.monotonic() + min(15.0, 0.5 * 2 ** (bk["fail_streak"] - 1))

    def _reconcile(self) -> None:
        to_start: list[TaskRuntime] = []
        to_stop: list[tuple[TaskRuntime, str, str, bool]] = []
        now = time.monotonic()
        with emulator.LOCK:
            elbv2.prune_draining()
            for svc in ecs.iter_services():
                self._reconcile_service(svc, now, to_start, to_stop)
            ecs.update_cluster_counts()
            self._prune_stopped()
        for rt in to_start:
            self._spawn(self._start_task, rt)
        for rt, reason, code, failed in to_stop:
            self._spawn(self._stop_task, rt, reason, code, failed)

    def _request_stop(self, rt: TaskRuntime, reason: str, code: str, to_stop: list, failed=False) -> None:
        if rt.stopping:
            return
        rt.stopping = True
        t = rt.task
        t.desired_status = "STOPPED"
        if not t.stopped_reason:
            t.stopped_reason = reason
        if not t.stop_code:
            t.stop_code = code
        to_stop.append((rt, t.stopped_reason, t.stop_code, failed))

    def _reconcile_service(self, svc: ecs.ServiceHandle, now: float, to_start: list,
                           to_stop: list) -> None:
        runtimes = [self.runtimes[t.id] for t in svc.tasks() if t.id in self.runtimes]
        live = [rt for rt in runtimes if not rt.stopping]

        if not svc.active:
            for rt in live:
                self._request_stop(rt, "Service deleted", "ServiceSchedulerInitiated", to_stop)
            return

        # 1. tasks that exited, were stopped through the API, or fail health checks
        for rt in live:
            t = rt.task
            if t.desired_status == "STOPPED":      # StopTask
                self._request_stop(rt, t.stopped_reason or "Task stopped by user", "UserInitiated", to_stop)
                continue
            if rt.handle is not None and rt.runner is not None and rt.runner.poll(rt.handle) is not None:
                if not rt.ever_ready:
                    self._count_failure(svc, rt)
                self._request_stop(rt, "Essential container in task exited", "EssentialContainerExited", to_stop)
                continue
            if t.last_status == "RUNNING" and rt.registered:
                past_grace = rt.started_mono is not None and now - rt.started_mono >= rt.grace
                for tg in rt.registered:
                    if elbv2.target_state(tg, self.host, rt.port) == "unhealthy" and past_grace:
                        self._count_failure(svc, rt)
                        self._request_stop(rt, f"Task failed ELB health checks in (target-group {tg})",
                                           "ServiceSchedulerInitiated", to_stop, failed=True)
                        svc.event(f"(task {t.id}) (port {rt.port}) is unhealthy in (target-group {tg}).")
                        svc.event(f"has stopped 1 running tasks: (task {t.id}).")
                        break
            if not rt.stopping and self._is_ready(rt) and not rt.ever_ready:
                rt.ever_ready = True
                svc.bookkeeping["fail_streak"] = 0
        live = [rt for rt in runtimes if not rt.stopping]

        primary = svc.primary()
        if primary is None:
            self._set_counts(svc, runtimes)
            return
        conf = svc.deployment_configuration
        desired = svc.desired_count
        primary["desiredCount"] = desired
        cb = conf.get("deploymentCircuitBreaker") or {}
        bk = svc.bookkeeping

        # 2. circuit breaker
        if (primary.get("rolloutState") == "IN_PROGRESS" and cb.get("enable")
                and int(primary.get("failedTasks") or 0) >= ecs.circuit_breaker_threshold(desired)):
            primary["rolloutState"] = "FAILED"
            primary["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
            primary["updatedAt"] = utcnow()
            svc.event(f"(deployment {primary['id']}) deployment failed: tasks failed to start.")
            target_td = bk.get("last_completed_task_definition")
            if cb.get("rollback") and target_td:
                failed = primary
                primary = svc.start_deployment(target_td)
                primary["desiredCount"] = desired
                svc.event(f"(deployment {failed['id']}) rolling back to deployment "
                          f"{bk.get('last_completed_deployment_id', '')}.".replace(" .", "."))
                bk["fail_streak"] = 0
                bk["next_launch_at"] = 0.0
                for rt in live:
                    if rt.deployment_id == failed["id"]:
                        self._request_stop(rt, f"Scaling activity initiated by (deployment {primary['id']})",
                                           "ServiceSchedulerInitiated", to_stop)
                live = [rt for rt in runtimes if not rt.stopping]

        if primary.get("rolloutState") == "FAILED":
            # no rollback: the failed deployment stops launching; older deployments keep running
            self._set_counts(svc, runtimes)
            return

        # 3. rolling update within minimumHealthyPercent / maximumPercent
        max_total = math.floor(desired * int(conf.get("maximumPercent", 200)) / 100)
        min_healthy = math.ceil(desired * int(conf.get("minimumHealthyPercent", 100)) / 100)
        p_live = [rt for rt in live if rt.deployment_id == primary["id"]]
        old_live = [rt for rt in live if rt.deployment_id != primary["id"]]

        if len(p_live) > desired:
            extra = sorted(p_live, key=lambda r: (self._is_ready(r), r.task.created_at), )
            for rt in extra[: len(p_live) - desired]:
                self._request_stop(rt, f"Scaling activity initiated by (deployment {primary['id']})",
                                   "ServiceSchedulerInitiated", to_stop)
            svc.event(f"has stopped {len(p_live) - desired} running tasks: "
                      + " ".join(f"(task {rt.task.id})" for rt in extra[: len(p_live) - desired]) + ".")
            p_live = [rt for rt in p_live if not rt.stopping]

        need = desired - len(p_live)
        room = (max_total - len(live)) if old_live else need
        launch = max(0, min(need, room))
        if launch and now < bk.get("next_launch_at", 0.0):
            launch = 0
        started = []
        for _ in range(launch):
            rt = self._new_task(svc, primary)  # type: ignore[assignment]  # None: not started
            if rt is not None:
                started.append(rt)
                to_start.append(rt)
        if started:
            svc.event(f"has started {len(started)} tasks: "
                      + " ".join(f"(task {rt.task.id})" for rt in started) + ".")
        live = [rt for rt in live if not rt.stopping] + started

        if old_live:
            ready_total = sum(1 for rt in live if self._is_ready(rt))
            budget = ready_total - min_healthy
            stopped_now = []
            for rt in sorted(old_live, key=lambda r: self._is_ready(r)):
                if not self._is_ready(rt):
                    self._request_stop(rt, f"Scaling activity initiated by (deployment {primary['id']})",
                                       "ServiceSchedulerInitiated", to_stop)
                    stopped_now.append(rt)
                elif budget > 0:
                    budget -= 1
                    self._request_stop(rt, f"Scaling activity initiated by (deployment {primary['id']})",
                                       "ServiceSchedulerInitiated", to_stop)
                    stopped_now.append(rt)
            if stopped_now:
                if any(rt.registered for rt in stopped_now):
                    svc.event(f"has begun draining connections on {len(stopped_now)} tasks.")
                svc.event(f"has stopped {len(stopped_now)} running tasks: "
                          + " ".join(f"(task {rt.task.id})" for rt in stopped_now) + ".")

        # 4. completion and steady state
        p_live = [rt for rt in runtimes + started if rt.deployment_id == primary["id"] and not rt.stopping]
        p_ready = sum(1 for rt in p_live if self._is_ready(rt))
        others_busy = any(rt.deployment_id != primary["id"] and not rt.done for rt in runtimes)
        if p_ready >= desired and len(p_live) == desired and not others_busy:
            if primary.get("rolloutState") != "COMPLETED":
                primary["rolloutState"] = "COMPLETED"
                primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
                primary["updatedAt"] = utcnow()
                svc.event(f"(deployment {primary['id']}) deployment completed.")
            bk["last_completed_task_definition"] = primary["taskDefinition"]
            bk["last_completed_deployment_id"] = primary["id"]
            for dep in [d for d in svc.deployments if d is not primary]:
                svc.remove_deployment(dep)
            if not bk.get("steady"):
                bk["steady"] = True
                svc.event("has reached a steady state.")
        elif bk.get("steady") and (p_ready < desired or len(p_live) != desired):
            bk["steady"] = False
        self._set_counts(svc, runtimes + started)

    def _set_counts(self, svc: ecs.ServiceHandle, runtimes: list[TaskRuntime]) -> None:
        running = pending = 0
        for dep in svc.deployments:
            r = p = 0
            for rt in runtimes:
                if rt.deployment_id != dep["id"] or rt.task.desired_status != "RUNNING":
                    continue
                if rt.task.last_status == "RUNNING":
                    r += 1
                elif rt.task.last_status in ("PROVISIONING", "PENDING", "ACTIVATING"):
                    p += 1
            if (dep.get("runningCount"), dep.get("pendingCount")) != (r, p):
                dep["runningCount"], dep["pendingCount"] = r, p
                dep["updatedAt"] = utcnow()
            running += r
            pending += p
        svc.set_counts(running, pending)

    def _new_task(self, svc: ecs.ServiceHandle, dep: dict) -> TaskRuntime | None:
        try:
            td = svc.task_definition(dep["taskDefinition"])
        except Exception:
            log.warning("service %s: task definition %s not found", svc.name, dep["taskDefinition"])
            return None
        task = svc.new_task(dep)
        containers = copy.deepcopy(td.container_definitions)
        essential = next((c for c in containers if c.get("essential", True)), containers[0])
        port = self._alloc_port()
        rt = TaskRuntime(task=task, service_arn=svc.arn, deployment_id=dep["id"], containers=containers,
                         essential=essential, load_balancers=svc.load_balancers,
                         grace=float(svc.grace_seconds), region=svc.region, account=svc.account, port=port)
        opts = ((essential.get("logConfiguration") or {}).get("options") or {})
        if (essential.get("logConfiguration") or {}).get("logDriver") == "awslogs" and opts.get("awslogs-group"):
            rt.log_group = opts["awslogs-group"]
            prefix = opts.get("awslogs-stream-prefix")
            rt.log_stream = f"{prefix}/{essential.get('name')}/{task.id}" if prefix else task.id
            rt.log_create_group = str(opts.get("awslogs-create-group", "false")).lower() == "true"
            rt.region = opts.get("awslogs-region") or svc.region
        self.runtimes[task.id] = rt
        return rt

    def _alloc_port(self) -> int:
        for _ in range(50):
            p = free_port(self.host)
            if p not in self._ports_in_use:
                self._ports_in_use.add(p)
                return p
        raise RuntimeError("no free port")

    def _prune_stopped(self) -> None:
        done = [rt for rt in self.runtimes.values() if rt.done]
        done.sort(key=lambda rt: rt.task.stopped_at or utcnow())
        cutoff = time.time() - STOPPED_TTL
        excess = len(done) - KEEP_STOPPED
        for i, rt in enumerate(done):
            ts = rt.task.stopped_at.timestamp() if rt.task.stopped_at else time.time()
            if i < excess or ts < cutoff:
                ecs.forget_task(rt.task)
                del self.runtimes[rt.task.id]

    # ------------------------------------------------------------------ task start/stop

    def _fail_start(self, rt: TaskRuntime, reason: str) -> None:
        with emulator.LOCK:
            t = rt.task
            log.info("task %s failed to start: %s", t.id, reason)
            rt.stopping = True
            t.desired_status = "STOPPED"
            t.stopped_reason = reason
            t.stop_code = "TaskFailedToStart"
            for c in t.containers:
                c["lastStatus"] = "STOPPED"
                c["reason"] = reason
            svc = next((s for s in ecs.iter_services() if s.arn == rt.service_arn), None)
            if svc is not None:
                self._count_failure(svc, rt)
            t.last_status = "STOPPED"
            t.stopping_at = t.stopped_at = t.execution_stopped_at = utcnow()
            self._ports_in_use.discard(rt.port)
            rt.done = True
        self._append_log(rt, f"[ship-localcloud] task failed to start: {reason}")
        self._wake.set()

    def _start_task(self, rt: TaskRuntime) -> None:
        t = rt.task
        with emulator.LOCK:
            if rt.stopping:
                return
            t.last_status = "PENDING"
            t.pull_started_at = utcnow()
        rt.log_file = open(self.tasks_dir / f"{t.id}.log", "a", buffering=1, encoding="utf-8")
        try:
            image = resolve(rt.essential.get("image", ""), self.blobs)
        except ImageError as exc:
            return self._fail_start(rt, str(exc))
        runner = next((r for r in self.runners if r.can_run(image)), None)
        if runner is None:
            return self._fail_start(
                rt, f"CannotPullContainerError: {image.uri} is a container image "
                    f"({image.config_media_type}) and this local cloud has no container runner")
        if rt.log_group:
            with emulator.LOCK:
                ok = rt.log_create_group or logs.log_group_exists(rt.region, rt.account, rt.log_group)
            if not ok:
                return self._fail_start(
                    rt, "ResourceInitializationError: failed to validate logger args: create stream has been "
                        f"retried 1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: "
                        f"The specified log group does not exist. (group {rt.log_group})")
        container_port = None
        for pm in rt.essential.get("portMappings") or []:
            container_port = pm.get("containerPort")
            break
        spec = TaskSpec(task_id=t.id, task_arn=t.task_arn, container=rt.essential, image=image, port=rt.port,
                        environment={"ECS_CONTAINER_METADATA_URI_V4": f"{self.endpoint}/_ship/metadata/{t.id}",
                                     "ECS_CONTAINER_METADATA_URI": f"{self.endpoint}/_ship/metadata/{t.id}",
                                     "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
                                     "AWS_REGION": rt.region, "AWS_DEFAULT_REGION": rt.region},
                        log_file=self.tasks_dir / f"{t.id}.log")
        if self._shutting_down or rt.stopping:
            return self._fail_start(rt, "Task stopped before it started")
        try:
            handle = runner.start(spec, lambda line: self._append_log(rt, line))
        except ImageError as exc:
            return self._fail_start(rt, str(exc))
        except Exception as exc:
            log.exception("task %s start failed", t.id)
            return self._fail_start(rt, f"CannotStartContainerError: {exc}")
        registered_msgs = []
        with emulator.LOCK:
            rt.handle, rt.runner = handle, runner
            rt.started_mono = time.monotonic()
            now = utcnow()
            t.pull_stopped_at = now
            t.set_listening(rt.port, container_port)
            if rt.stopping:       # stop was requested while starting: let the stop path finish it
                pass
            else:
                t.last_status = "RUNNING"
                t.started_at = now
                for c in t.containers:
                    c["lastStatus"] = "RUNNING"
                    c["runtimeId"] = f"{t.id}-{handle.pid}"
                    c["imageDigest"] = image.digest
                for lb in rt.load_balancers:
                    tg = lb.get("targetGroupArn")
                    if tg and tg not in rt.registered:
                        elbv2.register_target(tg, self.host, rt.port)
                        rt.registered.append(tg)
                        registered_msgs.append(tg)
                svc = next((s for s in ecs.iter_services() if s.arn == rt.service_arn), None)
                if svc is not None:
                    for tg in registered_msgs:
                        svc.event(f"registered 1 targets in (target-group {tg})")
        log.info("task %s running pid %s on %s:%s", t.id, handle.pid, self.host, rt.port)
        self._wake.set()

    def _stop_task(self, rt: TaskRuntime, reason: str, code: str, failed: bool) -> None:
        t = rt.task
        delay = 0.0
        with emulator.LOCK:
            if rt.done:
                return
            rt.stopping = True
            t.desired_status = "STOPPED"
            t.stopped_reason = t.stopped_reason or reason
            t.stop_code = t.stop_code or code
            t.stopping_at = utcnow()
            alive = rt.handle is not None and rt.runner is not None and rt.runner.poll(rt.handle) is None
            for tg in rt.registered:
                delay = max(delay, elbv2.deregister_target(tg, self.host, rt.port))
            svc = next((s for s in ecs.iter_services() if s.arn == rt.service_arn), None)
            if svc is not None:
                for tg in rt.registered:
                    svc.event(f"deregistered 1 targets in (target-group {tg})")
            rt.registered = []
            if t.last_status in ("RUNNING", "PENDING", "PROVISIONING"):
                t.last_status = "DEACTIVATING" if delay and alive else "STOPPING"
        self._wake.set()
        if delay and alive and not self._shutting_down:
            self._stop.wait(delay)
        # wait for a start that is still in flight to hand over its process
        deadline = time.monotonic() + (SHUTDOWN_STOP_CAP if self._shutting_down else 600)
        while rt.handle is None and not rt.done and time.monotonic() < deadline:
            if rt.task.last_status == "STOPPED":
                return
            time.sleep(0.1)
        if rt.done:
            return
        with emulator.LOCK:
            t.last_status = "STOPPING"
        stop_timeout = float(rt.essential.get("stopTimeout") or 30)
        stop_timeout = min(stop_timeout, MAX_STOP_TIMEOUT)
        if self._shutting_down:
            stop_timeout = min(stop_timeout, SHUTDOWN_STOP_CAP)
        exit_code = rt.runner.stop(rt.handle, stop_timeout) if rt.runner else None  # type: ignore[arg-type]
        with emulator.LOCK:
            t.last_status = "DEPROVISIONING"
            for c in t.containers:
                c["lastStatus"] = "STOPPED"
                c["exitCode"] = exit_code if exit_code is None or exit_code >= 0 else 128 - exit_code
            t.execution_stopped_at = utcnow()
        self._flush_task_logs(rt)
        with emulator.LOCK:
            t.last_status = "STOPPED"
            t.stopped_at = utcnow()
            self._ports_in_use.discard(rt.port)
            rt.done = True
        if rt.log_file is not None:
            try:
                rt.log_file.close()
            except Exception:
                pass
        log.info("task %s stopped (%s), exit %s", t.id, t.stopped_reason, exit_code)
        self._wake.set()

    # ------------------------------------------------------------------ logs

    def _append_log(self, rt: TaskRuntime, line: str) -> None:
        ts = _now_ms()
        with rt.log_mu:
            rt.log_buf.append({"timestamp": ts, "message": line})
            f = rt.log_file
        if f is not None:
            try:
                f.write(line + "\n")
            except (ValueError, OSError):
                pass

    def _flush_task_logs(self, rt: TaskRuntime) -> None:
        with rt.log_mu:
            events, rt.log_buf = rt.log_buf, []
        if not events or not rt.log_group:
            return
        with emulator.LOCK:
            try:
                logs.put_log_events(rt.region, rt.account, rt.log_group,
                                    rt.log_stream, events,  # type: ignore[arg-type]  # set with log_group
                                    create_group=rt.log_create_group)
            except Exception:
                log.exception("writing logs of task %s failed", rt.task.id)

    def _flush_logs(self) -> None:
        for rt in list(self.runtimes.values()):
            if rt.log_buf:
                self._flush_task_logs(rt)

    # ------------------------------------------------------------------ task metadata

    def task_metadata(self, task_id: str) -> dict | None:
        with emulator.LOCK:
            rt = self.runtimes.get(task_id)
            if rt is None:
                return None
            t = rt.task
            family_rev = t.task_definition_arn.rsplit("/", 1)[-1]
            family, _, revision = family_rev.rpartition(":")
            container = {
                "DockerId": f"{t.id}-{rt.handle.pid if rt.handle else 0}",
                "Name": rt.essential.get("name"),
                "Image": rt.essential.get("image"),
                "ImageID": (t.containers[0].get("imageDigest") if t.containers else None),
                "Labels": {"com.amazonaws.ecs.cluster": t.cluster_arn, "com.amazonaws.ecs.task-arn": t.task_arn,
                           "com.amazonaws.ecs.task-definition-family": family,
                           "com.amazonaws.ecs.task-definition-version": revision,
                           "com.amazonaws.ecs.container-name": rt.essential.get("name")},
                "DesiredStatus": t.desired_status,
                "KnownStatus": t.last_status,
                "Type": "NORMAL",
                "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["127.0.0.1"]}],
                "Ports": [{"ContainerPort": rt.port, "HostPort": rt.port, "Protocol": "tcp",
                           "HostIp": "127.0.0.1"}],
            }
            task = {
                "Cluster": t.cluster_arn,
                "TaskARN": t.task_arn,
                "Family": family,
                "Revision": revision,
                "DesiredStatus": t.desired_status,
                "KnownStatus": t.last_status,
                "LaunchType": t.launch_type,
                "AvailabilityZone": t.availability_zone,
                "ServiceName": t.group.split(":", 1)[-1],
                "Containers": [container],
            }
            return {"task": task, "container": container}
