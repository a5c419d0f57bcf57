"""ALB-style health checks of every registered target, with each target group's own
settings; results are written into the emulator's target health.

The decision is ``decide`` (pure), as the ALB user guide ("Health checks for Application
Load Balancer target groups") describes it: "After your target is registered, it must pass
one health check to be considered healthy"; a target is taken out of service after
UnhealthyThresholdCount consecutive failed checks (a newly registered one included), and
an unhealthy target returns to service after HealthyThresholdCount consecutive passed
ones. Reason codes and descriptions are those DescribeTargetHealth reports (ELB API
reference, "TargetHealth"). When a new target gets its first check the guide leaves open:
here, at once, and again at every tick while nothing answers (``checks_early``), so a task
is in service as soon as its server answers, not one interval later. ``HealthChecker`` is
the effectful shell: it schedules the checks, runs them on a small pool, and publishes each
change.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

from ship.localcloud import emulator
from ship.localcloud.emulator import elbv2

log = logging.getLogger("ship.localcloud.alb.healthcheck")

__all__ = ["INITIAL", "HEALTHY", "UNHEALTHY", "Outcome", "Health", "decide", "outcome_of_status", "parse_matcher",
           "check_once", "attempt", "counts", "checks_early", "HealthChecker", "PASSED", "TIMED_OUT", "FAILED",
           "INTERNAL_ERROR"]

INITIAL, HEALTHY, UNHEALTHY = "initial", "healthy", "unhealthy"


class Outcome(NamedTuple):
    """The result of one health check; a failure carries its reason code and description."""

    passed: bool
    reason: str | None = None
    description: str | None = None


PASSED = Outcome(True)
TIMED_OUT = Outcome(False, "Target.Timeout", "Request timed out")
FAILED = Outcome(False, "Target.FailedHealthChecks", "Health checks failed")  # no connection, or a malformed answer
INTERNAL_ERROR = Outcome(False, "Elb.InternalError", "Health checks failed due to an internal error")


def response_code_mismatch(status: int) -> Outcome:
    return Outcome(False, "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{status}]")


@dataclass(frozen=True)
class Health:
    """A target's health as DescribeTargetHealth reports it, with the streak of checks behind it."""

    state: str = INITIAL
    reason: str | None = "Elb.InitialHealthChecking"
    description: str | None = "Initial health checks in progress"
    passes: int = 0  # consecutive passed checks
    failures: int = 0  # consecutive failed checks

    @property
    def reported(self) -> tuple[str, str | None, str | None]:
        return self.state, self.reason, self.description


def decide(health: Health, outcome: Outcome, healthy_threshold: int, unhealthy_threshold: int) -> Health:
    """The health after one more check.

    initial: healthy after one pass, unhealthy after ``unhealthy_threshold`` consecutive
    failures; healthy: unhealthy after ``unhealthy_threshold`` consecutive failures;
    unhealthy: healthy after ``healthy_threshold`` consecutive passes, and its reason is
    that of the latest failure.
    """
    if outcome.passed:
        passes = health.passes + 1
        needed = 1 if health.state == INITIAL else healthy_threshold
        if health.state != HEALTHY and passes >= needed:
            return Health(HEALTHY, None, None, passes, 0)
        return replace(health, passes=passes, failures=0)
    failures = health.failures + 1
    if health.state == UNHEALTHY or failures >= unhealthy_threshold:
        return Health(UNHEALTHY, outcome.reason, outcome.description, 0, failures)
    return replace(health, passes=0, failures=failures)


def parse_matcher(matcher: str) -> Callable[[int], bool]:
    """The success codes of a target group's Matcher ("200", "200,302", "200-299")."""
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


def outcome_of_status(status: int, matcher: str) -> Outcome:
    """A health check answered with ``status``, against the target group's Matcher."""
    return PASSED if parse_matcher(matcher)(status) else response_code_mismatch(status)


def check_once(host: str, port: int, spec: elbv2.TargetGroupSpec) -> Outcome:
    """One health check of ``host:port`` with ``spec``'s settings."""
    return attempt(host, port, spec)[0]


# Nothing answered: the connection was refused, or reset or closed before a response (a
# server not listening yet, or a port forwarder with nothing behind it).
_NO_ANSWER = (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)


