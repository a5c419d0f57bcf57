"""Load balancers by name on the emulator's port: ``http://<name>.elb.localhost:<port>/``.

Names under ``.localhost`` resolve to loopback in browsers and curl (RFC 6761), so such
a URL can be written into configuration before the stack exists, the way LocalStack
serves ``<name>.elb.localhost.localstack.cloud``. The emulator's HTTP server asks
``hand_over`` about each new connection before reading from it: the request head is
looked at without being consumed (MSG_PEEK) and parsed with llhttp; when its Host names
a load balancer, the connection itself is given to that load balancer's listener, which
then serves it exactly as it serves its own port (WebSockets included).
"""

from __future__ import annotations

import select
import socket
import time
from socketserver import StreamRequestHandler
from typing import TYPE_CHECKING, Iterable, Protocol, TypeVar, cast

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

if TYPE_CHECKING:
    from ship.localcloud.alb.listener import Listener

__all__ = ["HOST_SUFFIX", "Directory", "hand_over", "handler_class", "host_name", "host_of", "served_port"]

HOST_SUFFIX = ".elb.localhost"  # http://<load balancer name>.elb.localhost:<emulator port>/
_PEEK_LIMIT = 16 * 1024
_PEEK_TIMEOUT = 5.0


def host_name(load_balancer_name: str) -> str:
    """The host name that reaches a load balancer on the emulator's port."""
    return load_balancer_name.lower() + HOST_SUFFIX


def served_port(listener_ports: Iterable[int]) -> int:
    """Which of a load balancer's listeners its host name reaches: the one on port 80, else
    the lowest (a URL without a port is a port-80 URL)."""
    return min(listener_ports, key=lambda port: (port != 80, port))


class Directory(Protocol):
    """Who serves a host name (``LoadBalancers``)."""

    def listener_for_host(self, host: str) -> Listener | None: ...


_Handler = TypeVar("_Handler", bound=StreamRequestHandler)


class _HostReader:
    __slots__ = ("host", "complete")

    def __init__(self) -> None:
        self.host: str | None = None
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.host is None and name.lower() == b"host":
            self.host = value.strip().decode("latin-1")

    def on_headers_complete(self) -> None:
        self.complete = True


def host_of(head: bytes) -> tuple[str | None, bool]:
    """(Host header or None, whether the head was complete) of the start of a request."""
    reader = _HostReader()
    try:
        HttpRequestParser(reader).feed_data(head)
    except HttpParserUpgrade:
        pass
    except HttpParserError:
        return None, True
    return reader.host, reader.complete


def _peek_host(sock: socket.socket) -> str | None:
    deadline = time.monotonic() + _PEEK_TIMEOUT
    seen = -1
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        readable, _, _ = select.select([sock], [], [], remaining)
        if not readable:
            return None
        data = sock.recv(_PEEK_LIMIT, socket.MSG_PEEK)
        if not data:
            return None
        host, complete = host_of(data)
        if host is not None or complete or len(data) >= _PEEK_LIMIT:
            return host
        if len(data) == seen:
            time.sleep(0.005)  # the same bytes again: wait for more to arrive
        seen = len(data)


def hand_over(sock: socket.socket, balancers: Directory) -> bool:
    """Give ``sock`` to a listener when its first request is for a load balancer by name."""
    try:
        host = _peek_host(sock)
    except OSError:
        return False
    listener = balancers.listener_for_host(host) if host else None
    if listener is None:
        return False
    listener.adopt(socket.socket(fileno=sock.detach()))
    return True


def handler_class(base: type[_Handler], balancers: Directory | None) -> type[_Handler]:
    """A request handler class for the emulator's server that hands load balancer
    connections over before ``base`` (moto's handler) reads anything."""
    base_handle = base.handle

    def handle(self: _Handler) -> None:
        if balancers is not None and hand_over(self.connection, balancers):
            return  # the listener owns the connection now; nothing is left to close here
        base_handle(self)

    # A subclass of a class given at run time: built with type(), which mypy types as a plain type.
    return cast("type[_Handler]", type("Handler", (base,), {"handle": handle, "__module__": __name__}))
