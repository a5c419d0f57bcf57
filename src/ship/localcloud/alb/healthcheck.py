"""ALB-style health checks of every registered target, with each target
group's own settings; results are written into the emulator's target health."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from ship.localcloud import emulator
from ship.localcloud.emulator import elbv2

log = logging.getLogger("ship.localcloud.alb.healthcheck")


def parse_matcher(matcher: str) -> Callable[[int], bool]:
    ranges: list[tuple[int, int]] = []
    for part in str(matcher or "200").split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            ranges.append((int(lo), int(hi)))
        else:
            ranges.append((int(part), int(part)))
    return lambda code: any(lo <= code <= hi for lo, hi in ranges)


def check_once(host: str, port: int, spec: elbv2.TargetGroupSpec) -> tuple[bool, str, str]:
    """One health check: (passed, reason, description) in ALB's vocabulary."""
    hc_port = port if spec.health_check_port in (None, "", "traffic-port") else int(spec.health_check_port)
    timeout = max(0.5, spec.timeout)
    if spec.protocol == "TCP":
        try:
            with socket.create_connection((host, hc_port), timeout=timeout):
                return True, "", ""
        except socket.timeout:
            return False, "Target.Timeout", "Request timed out"
        except OSError:
            return False, "Target.FailedHealthChecks", "Health checks failed"
    conn = http.client.HTTPConnection(host, hc_port, timeout=timeout)
    try:
        headers = {"User-Agent": "ELB-HealthChecker/2.0", "Connection": "close"}
        conn.request("GET", spec.path or "/", headers=headers)
        resp = conn.getresponse()
        resp.read(65536)
        if parse_matcher(spec.matcher)(resp.status):
            return True, "", ""
        return False, "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{resp.status}]"
    except socket.timeout:
        return False, "Target.Timeout", "Request timed out"
    except (OSError, http.client.HTTPException):
        return False, "Target.FailedHealthChecks", "Health checks failed"
    finally:
        conn.close()


class _TargetState:
    __slots__ = ("state", "ok_streak", "fail_streak", "next_at", "inflight", "reason", "desc")

    def __init__(self) -> None:
        self.state = "initial"
        self.ok_streak = 0
        self.fail_streak = 0
        self.next_at = 0.0
        self.inflight = False
        self.reason: str | None = "Elb.InitialHealthChecking"
        self.desc: str | None = "Initial health checks in progress"


class HealthChecker:
    """One scheduler thread plus a small pool doing the HTTP checks."""

    def __init__(self, on_change: Callable[[], None] | None = None, tick: float = 0.25, workers: int = 8):
        self.on_change = on_change or (lambda: None)
        self.tick = tick
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="healthcheck")
        self._states: dict[tuple[str, str], _TargetState] = {}
        self._mu = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="healthchecker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self._schedule()
            except Exception:
                log.exception("health check scheduling failed")

    def _schedule(self) -> None:
        with emulator.LOCK:
            specs = elbv2.target_groups()
        now = time.monotonic()
        seen = set()
        for spec in specs:
            if not spec.in_use or not spec.enabled:
                continue
            for key, host, port in spec.targets:
                sk = (spec.arn, key)
                seen.add(sk)
                with self._mu:
                    st = self._states.get(sk)
                    if st is None:
                        st = self._states[sk] = _TargetState()
                        self._publish(spec.arn, key, st)
                    if st.inflight or now < st.next_at:
                        continue
                    st.inflight = True
                    st.next_at = now + spec.interval
                self._pool.submit(self._run_check, spec, key, host, port, st)
        with self._mu:
            for sk in [k for k in self._states if k not in seen]:
                del self._states[sk]

    def _run_check(self, spec: elbv2.TargetGroupSpec, key: str, host: str, port: int, st: _TargetState) -> None:
        try:
            ok, reason, desc = check_once(host, port, spec)
        except Exception as exc:  # a bug here must not wedge the target
            ok, reason, desc = False, "Target.FailedHealthChecks", str(exc)
        changed = False
        with self._mu:
            st.inflight = False
            if ok:
                st.ok_streak += 1
                st.fail_streak = 0
                if st.state != "healthy" and st.ok_streak >= spec.healthy_threshold:
                    st.state, st.reason, st.desc = "healthy", None, None
                    changed = True
            else:
                st.fail_streak += 1
                st.ok_streak = 0
                if st.state != "unhealthy" and st.fail_streak >= spec.unhealthy_threshold:
                    st.state = "unhealthy"
                    changed = True
                if st.state == "unhealthy" and (reason, desc) != (st.reason, st.desc):
                    st.reason, st.desc = reason, desc
                    changed = True
        if changed:
            with emulator.LOCK:
                self._publish(spec.arn, key, st)
            self.on_change()

    @staticmethod
    def _publish(tg_arn: str, key: str, st: _TargetState) -> None:
        with emulator.LOCK:
            elbv2.set_target_health(tg_arn, key, st.state, st.reason, st.desc)
