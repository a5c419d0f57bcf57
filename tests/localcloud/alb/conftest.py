"""Fixtures for the listener tests; everything started is stopped, also when a test fails."""

from __future__ import annotations

import os

import pytest

from ship.localcloud.alb.listener import Listener
from ship.localcloud.alb.routing import ListenerConfig

from .support import Backend, BadBackend, RecordingTarget, config


def _factory(cls):
    made = []

    def make(*args, **kw):
        obj = cls(*args, **kw)
        made.append(obj)
        return obj

    return made, make


@pytest.fixture
def backends():
    made, make = _factory(Backend)
    yield make
    for b in made:
        b.close()


@pytest.fixture
def bad_backends():
    made, make = _factory(BadBackend)
    yield make
    for b in made:
        b.close()


@pytest.fixture
def recording():
    made, make = _factory(RecordingTarget)
    yield make
    for t in made:
        t.close()


@pytest.fixture
def listeners():
    made = []

    def make(cfg: ListenerConfig | None = None, **kw) -> Listener:
        # SHIP_ALB_TEST_PARSER=h11 runs a suite on the h11 readers (the benchmark's other parser).
        parser = kw.pop("parser", os.environ.get("SHIP_ALB_TEST_PARSER", "httptools"))
        lst = Listener(cfg or config(**kw), parser=parser)
        made.append(lst)
        lst.start()
        return lst

    yield make
    for lst in made:
        lst.stop()


@pytest.fixture
def two(backends, listeners):
    a, b = backends("a"), backends("b")
    p = listeners()
    p.set_targets([a.target(), b.target()])
    return p, a, b
