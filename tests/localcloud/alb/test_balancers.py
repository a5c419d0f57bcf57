"""The ELBv2 side: rules and attributes read from the emulator (moto in-process), the state
kept beside moto, and listeners following the API without a restart."""

from __future__ import annotations

import http.client
import json
import pickle
import time

import boto3
import pytest
from moto import mock_aws

from ship.localcloud import emulator
from ship.localcloud.alb.balancers import LoadBalancers, config_for
from ship.localcloud.emulator import elbv2

from .support import Backend


@pytest.fixture
def aws(monkeypatch):
    elbv2.install()
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield boto3.client("elbv2", region_name="us-east-1"), boto3.client("ec2", region_name="us-east-1")


def _lb(elb, ec2, name="web"):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
               ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    lb = elb.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tgs = [elb.create_target_group(Name=f"{name}-{x}", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip")
           ["TargetGroups"][0]["TargetGroupArn"] for x in ("a", "b")]
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": tgs[0]}])["Listeners"][0]["ListenerArn"]
    return lb, tgs, listener


def test_listener_specs_carry_rules_and_attributes(aws):
    elb, ec2 = aws
    lb, (a, b), listener = _lb(elb, ec2)
    elb.create_rule(ListenerArn=listener, Priority=10, Conditions=[
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/b/*"]}}], Actions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": b, "Weight": 1}]}}])
    elb.modify_load_balancer_attributes(LoadBalancerArn=lb, Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "7"},
        {"Key": "routing.http.desync_mitigation_mode", "Value": "strictest"},
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}])
    elb.modify_target_group_attributes(TargetGroupArn=b, Attributes=[
        {"Key": "stickiness.enabled", "Value": "true"}, {"Key": "stickiness.type", "Value": "lb_cookie"},
        {"Key": "stickiness.lb_cookie.duration_seconds", "Value": "600"},
        {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"}])
    with emulator.LOCK:
        [spec] = elbv2.listeners()
        groups = {arn: (elbv2.target_group(arn), elbv2.target_states(arn)) for arn in spec.target_group_arns}
    assert [r["Priority"] for r in spec.rules] == ["10", "default"]
    assert spec.target_group_arn == a and spec.target_group_arns == sorted([a, b])
    cfg = config_for(spec, groups)
    assert (cfg.idle_timeout, cfg.desync_mode, cfg.drop_invalid_header_fields) == (7.0, "strictest", True)
    assert cfg.groups[b].algorithm == "least_outstanding_requests" and cfg.groups[b].sticky_seconds == 600
    assert cfg.groups[a].sticky_seconds == 0 and cfg.default_host.startswith("web-")
    assert [r.priority for r in cfg.rules] == [10, float("inf")]


def test_the_store_beside_moto_pickles_with_wall_clock_deadlines(aws):
    elb, ec2 = aws
    _lb_arn, (a, _b), _listener = _lb(elb, ec2)
    elb.modify_target_group_attributes(TargetGroupArn=a, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "120"}])
    with emulator.LOCK:
        elbv2.register_target(a, "127.0.0.1", 1001)
        elbv2.register_target(a, "127.0.0.1", 1002)
        elbv2.set_target_health(a, "127.0.0.1:1001", "healthy", None, None)
        assert elbv2.deregister_target(a, "127.0.0.1", 1002) == 120
    restored = pickle.loads(pickle.dumps(elbv2.STORE))
    assert restored.health[a]["127.0.0.1:1001"] == elbv2.TargetHealth("healthy")
    until = restored.draining[a]["127.0.0.1:1002"].until
    assert time.time() < until <= time.time() + 120  # epoch seconds, not a monotonic clock
    assert not any(k.startswith("_ship") for tg in _target_groups() for k in vars(tg))
    states = {(p, s) for _h, p, s in elbv2.target_states(a)}
    assert states == {(1001, "healthy"), (1002, "draining")}


def _target_groups():
    from moto.elbv2.models import elbv2_backends

    return [tg for per_region in elbv2_backends.values() for b in per_region.values()
            for tg in b.target_groups.values()]


def _get(port, path="/", host=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Host": host} if host else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_listeners_follow_rules_changed_through_the_api(aws, tmp_path):
    elb, ec2 = aws
    _lb_arn, (a, b), listener = _lb(elb, ec2)
    backends = {"a": Backend("a"), "b": Backend("b")}
    lbs = LoadBalancers(tmp_path)
    try:
        with emulator.LOCK:
            for name, arn in (("a", a), ("b", b)):
                elbv2.register_target(arn, "127.0.0.1", backends[name].port)
                elbv2.set_target_health(arn, f"127.0.0.1:{backends[name].port}", "healthy", None, None)
        lbs.sync()
        [row] = lbs.listener_table()
        port = row["local_port"]
        assert row["host_name"] == "web.elb.localhost"
        assert json.loads(_get(port, "/b/x")[1])["id"] == "a"
        rule = elb.create_rule(ListenerArn=listener, Priority=5, Conditions=[
            {"Field": "path-pattern", "Values": ["/b/*"]}], Actions=[{"Type": "forward", "TargetGroupArn": b}])
        lbs.sync()
        assert json.loads(_get(port, "/b/x")[1])["id"] == "b"
        elb.modify_rule(RuleArn=rule["Rules"][0]["RuleArn"], Actions=[{"Type": "fixed-response",
                        "FixedResponseConfig": {"StatusCode": "404", "MessageBody": "gone"}}])
        lbs.sync()
        assert _get(port, "/b/x") == (404, b"gone")
        assert lbs.listener_for_host("WEB.elb.localhost:4566") is not None
        assert lbs.listener_for_host("other.elb.localhost") is None and lbs.listener_for_host("web") is None
        counts = lbs.request_counts()
        assert counts == {a: 1, b: 1}
        elb.delete_listener(ListenerArn=listener)
        lbs.sync()
        assert lbs.listener_table() == []
        assert lbs.request_counts() == counts  # cumulative: a closed listener's requests still count
    finally:
        lbs.stop()
        for bk in backends.values():
            bk.close()
