"""The images the Dockerfile makes: tests and lint inside the test image; the
runtime image serves /health as a non-root user and stops cleanly on SIGTERM."""

from __future__ import annotations

import time

import pytest
from container_support import APP_VERSION, LABEL_KEY, METRICS, ROOT, SESSION, wait_for
from ship.net import free_port

from ship import wheelhouse
from ship.container_cli import BUILD_LABEL, normalize_id
from ship.errors import ShipError

pytestmark = pytest.mark.container


def test_pytest_passes_inside_the_test_image(engine, test_image):
    proc = engine.run(test_image, remove=True, entrypoint="pytest", labels={LABEL_KEY: SESSION},
                      check=False, timeout=900)
    assert proc.returncode == 0, f"pytest in {test_image}:\n{proc.stdout[-3000:]}{proc.stderr[-1000:]}"


def test_flake8_passes_inside_the_test_image(engine, test_image):
    proc = engine.run(test_image, remove=True, entrypoint="flake8", check=False)
    assert proc.returncode == 0, f"flake8 in {test_image}:\n{proc.stdout[-3000:]}{proc.stderr[-1000:]}"


def test_runtime_image_config(engine, runtime_image):
    config = engine.image_inspect(runtime_image)["Config"]
    assert config["User"] == "10001:10001"
    assert config["WorkingDir"] == "/app"
    assert config["Cmd"] == ["gunicorn", "--config", "gunicorn.conf.py", "hello.wsgi:app"]
    assert not config.get("Entrypoint")
    assert "5000/tcp" in config["ExposedPorts"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["APP_VERSION"] == APP_VERSION
    assert env["PATH"].startswith("/opt/venv/bin:")


def test_the_same_tree_built_for_another_version_carries_that_version(engine, context, build_args, runtime_image):
    """Two commits with one tree (an empty commit) build two images, each with its own version: the
    layer cache must not hand the second the first one's APP_VERSION."""
    other = f"{runtime_image}-other"
    engine.build(context, other, target="runtime", build_args=dict(build_args, APP_VERSION=APP_VERSION + "-other"))
    try:
        config = engine.image_inspect(other)["Config"]
        env = dict(item.split("=", 1) for item in config["Env"])
        assert env["APP_VERSION"] == APP_VERSION + "-other"
        assert config["Labels"]["org.opencontainers.image.version"] == APP_VERSION + "-other"
        first = engine.image_inspect(runtime_image)["Config"]
        assert dict(item.split("=", 1) for item in first["Env"])["APP_VERSION"] == APP_VERSION
    finally:
        engine.rm_image(other, force=True)


def test_runtime_image_holds_only_the_app(engine, runtime_image):
    listing = engine.run(runtime_image, ["-c", "import os; print(sorted(os.listdir('/app')));"
                                               "print(os.path.exists('/opt/venv/bin/pip'))"],
                         entrypoint="python", remove=True).stdout.split("\n")
    assert listing[0] == "['gunicorn.conf.py']"
    assert listing[1] == "False", "pip belongs to the build stage, not the runtime"
    assert engine.run(runtime_image, ["--check-config", "--config", "gunicorn.conf.py", "hello.wsgi:app"],
                      entrypoint="gunicorn", remove=True, check=False).returncode == 0


def test_runtime_image_carries_compiled_modules(engine, runtime_image):
    """Every module of the app and its dependencies has its .pyc (hash-based): workers start
    without compiling (the runtime never writes bytecode)."""
    code = ("import importlib.util, pathlib, sys\n"
            "site = pathlib.Path(sys.prefix, 'lib')\n"
            "missing = [str(p) for p in site.rglob('*.py')\n"
            "           if not pathlib.Path(importlib.util.cache_from_source(p)).is_file()]\n"
            "import hello.wsgi, flask\n"
            "print(len(missing), hello.wsgi.__cached__, flask.__cached__)\n"
            "print(missing[:5])")
    out = engine.run(runtime_image, ["-c", code], entrypoint="python", remove=True).stdout.splitlines()
    assert out[0].split()[0] == "0", out


def test_runtime_image_holds_the_app_and_its_locked_dependencies_only(engine, runtime_image):
    listing = engine.run(runtime_image, ["-c", "import importlib.metadata as m; "
                                               "print('\\n'.join(f\"{d.metadata['Name']}=={d.version}\" "
                                               "for d in m.distributions()))"],
                         entrypoint="python", remove=True).stdout.split()
    installed = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1] for line in listing}
    locked = {}
    for line in wheelhouse.requirements(ROOT, wheelhouse.APP).splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.split(";")[0].split()[0].partition("==")
            locked[name.lower().replace("_", "-")] = version
    METRICS["runtime image: distributions"] = ", ".join(f"{k} {v}" for k, v in sorted(installed.items()))
    assert installed == {**locked, "hello": "0.1.0"}, "the runtime image holds the app and uv.lock's pins, nothing else"


