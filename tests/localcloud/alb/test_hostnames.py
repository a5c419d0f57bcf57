"""Load balancers by name on the emulator's port, through a real `serve` process:
http://<name>.elb.localhost:<emulator port>/ reaches the load balancer, everything else moto."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket

import pytest

from .support import Backend, read_response, wait_for
from .test_websocket import GUID, EchoServer, frame, read_frame, read_until

pytestmark = pytest.mark.timeout(120)


def _load_balancer(cloud, name: str, port: int):
    ec2, elb = cloud.client("ec2"), cloud.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.9.{i}.0/24", AvailabilityZone=f"us-east-1{z}")
               ["Subnet"]["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    lb = elb.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
                                 HealthCheckPath="/health")["TargetGroups"][0]["TargetGroupArn"]
    elb.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": "127.0.0.1", "Port": port}])
    wait_for(lambda: any(x["load_balancer_name"] == name for x in cloud.listeners()), timeout=10,
             what="the listener to be served")
    return tg


def _emulator_port(cloud) -> int:
    return int(cloud.endpoint.rsplit(":", 1)[1])


def test_a_load_balancer_answers_by_name_on_the_emulators_port(cloud):
    backend = Backend("by-name")
    try:
        _load_balancer(cloud, "named-lb", backend.port)
        port = _emulator_port(cloud)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            for i in range(3):  # keep-alive: the listener owns the whole connection
                s.sendall(b"GET /by-name/%d HTTP/1.1\r\nHost: named-lb.elb.localhost:%d\r\n\r\n" % (i, port))
                status, headers, body = read_response(s)
                assert status == 200 and json.loads(body)["path"] == f"/by-name/{i}"
                assert json.loads(body)["headers"]["x-forwarded-port"] == "80"
        assert [x["host_name"] for x in cloud.listeners()] == ["named-lb.elb.localhost"]
        # Everything else on that port is still the AWS API.
        assert cloud.client("elbv2").describe_load_balancers()["LoadBalancers"][0]["LoadBalancerName"] == "named-lb"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:  # an unknown name: moto's
            s.sendall(b"GET /_ship/health HTTP/1.1\r\nHost: unknown-lb.elb.localhost\r\nConnection: close\r\n\r\n")
            status, _h, body = read_response(s)
            assert status == 200 and json.loads(body)["service"] == "ship-localcloud"
    finally:
        backend.close()


def test_websocket_by_name(cloud):
    echo = EchoServer()
    try:
        _load_balancer(cloud, "ws-lb", echo.port)
        key = base64.b64encode(os.urandom(16))
        with socket.create_connection(("127.0.0.1", _emulator_port(cloud)), timeout=10) as s:
            s.sendall(b"GET /chat HTTP/1.1\r\nHost: ws-lb.elb.localhost\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
            head = read_until(s, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101")
            assert base64.b64encode(hashlib.sha1(key + GUID).digest()) in head
            assert read_frame(s) == (1, b"welcome")
            s.sendall(frame(1, b"ping", True))
            assert read_frame(s) == (1, b"ping")
            s.sendall(frame(8, b"", True))
            assert read_frame(s)[0] == 8
    finally:
        echo.close()
