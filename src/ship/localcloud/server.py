"""The ``serve`` process: moto's server app in-process plus the data plane.

Requests under ``/_ship/`` are ours (moto never uses that prefix); all others
go to moto, one at a time under ``emulator.LOCK``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ship.localcloud import SERVICE_NAME
from ship.localcloud.apilog import ApiLog, service_of
from ship.localcloud.wire import WholeResponses, retried

log = logging.getLogger("ship.localcloud")


class ShipApp:
    """WSGI app: ``/_ship/*`` endpoints, everything else to moto under the lock."""

    def __init__(self, moto_app, lock, info: dict, dataplane=None, blobs=None, balancers=None,
                 api_log: Path | None = None):
        self.blobs = blobs
        self.balancers = balancers
        self.moto_app = moto_app
        self.lock = lock
        self.info = info
        self.dataplane = dataplane
        # each AWS call logged in one line (the directory of api.log), outside the lock
        self._aws = ApiLog(self._answer, api_log) if api_log is not None else self._answer

    def _json(self, start_response, status: str, body) -> list[bytes]:
        data = json.dumps(body, default=str).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def _ship(self, environ, start_response, path: str):
        parts = [p for p in path.split("/") if p][1:]  # drop "_ship"
        if parts == ["health"]:
            return self._json(start_response, "200 OK", self.info)
        if parts == ["listeners"]:
            body = self.balancers.listener_table() if self.balancers else []
            return self._json(start_response, "200 OK", body)
        if len(parts) == 3 and parts[0] == "blobs" and self.blobs is not None:
            try:
                data = self.blobs.get(f"{parts[1]}:{parts[2]}")
            except (ValueError, OSError):
                return self._json(start_response, "404 Not Found", {"message": "no such blob"})
            start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                      ("Content-Length", str(len(data)))])
            return [data]
        if parts == ["images", "prepare"] and environ.get("REQUEST_METHOD") == "POST" and self.dataplane:
            return self._prepare(environ, start_response)
        if parts and parts[0] == "metadata" and len(parts) >= 2 and self.dataplane:
            meta = self.dataplane.task_metadata(parts[1])
            if meta is None:
                return self._json(start_response, "404 Not Found", {"message": "no such task"})
            if len(parts) == 3 and parts[2] == "task":
                return self._json(start_response, "200 OK", meta["task"])
            if len(parts) == 2:
                return self._json(start_response, "200 OK", meta["container"])
        return self._json(start_response, "404 Not Found", {"message": "unknown endpoint"})

    def _prepare(self, environ, start_response):
        """``POST /_ship/images/prepare {"image": uri}``: unpack and install an image before its
        first task needs it (the tool calls it right after a push)."""
        from ship.localcloud.runtime.images import ImageError, resolve

        try:
            length = min(int(environ.get("CONTENT_LENGTH") or 0), 65536)
            uri = json.loads(environ["wsgi.input"].read(length) or b"{}").get("image") or ""
        except (ValueError, AttributeError):
            return self._json(start_response, "400 Bad Request", {"message": "expected {\"image\": uri}"})
        started = time.monotonic()
        try:
            image = resolve(uri, self.blobs)
            runner = self.dataplane.runners.find(image)
            if runner is None:
                raise ImageError(f"no runner here runs {image.config_media_type} images")
            getattr(runner, "prepare", lambda _image: None)(image)
        except ImageError as exc:
            return self._json(start_response, "409 Conflict", {"image": uri, "message": str(exc)})
        return self._json(start_response, "200 OK", {"image": uri, "seconds": round(time.monotonic() - started, 2)})

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "") or ""
        if path == "/_ship" or path.startswith("/_ship/"):
            return self._ship(environ, start_response, path)
        return self._aws(environ, start_response)

    def _answer(self, environ, start_response):
        """An AWS API call, answered by moto under the lock."""
        attempt = retried(environ)
        if attempt > 1:
            log.warning("%s %s: attempt %d of %s (the client got no answer to an earlier one, which may "
                        "have run)", service_of(environ) or "?", environ.get("HTTP_X_AMZ_TARGET") or
                        environ.get("PATH_INFO"), attempt, environ.get("HTTP_AMZ_SDK_INVOCATION_ID") or "a request")
        with self.lock:
            result = self.moto_app(environ, start_response)
            try:
                body = list(result)
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()
        if self.balancers is not None and service_of(environ) == "elasticloadbalancing":
            # the listeners serve what this call changed before its answer reaches the caller
            # (a registered target, a rule): what the API says, the data plane does
            try:
                self.balancers.sync()
            except Exception:
                log.exception("listener sync after an ELB call failed (the next tick retries)")
        return body


def _warm_up(emulator) -> None:
    started = time.monotonic()
    try:
        emulator.warm_up(os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    except Exception:
        log.exception("warming up the emulator failed (the first requests will do it)")
        return
    log.info("emulator warmed up in %.1fs", time.monotonic() - started)


def _stop_on_signals(server, exit_with: int | None) -> None:
    """Shut ``server`` down (once) on SIGTERM/SIGINT, and when process ``exit_with`` exits."""
    from ship.localcloud import lifeline

    stopping = threading.Event()

    def stop(why: str) -> None:
        if not stopping.is_set():
            log.info("%s: stopping", why)
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    def on_signal(signum, _frame):
        stop(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if exit_with is not None:
        # e.g. a test session: whatever kills it, the local cloud and its tasks go with it
        lifeline.watch(exit_with, lambda: stop(f"process {exit_with}, which it exits with, has exited"))


def _moto_environment(port: int) -> None:
    # must be set before moto imports IAM, so managed policies load
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["MOTO_PORT"] = str(port)


def _claim(state: Path, exit_with: int | None) -> int | None:
    """Take the state directory's lock for this process's life; an exit code when it cannot serve."""
    from ship import procfs
    from ship.localcloud import statelock

    if exit_with is not None and not procfs.alive(exit_with):
        print(f"the process to exit with (pid {exit_with}) is not running", file=sys.stderr, flush=True)
        return 2
    if statelock.acquire(state) is None:  # held (open) for this process's life
        print(f"another local cloud (pid {statelock.holder(state)}) already serves {state}", file=sys.stderr,
              flush=True)
        return statelock.EXIT_LOCKED
    return None


def serve(host: str, port: int, state_dir: str | os.PathLike, exit_with: int | None = None) -> int:
    """Run the local cloud until SIGTERM/SIGINT, or until process ``exit_with`` exits."""
    _moto_environment(port)
    state = Path(state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    refused = _claim(state, exit_with)
    if refused is not None:
        return refused
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    from werkzeug.serving import make_server

    from ship.localcloud.emulator.compat import share_botocore_loader

    share_botocore_loader()   # before moto's models: they make several boto3 sessions
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    from ship.localcloud import emulator, persistence
    from ship.localcloud.alb import hostnames
    from ship.localcloud.alb.balancers import LoadBalancers
    from ship.localcloud.emulator import compat, unimplemented
    from ship.localcloud.fargate.autoscaler import AutoScaler
    from ship.localcloud.fargate.dataplane import DataPlane
    from ship.localcloud.runtime.process_runner import kill_leftover_tasks
    from ship.oci import BlobStore

    compat.check_version()
    compat.list_moto_modules_once()
    kill_leftover_tasks(state / "tasks")
    blobs = BlobStore(state / "blobs")
    emulator.install(blobs)
    compat.method_names_once()

    info: dict[str, Any] = {
        "service": SERVICE_NAME,
        "pid": os.getpid(),
        "instance": str(uuid.uuid4()),
        "started_at": time.time(),
        "runtime": "process",
        "host": host,
        "port": port,
        "state_dir": str(state),
    }
    restored = persistence.restore(state, emulator.LOCK)      # before anything reads the emulator
    info.update(restored.info())
    saver = persistence.Saver(state, emulator.LOCK, restored.lineage)
    endpoint = f"http://{host}:{port}"
    from ship.localcloud.runtime.limits import LimitsError

    describe = _RunnerReport(info)
    try:
        dataplane = DataPlane(state, endpoint=endpoint, instance=info["instance"], on_runners=describe.known)
    except LimitsError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    describe.so_far(dataplane.runners)
    info["exit_with"] = exit_with
    moto_app = saver.track(DomainDispatcherApplication(unimplemented.app_factory(create_backend_app)))
    balancers = LoadBalancers(state, host=host, on_health_change=dataplane.wake)
    scaler = AutoScaler(dataplane, request_counts=balancers.request_counts)
    app = ShipApp(moto_app, emulator.LOCK, info, dataplane, blobs, balancers, api_log=state)

    try:
        # Connections for http://<load balancer name>.elb.localhost:<port>/ go to that load balancer;
        # every answer's head leaves with its body (wire.py says why).
        class WholeMotoHandler(WholeResponses, MotoRequestHandler):
            pass

        handler = hostnames.handler_class(WholeMotoHandler, balancers)
        server = make_server(host, port, app, threaded=True, request_handler=handler)
    except OSError as exc:
        print(f"cannot listen on {host}:{port}: {exc}", file=sys.stderr, flush=True)
        return 2
    server.daemon_threads = True  # type: ignore[attr-defined]  # threaded=True: a ThreadingMixIn server

    _stop_on_signals(server, exit_with)
    (state / "localcloud.json").write_text(json.dumps(info))
    dataplane.start()
    balancers.start()
    scaler.start()
    saver.start()
    threading.Thread(target=_warm_up, args=(emulator,), name="warm-up", daemon=True).start()
    _announce(info, endpoint, state)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        log.info("stopping data plane")
        scaler.stop()
        dataplane.stop()
        balancers.stop()
        saver.stop()        # the last snapshot, with every task stopped
        server.server_close()
        log.info("stopped")
    return 0


def _announce(info: dict[str, Any], endpoint: str, state: Path) -> None:
    log.info("ship-localcloud %s listening on %s (state %s)", info["instance"], endpoint, state)
    print(f"ship-localcloud listening on {endpoint}", flush=True)


class _RunnerReport:
    """``runtime`` and ``limits`` in the health info: the process runner's at once, the
    container runner's once the engine lookup has ended (until then ``limits`` says so)."""

    LOOKING = "(looking for a container engine)"

    def __init__(self, info: dict[str, Any]):
        self.info = info
        self._mu = threading.Lock()
        self._final = False

    def so_far(self, runners) -> None:
        self._write(runners, final=False)

    def known(self, runners) -> None:
        self._write(runners, final=True)
        for kind, how in self.info["limits"].items():
            log.info("task limits (%s runtime): %s", kind, how)

    def _write(self, runners, final: bool) -> None:
        with self._mu:
            if self._final:
                return          # the lookup ended first: what it found stands
            self._final = final
            listed = list(runners)
            limits = {getattr(r, "kind", type(r).__name__): getattr(r, "limits", "none") for r in listed}
            if not final:
                limits.setdefault("container", self.LOOKING)
            self.info["runtime"] = "+".join(["process"] + (["container"] if len(listed) > 1 else []))
            self.info["limits"] = limits
