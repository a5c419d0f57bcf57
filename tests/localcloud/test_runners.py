"""The runners a local cloud starts tasks with (runtime/runners.py): the process runner at
once, the container runner when the engine lookup, on a thread of its own, has found one."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from ship.localcloud.runtime.runners import Runners

PROCESS = SimpleNamespace(kind="process")
CONTAINER = SimpleNamespace(kind="container")


class _Runner:
    def __init__(self, kind: str):
        self.kind = kind

    def can_run(self, image) -> bool:
        return image.kind == self.kind

    def __repr__(self) -> str:
        return f"<{self.kind} runner>"


def test_without_a_lookup_the_runners_are_known_at_once():
    process = _Runner("process")
    seen = []
    runners = Runners([process], on_known=lambda r: seen.append(list(r)))
    assert runners.known and seen == [[process]]
    assert runners.find(PROCESS, timeout=0) is process
    assert runners.find(CONTAINER, timeout=0) is None


def test_a_process_image_does_not_wait_for_the_engine_lookup():
    process, container = _Runner("process"), _Runner("container")
    release = threading.Event()
    runners = Runners([process], lookup=lambda: release.wait(30) and container)
    try:
        assert not runners.known
        assert runners.find(PROCESS, timeout=30) is process       # at once: the lookup is still held
        assert not runners.known
        assert list(runners) == [process]
    finally:
        release.set()
    assert runners.wait(30)
    assert list(runners) == [process, container]


def test_a_container_image_waits_for_the_lookup_and_gets_what_it_found():
    process, container = _Runner("process"), _Runner("container")
    started, release = threading.Event(), threading.Event()
    seen = []

    def lookup():
        started.set()
        release.wait(30)
        return container

    runners = Runners([process], lookup=lookup, on_known=lambda r: seen.append(list(r)))
    found = []
    waiter = threading.Thread(target=lambda: found.append(runners.find(CONTAINER, timeout=30)))
    waiter.start()
    assert started.wait(30)
    assert found == [] and seen == []
    release.set()
    waiter.join(30)
    assert found == [container]
    assert seen == [[process, container]]       # reported once, with every runner


def test_no_engine_leaves_the_process_runner_alone():
    process = _Runner("process")
    runners = Runners([process], lookup=lambda: None)
    assert runners.find(CONTAINER, timeout=30) is None and runners.known
    assert list(runners) == [process]


def test_a_lookup_that_fails_is_logged_and_leaves_the_process_runner(caplog):
    process = _Runner("process")

    def broken():
        raise RuntimeError("the engine's socket is gone")

    runners = Runners([process], lookup=broken)
    assert runners.wait(30)
    assert list(runners) == [process]
    assert runners.find(PROCESS, timeout=0) is process
    assert "looking for a container engine failed" in caplog.text


# ---------------------------------------------------------------- the data plane's runners


class _Engine:
    """A stand-in container engine: the containers it holds, and what was removed."""

    name = "podman"

    def __init__(self, containers=()):
        self.held = list(containers)
        self.removed = []

    def containers(self, label=""):
        # every container here belongs to the state directory, none to the instance "new"
        return [] if label.endswith("=new") else list(self.held)

    def remove_container(self, name):
        self.removed.append(name)
        self.held = [c for c in self.held if c != name]


def _plane(tmp_path, monkeypatch, lookup):
    from ship.localcloud.fargate.dataplane import DataPlane
    from ship.localcloud.runtime import container_runner

    monkeypatch.setattr(container_runner, "container_runner", lookup)
    return DataPlane(tmp_path, endpoint="http://127.0.0.1:1", instance="new")


def test_a_fresh_state_directory_looks_for_the_engine_after_the_data_plane_is_made(tmp_path, monkeypatch):
    release = threading.Event()
    container = _Runner("container")
    plane = _plane(tmp_path, monkeypatch, lambda *a, **k: release.wait(30) and container)
    try:
        assert not plane.runners.known        # the local cloud goes on starting meanwhile
        assert [r.kind for r in plane.runners] == ["process"]
    finally:
        release.set()
    assert plane.runners.wait(30) and list(plane.runners)[-1] is container


def test_containers_that_may_be_left_are_removed_before_the_data_plane_is_made(tmp_path, monkeypatch):
    from ship.localcloud.runtime.runners import CONTAINERS_MARK, may_have_containers

    (tmp_path / CONTAINERS_MARK).touch()     # a local cloud that ran containers here died
    assert may_have_containers(tmp_path)
    calls = []
    plane = _plane(tmp_path, monkeypatch, lambda *a, **k: calls.append(threading.current_thread()) or None)
    assert plane.runners.known and calls == [threading.main_thread()]


def test_the_mark_is_written_before_a_container_exists_and_gone_once_leftovers_are(tmp_path, monkeypatch):
    from ship import container_cli
    from ship.localcloud.runtime import container_runner as cr
    from ship.localcloud.runtime.runners import may_have_containers

    engine = _Engine(containers=["ship-old"])
    monkeypatch.setattr(container_cli, "detect", lambda: engine)
    runner = cr.ContainerRunner(engine, "old", tmp_path)
    runner._mark()                            # what start() does first
    assert may_have_containers(tmp_path)
    assert cr.container_runner(tmp_path, "new") is not None
    assert engine.removed == ["ship-old"] and not may_have_containers(tmp_path)
