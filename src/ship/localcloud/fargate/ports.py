"""Host ports for tasks: each task listens on its own free port of 127.0.0.1."""

from __future__ import annotations

import threading

from ship.net import free_port

TRIES = 50


class PortAllocator:
    """Free ports never handed to two live tasks at once."""

    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self._in_use: set[int] = set()
        self._mu = threading.Lock()

    def allocate(self) -> int:
        for _ in range(TRIES):
            port = free_port(self.host)
            with self._mu:
                if port not in self._in_use:
                    self._in_use.add(port)
                    return port
        raise RuntimeError(f"no free port on {self.host} after {TRIES} tries")

    def release(self, port: int) -> None:
        with self._mu:
            self._in_use.discard(port)
