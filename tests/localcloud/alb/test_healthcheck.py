"""Target health checks as the ALB user guide describes them ("Health checks for Application
Load Balancer target groups"): a registered target is healthy after one passed check;
UnhealthyThresholdCount consecutive failures take a target out of service; HealthyThresholdCount
consecutive passes bring an unhealthy one back. Reasons and descriptions as DescribeTargetHealth
reports them (ELB API reference, "TargetHealth").

The state machine (``decide``) is table-driven; ``check_once`` runs against real sockets; the
checker against moto in-process, counting the checks a real target receives.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from helpers import wait_until
from ship.localcloud import emulator
from ship.localcloud.alb import healthcheck as hc
from ship.localcloud.alb.healthcheck import HEALTHY, INITIAL, UNHEALTHY, Health, decide
from ship.localcloud.emulator import elbv2

CHECKING = (INITIAL, "Elb.InitialHealthChecking", "Initial health checks in progress")
IN_SERVICE = (HEALTHY, None, None)
REFUSED = (UNHEALTHY, "Target.FailedHealthChecks", "Health checks failed")
TIMED_OUT = (UNHEALTHY, "Target.Timeout", "Request timed out")
NOT_FOUND = (UNHEALTHY, "Target.ResponseCodeMismatch", "Health checks failed with these codes: [404]")
UNAVAILABLE = (UNHEALTHY, "Target.ResponseCodeMismatch", "Health checks failed with these codes: [503]")

# One letter per check: P passed, F no connection, T timed out, N answered 404, U answered 503.
OUTCOMES = {"P": hc.PASSED, "F": hc.FAILED, "T": hc.TIMED_OUT, "N": hc.response_code_mismatch(404),
            "U": hc.response_code_mismatch(503)}


def run(checks: str, healthy_threshold: int, unhealthy_threshold: int) -> list[tuple]:
    """The reported (state, reason, description) after each check."""
    health, seen = Health(), []
    for letter in checks.replace(" ", ""):
        health = decide(health, OUTCOMES[letter], healthy_threshold, unhealthy_threshold)
        seen.append(health.reported)
    return seen


# (what, checks, HealthyThresholdCount, UnhealthyThresholdCount, reported after the last check)
TABLE = [
    ("initial -> healthy after one pass (not HealthyThresholdCount)", "P", 5, 2, IN_SERVICE),
    ("initial -> healthy after one pass, whatever the threshold", "P", 10, 2, IN_SERVICE),
    ("initial stays initial below UnhealthyThresholdCount failures", "F", 5, 2, CHECKING),
    ("initial -> unhealthy after UnhealthyThresholdCount failures", "FF", 5, 2, REFUSED),
    ("initial -> unhealthy, threshold 3", "TTT", 2, 3, TIMED_OUT),
    ("initial: two failures of three are not enough", "TT", 2, 3, CHECKING),
    ("initial: a pass after failures is healthy", "FP", 5, 2, IN_SERVICE),
    ("initial: failures are consecutive (a pass resets)", "F P F", 5, 2, IN_SERVICE),
    ("unhealthy -> healthy after HealthyThresholdCount passes", "FF PPPPP", 5, 2, IN_SERVICE),
    ("unhealthy stays unhealthy one pass short", "FF PPPP", 5, 2, REFUSED),
    ("unhealthy -> healthy, threshold 2", "NN PP", 2, 2, IN_SERVICE),
    ("unhealthy: a failure restarts the count of passes", "FF PPPP F PPPP", 5, 2, REFUSED),
    ("unhealthy: ... and the fifth pass after it counts", "FF PPPP F PPPPP", 5, 2, IN_SERVICE),
    ("unhealthy reports the latest failure's reason", "FF T", 5, 2, TIMED_OUT),
    ("unhealthy reports the latest failure's status code", "NN U", 5, 2, UNAVAILABLE),
    ("unhealthy: passes below the threshold keep the reason", "TT PP", 5, 2, TIMED_OUT),
    ("healthy -> unhealthy after UnhealthyThresholdCount failures", "P NN", 5, 2, NOT_FOUND),
    ("healthy -> unhealthy, threshold 3", "P UUU", 5, 3, UNAVAILABLE),
    ("healthy stays healthy below UnhealthyThresholdCount failures", "P UU", 5, 3, IN_SERVICE),
    ("healthy: failures are consecutive (a pass resets)", "P F P F", 5, 2, IN_SERVICE),
    ("healthy again needs HealthyThresholdCount passes", "P FF P", 5, 2, REFUSED),
    ("healthy again after HealthyThresholdCount passes", "P FF PP", 2, 2, IN_SERVICE),
    ("healthy stays healthy on passes", "PPPPPP", 5, 2, IN_SERVICE),
]


@pytest.mark.parametrize("what, checks, healthy_threshold, unhealthy_threshold, expected", TABLE,
                         ids=[row[0] for row in TABLE])
def test_target_health_state_machine(what, checks, healthy_threshold, unhealthy_threshold, expected):
    assert run(checks, healthy_threshold, unhealthy_threshold)[-1] == expected


def test_a_new_target_is_initial_while_it_has_not_passed():
    assert Health().reported == CHECKING
    # Every step of a failing start: initial until the threshold, then unhealthy.
    assert run("NNN", 5, 3) == [CHECKING, CHECKING, NOT_FOUND]


def test_the_way_back_from_unhealthy_counts_every_pass():
    seen = run("FF PPP", 3, 2)
    assert seen == [CHECKING, REFUSED, REFUSED, REFUSED, IN_SERVICE]


@pytest.mark.parametrize("status, matcher, passed", [
    (200, "200", True), (204, "200-299", True), (302, "200,302", True), (404, "200", False),
    (503, "200-399", False), (200, "", True),
])
def test_matcher(status, matcher, passed):
    outcome = hc.outcome_of_status(status, matcher)
    assert outcome.passed is passed
    if not passed:
        assert (outcome.reason, outcome.description) == (
            "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{status}]")


# ---------------------------------------------------------------------------
# One check against real sockets
# ---------------------------------------------------------------------------


class _Target(ThreadingHTTPServer):
    """A health-check target on a free loopback port: answers ``status`` and counts the checks."""

    daemon_threads = True

    def __init__(self, status: int = 200, port: int = 0):
        self.status = status
        self.checks = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _TargetHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _TargetHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        with self.server.lock:
            self.server.checks += 1
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def _spec(**kw):
    settings = dict(health_check_port="traffic-port", timeout=5.0, protocol="HTTP", path="/health", matcher="200")
    settings.update(kw)
    return SimpleNamespace(**settings)


@pytest.fixture
def target():
    made = []

    def make(status=200, port=0):
        t = _Target(status, port)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def test_check_once_passes_on_a_matching_code(target):
    t = target(200)
    assert hc.check_once("127.0.0.1", t.port, _spec()) == hc.PASSED
    assert t.checks == 1


def test_check_once_reports_the_code_that_did_not_match(target):
    t = target(404)
    assert hc.check_once("127.0.0.1", t.port, _spec()) == (
        False, "Target.ResponseCodeMismatch", "Health checks failed with these codes: [404]")


def test_check_once_reports_a_refused_connection():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        outcome = hc.check_once("127.0.0.1", port, _spec())
        assert outcome == (False, "Target.FailedHealthChecks", "Health checks failed")
        assert hc.attempt("127.0.0.1", port, _spec()) == (outcome, False)   # nothing answered
        assert hc.attempt("127.0.0.1", port, _spec(protocol="TCP")) == (outcome, False)


def test_an_answer_of_any_kind_is_an_answer(target):
    assert hc.attempt("127.0.0.1", target(503).port, _spec()) == (hc.response_code_mismatch(503), True)
    assert hc.attempt("127.0.0.1", target(200).port, _spec()) == (hc.PASSED, True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)  # accepts, never answers: a timeout is the target's (slow) answer, not an absence
        assert hc.attempt("127.0.0.1", s.getsockname()[1], _spec(timeout=0.5)) == (hc.TIMED_OUT, True)


# (what, the target's health, whether the check was early, its outcome, whether anything answered,
#  whether the outcome counts, whether the target is checked again at the next tick)
EARLY = [
    ("a scheduled check always counts", Health(), False, hc.FAILED, False, True, True),
    ("an early check that passes counts", Health(), True, hc.PASSED, True, True, False),
    ("an early check that fails does not count", Health(), True, hc.response_code_mismatch(503), True, False,
     False),
    ("nothing answered an early check: it does not count, and the next tick checks again", Health(), True,
     hc.FAILED, False, False, True),
    ("a slow answer ends the early checks", Health(), True, hc.TIMED_OUT, True, False, False),
    ("a healthy target is checked on the interval only", Health(HEALTHY, None, None, 1, 0), False, hc.FAILED,
     False, True, False),
    ("an unhealthy target is checked on the interval only", Health(UNHEALTHY, *REFUSED[1:], 0, 2), False,
     hc.FAILED, False, True, False),
]


@pytest.mark.parametrize("what, health, early, outcome, answered, counted, again", EARLY, ids=[r[0] for r in EARLY])
def test_which_checks_count_and_when_a_new_target_is_checked_again(
        what, health, early, outcome, answered, counted, again):
    assert hc.counts(early, outcome) is counted
    after = decide(health, outcome, 5, 2) if counted else health
    assert hc.checks_early(after, answered) is again


def test_check_once_reports_a_timeout():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)  # accepts (in the backlog), never answers
        assert hc.check_once("127.0.0.1", s.getsockname()[1], _spec(timeout=0.5)) == (
            False, "Target.Timeout", "Request timed out")


def test_check_once_uses_the_health_check_port(target):
    t = target(200)
    assert hc.check_once("127.0.0.1", 1, _spec(health_check_port=str(t.port))) == hc.PASSED


# ---------------------------------------------------------------------------
# The checker, with moto in-process
# ---------------------------------------------------------------------------


@pytest.fixture
def elb(monkeypatch):
    elbv2.install()
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield boto3.client("elbv2", region_name="us-east-1"), boto3.client("ec2", region_name="us-east-1")


def _target_group(elb, ec2, **health):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
               ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    lb = elb.create_load_balancer(Name="hc", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(Name="hc", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
                                 HealthCheckPath="/health", **health)["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    return tg


def _health(elb, tg, port):
    [d] = [d for d in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
           if d["Target"]["Port"] == port]
    h = d["TargetHealth"]
    return h["State"], h.get("Reason"), h.get("Description")


def test_a_registered_target_is_healthy_after_its_first_passed_check(elb, target):
    elb, ec2 = elb
    # Checks every 300 s (the longest interval): one check is all the target can get before it
    # must be healthy, although HealthyThresholdCount is 10.
    tg = _target_group(elb, ec2, HealthCheckIntervalSeconds=300, HealthyThresholdCount=10,
                       UnhealthyThresholdCount=2)
    t = target(200)
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": t.port}])
    changes = threading.Event()
    checker = hc.HealthChecker(on_change=changes.set, tick=0.05)
    checker.start()
    try:
        wait_until(lambda: _health(elb, tg, t.port) == IN_SERVICE, timeout=30, what="the target to be healthy",
                   step=0.01)
        assert t.checks == 1
        assert changes.is_set()
    finally:
        checker.stop()


def test_a_registered_target_that_never_passes_is_unhealthy_with_the_code(elb, target):
    elb, ec2 = elb
    tg = _target_group(elb, ec2, HealthCheckIntervalSeconds=5, HealthyThresholdCount=2,
                       UnhealthyThresholdCount=2)
    t = target(503)
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": t.port}])
    assert _health(elb, tg, t.port) == (INITIAL, "Elb.RegistrationInProgress", "Target registration is in progress")
    checker = hc.HealthChecker(tick=0.05)
    checker.start()
    try:
        wait_until(lambda: _health(elb, tg, t.port)[0] != INITIAL, timeout=60, what="a health decision", step=0.01)
        assert _health(elb, tg, t.port) == UNAVAILABLE
        assert t.checks == 2
    finally:
        checker.stop()


def test_the_published_health_is_the_emulators(elb):
    elb, ec2 = elb
    tg = _target_group(elb, ec2)
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": 1}])
    with emulator.LOCK:
        elbv2.set_target_health(tg, "127.0.0.1:1", *Health().reported)
    assert _health(elb, tg, 1) == CHECKING


@pytest.fixture
def attempts(monkeypatch):
    """hc.attempt, counted (the checker calls it for every check, early ones included)."""
    calls = []
    real = hc.attempt

    def counting(host, port, spec):
        result = real(host, port, spec)
        calls.append(result)
        return result

    monkeypatch.setattr(hc, "attempt", counting)
    return calls


@pytest.fixture
def not_listening(elb):
    """A target group checked every 300 s (only early checks can happen within a test) with one
    target registered on a port that is bound but not listening (refused until a server takes
    it), and a running checker: (elbv2 client, target group, port, the reserved socket)."""
    elb, ec2 = elb
    tg = _target_group(elb, ec2, HealthCheckIntervalSeconds=300, HealthyThresholdCount=5, UnhealthyThresholdCount=2)
    reserved = socket.socket()
    reserved.bind(("127.0.0.1", 0))
    port = reserved.getsockname()[1]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": port}])
    checker = hc.HealthChecker(tick=0.05)
    checker.start()
    try:
        yield elb, tg, port, reserved
    finally:
        checker.stop()
        reserved.close()


def test_a_new_target_is_in_service_once_its_server_answers_not_an_interval_later(attempts, target, not_listening):
    elb, tg, port, reserved = not_listening
    wait_until(lambda: len(attempts) >= 3, timeout=30, what="checks of a target not listening yet", step=0.01)
    assert _health(elb, tg, port) == CHECKING       # one failure counted (the scheduled check), two needed
    reserved.close()
    t = target(200, port)
    wait_until(lambda: _health(elb, tg, port) == IN_SERVICE, timeout=30, what="the target in service", step=0.01)
    assert t.checks == 1


def test_early_checks_of_a_target_that_never_listens_do_not_count(attempts, not_listening):
    elb, tg, port, _reserved = not_listening
    wait_until(lambda: len(attempts) >= 6, timeout=30, what="early checks", step=0.01)
    assert all(answered is False for _outcome, answered in attempts)
    assert _health(elb, tg, port) == CHECKING       # UnhealthyThresholdCount is 2: one scheduled check so far
