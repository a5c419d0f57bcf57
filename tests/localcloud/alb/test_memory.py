"""A client that pipelines thousands of requests and never reads the answers must not make
the listener hold them: it stops reading that client instead. The listener runs in a process
of its own so that its resident memory can be read from /proc."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import threading
import time

import pytest

from helpers import wait_until

pytestmark = pytest.mark.timeout(120)

RESPONSE_BODY = 60 * 1024
PIPELINED = 5000
BOUND_MIB = 10  # the hand-framed proxy grew by 55 MiB for 1,000 of these

LISTENER = """
import sys
from ship.localcloud.alb.listener import Listener
from ship.localcloud.alb.targets import Target
lst = Listener()
lst.start()
lst.set_targets([Target("127.0.0.1", int(sys.argv[1]), "healthy")])
print(lst.port, flush=True)
sys.stdin.read()
lst.stop()
"""


class BigAnswers:
    """Answers every request head it reads with a 60 KiB body, keep-alive."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.answered = 0
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, c):
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % RESPONSE_BODY + b"x" * RESPONSE_BODY
        tail = b""
        with c:
            while True:
                try:
                    data = c.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                heads = (tail + data).count(b"\r\n\r\n")  # the listener sends bodiless GETs here
                tail = (tail + data)[-3:]
                for _ in range(heads):
                    try:
                        c.sendall(answer)
                    except OSError:
                        return
                    self.answered += 1

    def close(self):
        self.sock.close()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_pipelined_requests_never_read_keep_the_listener_within_a_bound():
    target = BigAnswers()
    proc = subprocess.Popen([sys.executable, "-c", LISTENER, str(target.port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=10) as warm:  # code paths loaded, pools made
            for _ in range(20):
                warm.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                got = 0
                while got < RESPONSE_BODY:
                    got += len(warm.recv(65536))
        before, warm_answers = rss_kib(proc.pid), target.answered
        flood = socket.socket()
        flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small: the kernel holds little for us
        flood.connect(("127.0.0.1", port))
        flood.setblocking(False)
        data = b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n" * PIPELINED
        sent = 0
        while sent < len(data):
            _, writable, _ = select.select([], [flood], [], 3)
            if not writable:
                break  # the listener stopped reading this client
            sent += flood.send(data[sent:sent + 65536])
        # Watch for a while: the hand-framed proxy forwarded them all and held every answer.
        peak, deadline = before, time.monotonic() + 5
        while time.monotonic() < deadline and target.answered - warm_answers < PIPELINED / 10:
            peak = max(peak, rss_kib(proc.pid))
            time.sleep(0.05)
        answered = target.answered - warm_answers
        assert answered < PIPELINED / 10, f"{answered} pipelined requests were forwarded for a client not reading"
        assert peak - before < BOUND_MIB * 1024, f"listener grew by {(peak - before) / 1024:.1f} MiB"
        flood.close()
        # The listener still serves others.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            total = wait_until(lambda: s.recv(65536), timeout=5, what="an answer", step=0.01)
            assert total.startswith(b"HTTP/1.1 200")
    finally:
        proc.stdin.close()
        proc.wait(30)
        target.close()
