"""The local cloud's port sends each response's head together with its body (ship.localcloud.wire).

A real werkzeug server on a free port, its connections recorded send by send."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from ship.localcloud.server import ShipApp
from ship.localcloud.wire import WholeResponses, retried

BIG = 200 * 1024
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    if path == "/echo":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    else:
        body = b"x" * BIG if path == "/big" else b"<ok/>"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class _Recorded(socket.socket):
    sends: list[bytes]

    def sendall(self, data, *args):
        self.sends.append(bytes(data))
        return super().sendall(data, *args)


class _Recording:
    """First in a handler's bases: its connection records what each send carries."""

    sends: list[list[bytes]] = []

    def setup(self):
        recorded = _Recorded(fileno=self.request.detach())
        recorded.sends = []
        type(self).sends.append(recorded.sends)
        self.request = recorded
        super().setup()

    def finish(self):
        super().finish()
        self.request.shutdown(socket.SHUT_WR)
        self.request.close()


@pytest.fixture(params=["werkzeug", "whole"])
def server(request):
    bases = (_Recording, WSGIRequestHandler) if request.param == "werkzeug" else \
        (_Recording, WholeResponses, WSGIRequestHandler)
    handler = type("Handler", bases, {"sends": []})
    srv = make_server("127.0.0.1", 0, app, threaded=True, request_handler=handler)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield request.param, srv.server_port, handler.sends
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def exchange(port: int, head: bytes, body: bytes = b"", wait_for_continue: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head)
        if wait_for_continue:
            assert conn.recv(64).startswith(CONTINUE)
        conn.sendall(body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        while answer.startswith(CONTINUE):  # interim answers, as a client skips them
            answer = answer[len(CONTINUE):]
        return answer


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def head_end(send: bytes) -> int:
    return send.index(b"\r\n\r\n") + 4


# (request path, method, what the first send after the head carries in whole mode)
CASES = [
    ("/small", "GET", b"<ok/>"),
    ("/big", "GET", b"x"),          # the head leaves with the start of a body of any size
    ("/empty", "GET", b""),         # no body: the head alone, sent at once
    ("/small", "HEAD", b""),
]


@pytest.mark.parametrize(("path", "method", "first_body"), CASES)
def test_the_head_leaves_with_the_start_of_the_body(server, path, method, first_body):
    mode, port, sends = server
    answer = exchange(port, get(path, method))
    assert answer.startswith(b"HTTP/1.1 ")
    [connection] = sends
    first = connection[0]
    assert first[:head_end(first)] == answer[:head_end(answer)]
    if mode == "werkzeug":
        assert first == answer[:head_end(answer)]  # what the local cloud used to do: the head alone
    else:
        assert first[head_end(first):].startswith(first_body)
        assert len(first) > head_end(first) or first_body == b""
    assert b"".join(connection) == answer


def test_the_whole_small_answer_is_one_send(server):
    mode, port, sends = server
    answer = exchange(port, get("/small"))
    assert answer.endswith(b"\r\n\r\n<ok/>")
    assert len(sends[0]) == (2 if mode == "werkzeug" else 1)


def test_a_100_continue_leaves_before_the_body_is_sent(server):
    """The client waits for the interim answer before it sends the body: held back, it never came."""
    _mode, port, _sends = server
    body = b"a" * 1000
    head = (f"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    answer = exchange(port, head, body, wait_for_continue=True)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(body)


@pytest.mark.parametrize(("header", "attempt"), [
    (None, 1),
    ("attempt=1; max=25", 1),
    ("attempt=2; max=25", 2),
    (" attempt=3 ;max=5", 3),
    ("attempt=x; max=5", 1),
    ("max=5", 1),
])
def test_retried_reads_the_sdk_attempt(header, attempt):
    environ = {} if header is None else {"HTTP_AMZ_SDK_REQUEST": header}
    assert retried(environ) == attempt


def test_a_retried_request_is_logged(caplog):
    def moto(environ, start_response):
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    shipapp = ShipApp(moto, threading.Lock(), info={})
    environ = {"PATH_INFO": "/", "REQUEST_METHOD": "POST", "HTTP_AMZ_SDK_REQUEST": "attempt=2; max=25",
               "HTTP_AMZ_SDK_INVOCATION_ID": "inv-1",
               "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=test/20261129/us-east-1/ec2/aws4_request, x"}
    with caplog.at_level(logging.WARNING, logger="ship.localcloud"):
        assert shipapp(environ, lambda *a: None) == [b"ok"]
        environ["HTTP_AMZ_SDK_REQUEST"] = "attempt=1; max=25"
        shipapp(environ, lambda *a: None)
    [record] = caplog.records
    assert "ec2 /: attempt 2 of inv-1" in record.getMessage()
