"""Replicas are reachable on 127.0.0.1 only, in both runtimes: read from the kernel's table of
listening sockets and tried from the machine's own network address."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("deployed")]


def _address(hex_addr: str) -> ipaddress._BaseAddress:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return ipaddress.ip_address(raw[::-1])
    # IPv6 in /proc is four little-endian 32-bit words
    return ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))


def listening(port: int) -> list[ipaddress._BaseAddress]:
    """Local addresses of the sockets in LISTEN state on ``port`` (IPv4 and IPv6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            addr, _, hex_port = cols[1].rpartition(":")
            if cols[3] == "0A" and int(hex_port, 16) == port:
                found.append(_address(addr))
    return found


def own_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only selects the route
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


def replica_ports(stack) -> list[int]:
    ecs, elbv2 = stack.client("ecs"), stack.client("elbv2")
    svc = ecs.describe_services(cluster="hello-local", services=["hello-local"])["services"][0]
    tg = svc["loadBalancers"][0]["targetGroupArn"]
    return [h["Target"]["Port"] for h in elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]]


def test_replicas_listen_on_loopback_only(stack):
    ports = replica_ports(stack)
    assert len(ports) == 2
    for port in ports:
        addresses = listening(port)
        if stack.runtime == "process":
            assert addresses, f"nothing listens on {port}"
        # a container's port is published by the engine: a host socket (conmon) or NAT rules only
        assert all(a.is_loopback for a in addresses), f"port {port} listens on {addresses}"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    external = own_address()
    if external:
        for port in ports:
            with socket.socket() as s:
                s.settimeout(3)
                assert s.connect_ex((external, port)) != 0, f"replica port {port} answers on {external}"


def test_containers_publish_on_loopback_only(stack):
    if stack.runtime != "container":
        pytest.skip("container runtime only")
    from ship import container_cli

    eng = container_cli.require()
    ecs = stack.client("ecs")
    arns = ecs.list_tasks(cluster="hello-local", serviceName="hello-local")["taskArns"]
    assert len(arns) == 2
    for arn in arns:
        published = eng.call("port", f"ship-{arn.rsplit('/', 1)[-1]}").stdout.split()
        hosts = [p.rsplit(":", 1)[0] for p in published if ":" in p]
        assert hosts and set(hosts) == {"127.0.0.1"}, published
