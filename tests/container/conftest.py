"""Fixtures for the container tests: the engine, a build context with
the locked wheels, the runtime and test images, and cleanup by label.

Skipped only when no container engine answers (the reason says why). On a
machine without a registry the images are built from the local base image
that .ci/podman-setup.sh makes; elsewhere from the Dockerfile's default.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid

import pytest
from container_support import APP_VERSION, LABEL, METRICS, ROOT, SESSION

from ship import container_cli
from ship import wheelhouse

# What the build context must not carry (mirrors .dockerignore; keeps the copy small).
IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", ".nox", ".tox", ".ship", "build", "dist", "__pycache__",
                                "*.pyc", "*.egg-info", ".pytest_cache", "terraform", "node_modules", "benchmarks")


def pytest_terminal_summary(terminalreporter):
    if METRICS:
        terminalreporter.section("container images")
        for key, value in METRICS.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture(scope="session")
def engine():
    found = container_cli.detect()
    if found is None:
        pytest.skip(container_cli.unavailable_reason())
    yield found
    leftovers = found.remove_containers(LABEL)
    if leftovers:
        print(f"removed {leftovers} leftover test container(s)")


@pytest.fixture(scope="session")
def build_args(engine):
    """BASE_IMAGE: $SHIP_BASE_IMAGE, else the local base image when present, else the Dockerfile's."""
    args = {"APP_VERSION": APP_VERSION}
    base = os.environ.get("SHIP_BASE_IMAGE")
    if not base and engine.image_exists(container_cli.LOCAL_BASE_IMAGE):
        base = container_cli.LOCAL_BASE_IMAGE
    if base:
        args["BASE_IMAGE"] = base
    return args


@pytest.fixture(scope="session")
def context(tmp_path_factory):
    """A copy of the build context with build/wheelhouse, build/wheelhouse-test and build/dist, as `inv build`
    makes them (third-party wheels come from the shared cache: fetched once per uv.lock)."""
    ctx = tmp_path_factory.mktemp("context") / "src"
    shutil.copytree(ROOT, ctx, ignore=IGNORE)
    started = time.monotonic()
    wheelhouse.for_dockerfile(ctx, epoch=1700000000, test=True)
    METRICS["wheelhouses (cache + uv build)"] = f"{time.monotonic() - started:.1f}s"
    return ctx


def _build(engine, context, build_args, target):
    tag = f"hello-ship-ctest-{target}:{SESSION}"
    started = time.monotonic()
    image_id = engine.build(context, tag, target=target, build_args=build_args)
    first = time.monotonic() - started
    started = time.monotonic()
    again = engine.build(context, tag, target=target, build_args=build_args)
    cached = time.monotonic() - started
    assert again == image_id, "a rebuild of an unchanged context must hit the cache"
    METRICS[f"{target} image"] = (f"{engine.image_size(tag) / 1e6:.0f} MB; build {first:.1f}s, "
                                  f"rebuild (cached) {cached:.1f}s; {engine.name}, base "
                                  f"{build_args.get('BASE_IMAGE', 'Dockerfile default')}")
    return tag


@pytest.fixture(scope="session")
def runtime_image(engine, context, build_args):
    tag = _build(engine, context, build_args, "runtime")
    yield tag
    engine.rm_image(tag, force=True)


@pytest.fixture(scope="session")
def test_image(engine, context, build_args):
    tag = _build(engine, context, build_args, "test")
    yield tag
    engine.rm_image(tag, force=True)


@pytest.fixture
def container_name(engine):
    """A unique container name, force-removed after the test whatever happened."""
    name = f"ship-ctest-{uuid.uuid4().hex[:10]}"
    yield name
    engine.remove_container(name)
