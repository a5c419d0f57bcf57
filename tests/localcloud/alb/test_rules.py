"""Listener rules and target selection: pure decisions, table-driven."""

from __future__ import annotations

import pytest

from ship.localcloud.alb import rules, targets
from ship.localcloud.alb.framing import NO_BODY, RequestHead
from ship.localcloud.alb.rewrite import inspect
from ship.localcloud.alb.targets import Target

TG_A, TG_B = "arn:tg/a", "arn:tg/b"


def request(method=b"GET", target=b"/", headers=((b"Host", b"example.com"),)):
    return inspect(RequestHead(method, target, "1.1", list(headers), NO_BODY, -1, True, False))


def rule(priority, conditions, action):
    return {"Priority": priority, "Conditions": conditions, "Actions": [action], "RuleArn": f"rule/{priority}"}


FORWARD_A = {"Type": "forward", "TargetGroupArn": TG_A}
FORWARD_B = {"Type": "forward", "TargetGroupArn": TG_B}


def path(*values):
    return {"Field": "path-pattern", "PathPatternConfig": {"Values": list(values)}}


@pytest.mark.parametrize("condition,req,matches", [
    (path("/api/*"), request(target=b"/api/v1?x=1"), True),
    (path("/api/*"), request(target=b"/API/v1"), False),                       # paths are case-sensitive
    (path("/img/?.png"), request(target=b"/img/a.png"), True),
    (path("/img/?.png"), request(target=b"/img/ab.png"), False),
    (path("/a", "/b"), request(target=b"/b"), True),                          # any value may match
    ({"Field": "path-pattern", "Values": ["/legacy"]}, request(target=b"/legacy"), True),
    ({"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}},
     request(headers=[(b"Host", b"API.Example.com:8080")]), True),           # case-insensitive, port ignored
    ({"Field": "host-header", "Values": ["example.com"]}, request(headers=[(b"Host", b"other.com")]), False),
    ({"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "User-Agent", "Values": ["*Mobile*"]}},
     request(headers=[(b"Host", b"x"), (b"user-agent", b"Foo mobile Bar")]), True),
    ({"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["blue"]}},
     request(headers=[(b"Host", b"x")]), False),
    ({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST", "PUT"]}},
     request(method=b"PUT"), True),
    ({"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}}, request(), False),
    ({"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "version", "Value": "v2*"}]}},
     request(target=b"/?a=1&Version=V2beta"), True),
    ({"Field": "query-string", "QueryStringConfig": {"Values": [{"Value": "flag"}]}},
     request(target=b"/?flag"), True),                                        # a value without a key
    ({"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "k", "Value": "v"}]}},
     request(target=b"/?k=w"), False),
    ({"Field": "source-ip", "SourceIpConfig": {"Values": ["127.0.0.0/8"]}}, request(), True),
    ({"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}, request(), False),
])
def test_conditions(condition, req, matches):
    compiled = rules.compile_rules([rule("1", [condition], FORWARD_B), rule("default", [], FORWARD_A)])
    assert rules.match(compiled, req, "127.0.0.1") == rules.Forward(((TG_B if matches else TG_A, 1),))


def test_lowest_priority_wins_and_all_conditions_must_match():
    compiled = rules.compile_rules([
        rule("default", [], FORWARD_A),
        rule("20", [path("/x*")], {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "418"}}),
        rule("10", [path("/x*"), {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}}],
             FORWARD_B),
    ])
    assert [r.priority for r in compiled] == [10, 20, float("inf")]
    assert rules.match(compiled, request(b"POST", b"/x"), "127.0.0.1").groups == ((TG_B, 1),)
    assert rules.match(compiled, request(b"GET", b"/x"), "127.0.0.1") == rules.FixedResponse(418, "text/plain", "")
    assert rules.match(compiled, request(b"GET", b"/y"), "127.0.0.1").groups == ((TG_A, 1),)


def test_actions_from_api_shapes():
    weighted = {"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": TG_A, "Weight": 3}, {"TargetGroupArn": TG_B, "Weight": 1}],
        "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60}}}
    assert rules.compile_action([weighted]) == rules.Forward(((TG_A, 3), (TG_B, 1)), 60)
    fixed = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "ContentType": "application/json",
                                                               "MessageBody": "{}"}}
    assert rules.compile_action([fixed]) == rules.FixedResponse(503, "application/json", "{}")
    redirect = {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_302"}}
    assert rules.compile_action([redirect]) == rules.Redirect(302, "HTTPS", "#{host}", "443", "/#{path}", "#{query}")
    # Authentication actions come first (Order); the terminal action is what is emulated.
    auth = {"Type": "authenticate-oidc", "Order": 1, "AuthenticateOidcConfig": {}}
    assert rules.compile_action([dict(FORWARD_A, Order=2), auth]) == rules.Forward(((TG_A, 1),))


@pytest.mark.parametrize("config,target,host,location", [
    ({}, b"/a/b?x=1", b"h.example.com", b"http://h.example.com/a/b?x=1"),
    ({"Protocol": "HTTPS", "Port": "443"}, b"/a?x=1", b"h.example.com", b"https://h.example.com/a?x=1"),
    ({"Protocol": "HTTPS", "Port": "8443"}, b"/", b"h", b"https://h:8443/"),
    ({"Host": "new.example.com", "Path": "/v2/#{path}", "Query": "from=#{host}"}, b"/old?q", b"h",
     b"http://new.example.com/v2/old?from=h"),
    ({"Path": "/landing", "Query": ""}, b"/x?y", b"127.0.0.1:40123", b"http://127.0.0.1:40123/landing"),
])
def test_redirect_location(config, target, host, location):
    action = rules.compile_action([{"Type": "redirect", "RedirectConfig": config}])
    req = request(target=target, headers=[(b"Host", host)])
    assert rules.redirect_location(action, req, "HTTP", 80) == location


def t(port, state="healthy"):
    return Target("127.0.0.1", port, state)


@pytest.mark.parametrize("members,routable", [
    ([t(1), t(2, "unhealthy"), t(3, "initial"), t(4, "draining")], [1]),
    ([t(1, "unhealthy"), t(2, "initial"), t(3, "draining"), t(4, "unused")], [1, 2]),  # fail open
    ([t(1, "unavailable"), t(2, "unhealthy")], [1]),  # health checks disabled: routed like healthy
    ([t(1, "draining"), t(2, "unused")], []),
    ([], []),
])
def test_routable_targets(members, routable):
    assert [x.port for x in targets.TargetGroup("g", tuple(members)).routable] == routable


def test_round_robin_and_least_outstanding():
    group = (t(1), t(2), t(3))
    assert [targets.pick(group, turn, {}, False).port for turn in range(6)] == [1, 2, 3, 1, 2, 3]
    busy = {("127.0.0.1", 1): 2, ("127.0.0.1", 2): 1}
    assert targets.pick(group, 0, busy, True).port == 3
    assert targets.pick(group, 0, {("127.0.0.1", 1): 1, ("127.0.0.1", 2): 1, ("127.0.0.1", 3): 1}, True).port == 1
    assert targets.pick(group, 0, {}, False, avoid={("127.0.0.1", 1)}).port == 2
    assert targets.pick((t(1),), 0, {}, False, avoid={("127.0.0.1", 1)}) is None


@pytest.mark.parametrize("groups,r,chosen", [
    (((TG_A, 3), (TG_B, 1)), 0.0, TG_A),
    (((TG_A, 3), (TG_B, 1)), 0.74, TG_A),
    (((TG_A, 3), (TG_B, 1)), 0.75, TG_B),
    (((TG_A, 0), (TG_B, 1)), 0.0, TG_B),
    (((TG_A, 0), (TG_B, 0)), 0.5, None),
])
def test_weighted_group_choice(groups, r, chosen):
    assert targets.choose_group(groups, r) == chosen


def test_cookies():
    assert targets.read_cookie([b"a=1; AWSALB=abc; AWSALBTG=def"], b"AWSALB") == "abc"
    assert targets.read_cookie([b"AWSALBCORS=x"], b"AWSALB") is None
    line = targets.sticky_cookie("AWSALB", "v", 60)
    assert line.startswith(b"Set-Cookie: AWSALB=v; Max-Age=60; Path=/") and b"AWSALBCORS=v" in line
    assert targets.token(b"k", "a", "b") == targets.token(b"k", "a", "b") != targets.token(b"j", "a", "b")