def test_runtime_serves_health_as_non_root_and_stops_on_sigterm(engine, runtime_image, container_name):
    port = free_port()
    started = time.monotonic()
    engine.run(runtime_image, name=container_name, detach=True, ports=[("127.0.0.1", port, 5000)],
               labels={LABEL_KEY: SESSION}, env={"GREETING": "hello from a container"})
    status, body = wait_for(f"http://127.0.0.1:{port}/health")
    METRICS["runtime container: first /health 200 after"] = f"{time.monotonic() - started:.1f}s"
    assert (status, body) == (200, {"status": "ok"})
    _, index = wait_for(f"http://127.0.0.1:{port}/")
    assert index["message"] == "hello from a container" and index["version"] == APP_VERSION
    assert engine.exec(container_name, ["id", "-u"]).stdout.strip() == "10001"
    assert engine.exec(container_name, ["id", "-g"]).stdout.strip() == "10001"
    started = time.monotonic()
    engine.stop(container_name, timeout=20)
    took = time.monotonic() - started
    running, code = engine.container_state(container_name)
    assert not running
    assert code == 0, f"gunicorn should exit 0 on SIGTERM, got {code}"
    assert took < 15, f"stop took {took:.1f}s: SIGTERM did not reach gunicorn (SIGKILL after the timeout)"


def test_build_failure_names_the_step(engine, build_args, tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n"
        "RUN echo 'the step said goodbye' && exit 3\n")
    with pytest.raises(ShipError) as err:
        engine.build(tmp_path, f"ship-ctest-broken:{SESSION}",
                     build_args={"BASE_IMAGE": build_args.get("BASE_IMAGE", "python:3.11-slim")})
    message = str(err.value)
    assert "\n" not in message
    assert "exit" in message and "the step said goodbye" in message, message


def test_missing_base_image_says_how_to_get_one(engine, tmp_path):
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE=localhost/ship-no-such-base:never\nFROM ${BASE_IMAGE}\n")
    with pytest.raises(ShipError) as err:
        engine.build(tmp_path, None)
    message = str(err.value)
    assert "base image localhost/ship-no-such-base:never is neither here nor pullable" in message, message
    assert ".ci/podman-setup.sh" in message


def test_the_build_cache_is_found_by_its_label_and_removed(engine, build_args, tmp_path):
    """Each step of a build commits an image; the untagged ones stay as the build cache. Those of a
    Dockerfile that sets BUILD_LABEL (the project's does, in its first stage) are the engine's
    build_cache, which the test sessions remove; a tagged image keeps what it is made of."""
    mark = f"ctest-{SESSION}"   # this test's images alone carry this value (other runs build meanwhile)
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE} AS one\n"
        f'LABEL {BUILD_LABEL}="{mark}"\nRUN echo one > /one\n'
        "FROM one AS two\nRUN echo two > /two\n"
        "FROM one\nCOPY --from=two /two /two\nRUN cat /one /two > /both\n")
    tag = f"ship-ctest-cache:{SESSION}"

    def ours() -> set[str]:
        listing = engine.listing("images", "--all", "--quiet", "--no-trunc",
                                 ("--filter", f"label={BUILD_LABEL}={mark}"))
        return {normalize_id(line) for line in listing.stdout.split()}

    final = engine.build(tmp_path, tag, build_args={"BASE_IMAGE": build_args.get("BASE_IMAGE", "python:3.11-slim")})
    try:
        made = ours()
        assert final in made
        if engine.name == "podman":   # each step an image (Docker's BuildKit keeps its cache elsewhere)
            assert len(made) >= 4, made
        assert made & engine.build_cache() == made - {final}
        engine.remove_unused_images(made - {final})
        proc = engine.run(tag, ["cat", "/both"], remove=True, labels={LABEL_KEY: SESSION}, check=False)
        assert (proc.returncode, proc.stdout) == (0, "one\ntwo\n"), proc.stderr
    finally:
        engine.rm_image(tag, force=True)
    assert ours() <= engine.build_cache()
    engine.remove_unused_images(ours())
    assert ours() == set()
