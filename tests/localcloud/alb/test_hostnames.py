"""Load balancers by name on the emulator's port, through a real `serve` process:
http://<name>.elb.localhost:<emulator port>/ reaches the load balancer, everything else moto."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import wait_until
from ship.localcloud import control
from ship.localcloud.alb import hostnames

from .support import Backend, read_response
from .test_websocket import GUID, EchoServer, frame, read_frame, read_until

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]
INV = str(Path(sys.executable).parent / "inv")


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
    wait_until(lambda: any(x["load_balancer_name"] == name for x in cloud.listeners()), timeout=10,
               what="the listener to be served", step=0.01)
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


def test_local_status_prints_the_host_named_url_on_the_listener_it_reaches(cloud, tmp_path):
    backend = Backend("status")
    try:
        _load_balancer(cloud, "status-lb", backend.port)
        elb = cloud.client("elbv2")
        [lb] = elb.describe_load_balancers(Names=["status-lb"])["LoadBalancers"]
        elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=8081,
                            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                                "StatusCode": "204", "ContentType": "text/plain"}}])
        wait_until(lambda: len(cloud.listeners()) == 2, timeout=10, what="both listeners to be served", step=0.01)
        port = _emulator_port(cloud)
        env = dict(os.environ, SHIP_LOCAL_PORT=str(port), SHIP_STATE_DIR=str(tmp_path / "ship"))
        result = subprocess.run([INV, "local.status"], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        rows = {x["port"]: x for x in cloud.listeners()}
        lines = result.stdout.splitlines()
        url = f"http://status-lb.elb.localhost:{port}/"
        assert f"  status-lb:80 -> {rows[80]['url']} and {url}" in lines
        assert f"  status-lb:8081 -> {rows[8081]['url']}" in lines  # the host name reaches port 80 only
        # The URL printed is the load balancer's (sent to 127.0.0.1 with its Host header).
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /printed HTTP/1.1\r\nHost: status-lb.elb.localhost:%d\r\nConnection: close\r\n\r\n" % port)
            status, _headers, body = read_response(s)
        assert status == 200 and json.loads(body)["id"] == "status"
    finally:
        backend.close()


@pytest.mark.parametrize("ports, served", [([80], 80), ([8080, 80, 443], 80), ([8443, 8080], 8080), ([443], 443)])
def test_a_host_name_reaches_the_port_80_listener_else_the_lowest(ports, served):
    assert hostnames.served_port(ports) == served


def test_status_lines_put_each_host_named_url_on_its_listener():
    table = [
        {"load_balancer_name": "a", "port": 8443, "url": "http://127.0.0.1:1", "host_name": "a.elb.localhost"},
        {"load_balancer_name": "a", "port": 8080, "url": "http://127.0.0.1:2", "host_name": "a.elb.localhost"},
        {"load_balancer_name": "B", "port": 80, "url": "http://127.0.0.1:3", "host_name": "b.elb.localhost"},
        {"load_balancer_name": "old", "port": 80, "url": "http://127.0.0.1:4"},  # a server without host names
    ]
    assert control.listener_lines(table, 4608) == [
        "a:8443 -> http://127.0.0.1:1",
        "a:8080 -> http://127.0.0.1:2 and http://a.elb.localhost:4608/",
        "B:80 -> http://127.0.0.1:3 and http://b.elb.localhost:4608/",
        "old:80 -> http://127.0.0.1:4",
    ]
