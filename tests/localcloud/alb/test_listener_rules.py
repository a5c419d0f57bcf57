"""Listener rules served: fixed responses, redirects, weighted and sticky forwarding, rule
changes taking effect on the next request."""

from __future__ import annotations

import http.client
import json

import pytest

from ship.localcloud.alb import rules
from ship.localcloud.alb.routing import ListenerConfig
from ship.localcloud.alb.targets import TargetGroup

pytestmark = pytest.mark.timeout(60)

A, B = "arn:tg/a", "arn:tg/b"


def make_config(rule_list, groups, **kw) -> ListenerConfig:
    return ListenerConfig(rules=rules.compile_rules(rule_list), groups=groups, **kw)


def forward(*weights, sticky=0):
    config = {"TargetGroups": [{"TargetGroupArn": arn, "Weight": w} for arn, w in weights]}
    if sticky:
        config["TargetGroupStickinessConfig"] = {"Enabled": True, "DurationSeconds": sticky}
    return {"Type": "forward", "ForwardConfig": config}


def request(port, path="/", method="GET", headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        headers = {k.lower(): v for k, v in r.getheaders()}
        headers["set-cookie"] = r.msg.get_all("Set-Cookie") or []
        return r.status, headers, r.read()
    finally:
        c.close()


@pytest.fixture
def groups(backends):
    a1, a2, b1 = backends("a1"), backends("a2"), backends("b1")
    return {A: TargetGroup(A, (a1.target(), a2.target())), B: TargetGroup(B, (b1.target(),))}


def backend_of(body: bytes) -> str:
    return json.loads(body)["id"]


def test_fixed_response_and_redirect(listeners, groups):
    p = listeners(make_config([
        {"Priority": "1", "Conditions": [{"Field": "path-pattern", "Values": ["/teapot"]}],
         "Actions": [{"Type": "fixed-response", "FixedResponseConfig": {
             "StatusCode": "418", "ContentType": "application/json", "MessageBody": '{"tea": true}'}}]},
        {"Priority": "2", "Conditions": [{"Field": "path-pattern", "Values": ["/old/*"]}],
         "Actions": [{"Type": "redirect", "RedirectConfig": {"Path": "/new/#{path}", "StatusCode": "HTTP_301"}}]},
        {"Priority": "default", "Conditions": [], "Actions": [forward((A, 1))]},
    ], groups))
    status, headers, body = request(p.port, "/teapot")
    assert (status, headers["content-type"], body) == (418, "application/json", b'{"tea": true}')
    assert headers["server"] == "awselb/2.0"
    status, headers, _ = request(p.port, "/old/page?x=1")
    assert status == 301 and headers["location"] == f"http://127.0.0.1:{p.port}/new/old/page?x=1"
    assert request(p.port, "/other")[0] == 200


def test_weighted_forward_and_group_stickiness(listeners, groups):
    p = listeners(make_config([{"Priority": "default", "Conditions": [],
                                "Actions": [forward((A, 1), (B, 1), sticky=300)]}], groups))
    seen = {backend_of(request(p.port)[2]) for _ in range(60)}
    assert seen == {"a1", "a2", "b1"}  # 2^-59 odds of missing a group
    status, headers, body = request(p.port)
    cookie = [c.split(";")[0] for c in headers["set-cookie"] if c.startswith("AWSALBTG=")][0]
    group = backend_of(body)[0]
    stuck = {backend_of(request(p.port, headers={"Cookie": cookie})[2])[0] for _ in range(20)}
    assert stuck == {group}
    counts = p.request_counts()
    assert counts[A] + counts[B] == 60 + 1 + 20 and counts[A] > 0 and counts[B] > 0


def test_zero_weight_gets_nothing(listeners, groups):
    p = listeners(make_config([{"Priority": "default", "Conditions": [], "Actions": [forward((A, 0), (B, 1))]}],
                              groups))
    assert {backend_of(request(p.port)[2]) for _ in range(10)} == {"b1"}


def test_target_stickiness(listeners, groups):
    sticky = dict(groups)
    sticky[A] = TargetGroup(A, groups[A].targets, sticky_seconds=120)
    p = listeners(make_config([{"Priority": "default", "Conditions": [], "Actions": [forward((A, 1))]}], sticky))
    status, headers, body = request(p.port)
    cookie = [c.split(";")[0] for c in headers["set-cookie"] if c.startswith("AWSALB=")][0]
    first = backend_of(body)
    assert {backend_of(request(p.port, headers={"Cookie": cookie})[2]) for _ in range(10)} == {first}
    assert {backend_of(request(p.port)[2]) for _ in range(10)} == {"a1", "a2"}  # without it: round robin


def test_rule_changes_take_effect_on_the_next_request(listeners, groups):
    p = listeners(make_config([{"Priority": "default", "Conditions": [], "Actions": [forward((A, 1))]}], groups))
    c = http.client.HTTPConnection("127.0.0.1", p.port, timeout=10)
    try:
        c.request("GET", "/x")
        assert backend_of(c.getresponse().read()).startswith("a")
        p.configure(make_config([
            {"Priority": "5", "Conditions": [{"Field": "path-pattern", "Values": ["/x"]}],
             "Actions": [forward((B, 1))]},
            {"Priority": "default", "Conditions": [], "Actions": [forward((A, 1))]}], groups))
        c.request("GET", "/x")  # the same client connection
        assert backend_of(c.getresponse().read()) == "b1"
    finally:
        c.close()


def test_a_group_without_targets_is_503(listeners, groups):
    empty = dict(groups)
    empty[B] = TargetGroup(B, ())
    p = listeners(make_config([
        {"Priority": "1", "Conditions": [{"Field": "path-pattern", "Values": ["/b"]}], "Actions": [forward((B, 1))]},
        {"Priority": "default", "Conditions": [], "Actions": [forward((A, 1))]}], empty))
    assert request(p.port, "/b")[0] == 503
    assert request(p.port, "/a")[0] == 200
    assert p.request_counts() == {A: 1}  # RequestCount: only requests for which a target was chosen