def attempt(host: str, port: int, spec: elbv2.TargetGroupSpec) -> tuple[Outcome, bool]:
    """One health check: its outcome, and whether anything answered at all."""
    hc_port = port if spec.health_check_port in (None, "", "traffic-port") else int(spec.health_check_port)
    timeout = max(0.5, spec.timeout)
    if spec.protocol == "TCP":
        try:
            with socket.create_connection((host, hc_port), timeout=timeout):
                return PASSED, True
        except socket.timeout:
            return TIMED_OUT, True
        except OSError as exc:
            return FAILED, not isinstance(exc, _NO_ANSWER)
    conn = http.client.HTTPConnection(host, hc_port, timeout=timeout)
    try:
        headers = {"User-Agent": "ELB-HealthChecker/2.0", "Connection": "close"}
        conn.request("GET", spec.path or "/", headers=headers)
        resp = conn.getresponse()
        resp.read(65536)
        return outcome_of_status(resp.status, spec.matcher), True
    except socket.timeout:
        return TIMED_OUT, True
    except (OSError, http.client.HTTPException) as exc:
        return FAILED, not isinstance(exc, _NO_ANSWER)
    finally:
        conn.close()


def counts(early: bool, outcome: Outcome) -> bool:
    """Whether a check's outcome enters the target's streak: a scheduled check's always; an
    early one's (see ``checks_early``) only when it passed."""
    return not early or outcome.passed


def checks_early(health: Health, answered: bool) -> bool:
    """Whether a target is checked again at the next tick instead of after the interval.

    The user guide says when a new target turns healthy ("it must pass one health check"), not
    when its first check comes. A new target's task is RUNNING once its process has started,
    usually before its server listens, so a first check at registration finds nothing there.
    While a target is ``initial`` and nothing has answered, it is checked again at every tick
    until something answers; those early checks count only when they pass, so a failing or slow
    target still takes the interval's pace to be found unhealthy, and a server that answers
    gets at most one early request."""
    return health.state == INITIAL and not answered


class _Scheduled:
    """What the checker keeps per target: its health, and when it is checked next."""

    __slots__ = ("health", "next_at", "inflight", "early")

    def __init__(self) -> None:
        self.health = Health()
        self.next_at = 0.0  # time.monotonic()
        self.inflight = False
        self.early = False  # checked at every tick until something answers (``checks_early``)


class HealthChecker:
    """One scheduler thread plus a small pool doing the HTTP checks."""

    # tick: how often the schedule is looked at, and so the pace of a new target's early checks
    # (a refused connection each while its server starts): it is in service at most one tick
    # after its server answers
    def __init__(self, on_change: Callable[[], None] | None = None, tick: float = 0.1, workers: int = 8):
        self.on_change = on_change or (lambda: None)
        self.tick = tick
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="healthcheck")
        self._states: dict[tuple[str, str], _Scheduled] = {}  # (target group arn, target key) -> ...
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
                        st = self._states[sk] = _Scheduled()
                        self._publish(spec.arn, key, st.health)
                    if st.inflight or (now < st.next_at and not st.early):
                        continue
                    early = now < st.next_at
                    st.inflight = True
                    if not early:
                        st.next_at = now + spec.interval
                self._pool.submit(self._run_check, spec, key, host, port, st, early)
        with self._mu:
            for sk in [k for k in self._states if k not in seen]:
                del self._states[sk]

    def _run_check(self, spec: elbv2.TargetGroupSpec, key: str, host: str, port: int, st: _Scheduled,
                   early: bool = False) -> None:
        try:
            outcome, answered = attempt(host, port, spec)
        except Exception:  # a bug here must not wedge the target
            log.exception("health check of %s:%s (%s) failed", host, port, spec.name)
            outcome, answered = INTERNAL_ERROR, True
        with self._mu:
            st.inflight = False
            before = st.health
            if counts(early, outcome):
                st.health = decide(before, outcome, spec.healthy_threshold, spec.unhealthy_threshold)
            after = st.health
            st.early = checks_early(after, answered)
        if after.reported != before.reported:
            self._publish(spec.arn, key, after)
            self.on_change()

    @staticmethod
    def _publish(tg_arn: str, key: str, health: Health) -> None:
        with emulator.LOCK:
            elbv2.set_target_health(tg_arn, key, health.state, health.reason, health.description)
