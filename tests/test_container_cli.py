"""ship.container_cli: command lines, engine choice, error lines; and a real probe."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

from ship import container_cli, oci
from ship.errors import ShipError
from ship.localcloud.runtime.container_runner import ContainerRunner
from ship.localcloud.runtime.images import ResolvedImage
from ship.localcloud.runtime.base import TaskSpec


@pytest.fixture(autouse=True)
def fresh_probe(monkeypatch):
    monkeypatch.delenv(container_cli.ENV_VAR, raising=False)
    container_cli.reset()
    yield
    container_cli.reset()


def fake_cli(directory: Path, name: str, answers: bool, message: str = "") -> Path:
    """An executable ``name`` whose probe (``ps``) succeeds or fails with ``message``."""
    path = directory / name
    path.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = ps ]; then {"exit 0" if answers else f"echo {message!r} >&2; exit 1"}; fi\n'
        'echo "$@"\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def counting_cli(directory: Path, count: Path, first: int, at_first: str, after: str) -> Path:
    """An executable ``podman`` that counts its calls in ``count``: the first ``first`` calls run
    the shell line ``at_first``, the later ones ``after``."""
    path = directory / "podman"
    path.write_text("\n".join([
        "#!/bin/sh",
        f"n=$(/bin/cat {count} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {count}",
        f"if [ $n -le {first} ]; then {at_first}; fi",
        after,
        ""]))
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_path(tmp_path, monkeypatch):
    """PATH holding only the fake CLIs."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    monkeypatch.setenv("PATH", str(bindir))
    return bindir


# ---------------------------------------------------------------- command lines


def test_build_args_cover_every_option():
    e = container_cli.Engine("podman", exe="podman")
    argv = e.build_args("/ctx", "hello:abc", target="test", build_args={"BASE_IMAGE": "b:1", "APP_VERSION": "abc"},
                        dockerfile="/ctx/Dockerfile", secrets={"ca": "/etc/ca.pem"}, labels={"k": "v"},
                        iidfile="/tmp/iid")
    assert argv == ["podman", "build", "--file", "/ctx/Dockerfile", "--tag", "hello:abc", "--target", "test",
                    "--build-arg", "APP_VERSION=abc", "--build-arg", "BASE_IMAGE=b:1", "--label", "k=v",
                    "--secret", "id=ca,src=/etc/ca.pem", "--iidfile", "/tmp/iid", "/ctx"]


def test_build_args_minimal_is_just_the_context():
    assert container_cli.Engine("docker", exe="docker").build_args(Path(".")) == ["docker", "build", "."]


def test_run_args_publish_env_labels_entrypoint_and_command():
    e = container_cli.Engine("docker", exe="docker")
    argv = e.run_args("img:1", ["-c", "true"], name="ship-1", detach=True, remove=True,
                      ports=[("127.0.0.1", 18000, 5000)], env={"B": "2", "A": "1"}, labels={"ship.localcloud": "i"},
                      entrypoint="sh", user="10001")
    assert argv == ["docker", "run", "--detach", "--rm", "--name", "ship-1", "--publish", "127.0.0.1:18000:5000",
                    "--env", "A=1", "--env", "B=2", "--label", "ship.localcloud=i", "--entrypoint", "sh",
                    "--user", "10001", "img:1", "-c", "true"]


def test_empty_entrypoint_is_passed_on():
    argv = container_cli.Engine("podman", exe="podman").run_args("img", entrypoint="")
    assert argv == ["podman", "run", "--entrypoint", "", "img"]


def test_argv_flattens_and_drops_none():
    e = container_cli.Engine("podman", exe="/usr/bin/podman")
    assert e.argv("ps", None, ("--filter", "label=a"), ["x", ["y"]], 3) == [
        "/usr/bin/podman", "ps", "--filter", "label=a", "x", "y", "3"]


def test_unknown_engine_name_is_refused():
    with pytest.raises(ShipError, match="unknown container engine 'rkt'"):
        container_cli.Engine("rkt")


def test_ids_are_normalised():
    hexid = "ab" * 32
    assert container_cli.normalize_id(hexid) == "sha256:" + hexid
    assert container_cli.normalize_id("sha256:" + hexid + "\n") == "sha256:" + hexid


def test_container_runner_run_line_follows_the_task_definition(tmp_path):
    image = ResolvedImage("1.dkr.ecr.us-east-1.amazonaws.com/hello:abc", "sha256:" + "1" * 64,
                          oci.OCI_CONFIG_MEDIA_TYPE, {"config": {"ExposedPorts": {"5000/tcp": {}}}})
    spec = TaskSpec("t1", "arn:t1", {"name": "app", "portMappings": [{"containerPort": 8080}],
                                     "environment": [{"name": "GREETING", "value": "hi"}],
                                     "entryPoint": ["python", "-m"], "command": ["hello"]},
                    image, 41000, {"AWS_REGION": "eu-west-1",
                                   "ECS_CONTAINER_METADATA_URI_V4": "http://127.0.0.1:4566/_ship/metadata/t1"})
    runner = ContainerRunner(container_cli.Engine("podman", exe="podman"), "inst", tmp_path)
    argv = runner.run_args(spec, "sha256:" + "2" * 64)
    assert argv == ["podman", "run", "--detach", "--name", "ship-t1", "--publish", "127.0.0.1:41000:8080",
                    "--env", "AWS_REGION=eu-west-1", "--env", "GREETING=hi",
                    "--label", "ship.localcloud=inst", "--label", f"ship.localcloud.state={tmp_path.resolve()}",
                    "--label", "ship.localcloud.task=t1", "--entrypoint", "python", "--pull", "never",
                    "--hostname", "t1", "2" * 64, "-m", "hello"]
    assert runner.can_run(image)


# ---------------------------------------------------------------- build failures


PIP = "pip install --no-index --find-links /wheels hello-ship"
PODMAN_FAILURE = f"""\
[1/2] STEP 7/7: RUN {PIP}
Looking in links: /wheels
ERROR: Could not find a version that satisfies the requirement hello-ship (from versions: none)
ERROR: No matching distribution found for hello-ship
Error: error building at STEP "RUN {PIP}": error while running runtime: exit status 1
"""

BUILDKIT_FAILURE = f"""\
#9 [builder 5/5] RUN {PIP}
#9 0.612 ERROR: No matching distribution found for hello-ship
#9 ERROR: process "/bin/sh -c {PIP}" did not complete successfully: exit code: 1
------
Dockerfile:12
--------------------
ERROR: failed to solve: process "/bin/sh -c {PIP}" did not complete successfully: exit code: 1
"""


def test_failing_step_names_the_step_and_its_last_words():
    line = container_cli.failing_step(PODMAN_FAILURE.splitlines())
    assert line.startswith('Error: error building at STEP "RUN pip install')
    assert "(last output: ERROR: No matching distribution found for hello-ship)" in line
    assert "\n" not in line


def test_failing_step_buildkit():
    line = container_cli.failing_step(BUILDKIT_FAILURE.splitlines())
    assert line.startswith("ERROR: failed to solve: process")
    assert "last output" not in line


def test_failing_step_without_output():
    assert container_cli.failing_step([]) == "no output"


def test_dockerfile_default_base_image(tmp_path):
    (tmp_path / "Dockerfile").write_text("# x\nARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n")
    assert container_cli.dockerfile_arg(tmp_path / "Dockerfile", "BASE_IMAGE") == "python:3.11-slim"
    assert container_cli.dockerfile_arg(tmp_path / "missing", "BASE_IMAGE") is None


def test_project_dockerfile_defaults_to_the_official_image():
    dockerfile = Path(__file__).resolve().parent.parent / "Dockerfile"
    if not dockerfile.is_file():
        pytest.skip("no Dockerfile here (inside the test image)")
    assert container_cli.dockerfile_arg(dockerfile, "BASE_IMAGE") == "python:3.11-slim"


def test_build_failure_is_one_line_naming_the_step(fake_path, tmp_path):
    script = fake_path / "podman"
    script.write_text("#!/bin/sh\n/bin/cat <<'EOF'\n" + PODMAN_FAILURE + "EOF\nexit 1\n")
    script.chmod(0o755)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ShipError) as err:
        container_cli.Engine("podman").build(tmp_path, "hello:abc")
    assert str(err.value).startswith('podman build of hello:abc failed: Error: error building at STEP "RUN pip')
    assert "\n" not in str(err.value)


def test_missing_base_image_says_how_to_get_one(fake_path, tmp_path):
    script = fake_path / "podman"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = image ]; then echo "Error: failed to find image $4: image not known" >&2; exit 125; fi\n'
        "echo 'STEP 1/3: FROM python:3.11-slim AS base'\n"
        "echo 'Error: creating build container: initializing source docker://python:3.11-slim: "
        "pinging container registry registry-1.docker.io: dial tcp: lookup registry-1.docker.io: no such host'\n"
        "exit 125\n")
    script.chmod(0o755)
    (tmp_path / "Dockerfile").write_text("ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n")
    with pytest.raises(ShipError) as err:
        container_cli.Engine("podman").build(tmp_path, "hello:abc")
    message = str(err.value)
    assert "base image python:3.11-slim is neither here nor pullable" in message
    assert ".ci/podman-setup.sh" in message and "BASE_IMAGE=localhost/ship-python-base:bookworm" in message


IMAGE_GONE = ('Error: reading image "96b9f8243b12": locating image with ID "96b9f8243b12": '
              'image not known')


@pytest.mark.parametrize("failures, message, listed", [
    (1, IMAGE_GONE, True),                      # removed by another process while listed: asked again
    (container_cli.LISTING_ATTEMPTS - 1, IMAGE_GONE, True),
    (container_cli.LISTING_ATTEMPTS, IMAGE_GONE, False),     # every time: one line
    (1, "Error: database is locked", False),    # any other failure: at once
])
def test_a_listing_that_met_a_removed_image_is_asked_again(fake_path, tmp_path, failures, message, listed):
    count = tmp_path / "count"
    counting_cli(fake_path, count, failures, f"echo '{message}' >&2; exit 125",
                 r"printf 'abc123\tlocalhost/hello\t0123456789ab\n'")
    engine = container_cli.Engine("podman")
    if listed:
        assert engine.images() == [{"id": "abc123", "repository": "localhost/hello", "tag": "0123456789ab"}]
        assert int(count.read_text()) == failures + 1
    else:
        with pytest.raises(ShipError) as err:
            engine.images()
        assert str(err.value) == f"podman images failed: {message}"
        assert int(count.read_text()) == (container_cli.LISTING_ATTEMPTS if message == IMAGE_GONE else 1)


# ---------------------------------------------------------------- engine choice


def test_docker_is_preferred_when_it_answers(fake_path):
    fake_cli(fake_path, "docker", True)
    fake_cli(fake_path, "podman", True)
    assert container_cli.require().name == "docker"


def test_podman_when_docker_has_no_daemon(fake_path):
    fake_cli(fake_path, "docker", False, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock.")
    fake_cli(fake_path, "podman", True)
    found = container_cli.detect()
    assert found.name == "podman" and found.exe == str(fake_path / "podman")


@pytest.mark.parametrize("slow, found", [
    (1, True),      # busy the first time (a build beside it holds its storage lock): asked again, longer
    (2, False),     # within neither: no engine, and why
])
def test_an_engine_slow_to_answer_is_asked_again_for_longer(fake_path, tmp_path, monkeypatch, slow, found):
    monkeypatch.setattr(container_cli, "PROBE_TIMEOUTS", (0.2, 0.5))
    count = tmp_path / "count"
    counting_cli(fake_path, count, slow, "exec /bin/sleep 10", "exit 0")
    engine = container_cli.detect()
    assert int(count.read_text()) == 2
    if found:
        assert engine is not None and engine.name == "podman"
    else:
        assert engine is None
        assert container_cli.probes()[-1] == container_cli.Probe("podman", False, "no answer within 0.5s",
                                                                 timed_out=True)


def test_override_forces_an_engine(fake_path, monkeypatch):
    fake_cli(fake_path, "docker", True)
    fake_cli(fake_path, "podman", True)
    monkeypatch.setenv(container_cli.ENV_VAR, "podman")
    assert container_cli.require().name == "podman"


def test_override_to_an_engine_that_does_not_answer(fake_path, monkeypatch):
    fake_cli(fake_path, "docker", True)
    fake_cli(fake_path, "podman", False, "cannot find runtime")
    monkeypatch.setenv(container_cli.ENV_VAR, "podman")
    with pytest.raises(ShipError, match=r"SHIP_CONTAINER_ENGINE=podman but `podman ps` failed: cannot find runtime"):
        container_cli.require()


def test_bad_override_is_refused(fake_path, monkeypatch):
    monkeypatch.setenv(container_cli.ENV_VAR, "containerd")
    with pytest.raises(ShipError, match="SHIP_CONTAINER_ENGINE='containerd' is not one of docker, podman"):
        container_cli.detect()


def test_no_engine_says_what_to_do(fake_path):
    fake_cli(fake_path, "docker", False, "Cannot connect to the Docker daemon. Is the docker daemon running?")
    with pytest.raises(ShipError) as err:
        container_cli.require()
    assert str(err.value) == (
        "no container engine answers: start Docker, or install Podman (.ci/podman-setup.sh); "
        "`docker ps` failed: Cannot connect to the Docker daemon. Is the docker daemon running?; "
        "`podman ps` failed: podman: command not found")


def test_probe_is_cached(fake_path):
    fake_cli(fake_path, "docker", True)
    first = container_cli.detect()
    (fake_path / "docker").unlink()
    assert container_cli.detect() is first
    container_cli.reset()
    assert container_cli.detect() is None


# ---------------------------------------------------------------- the real thing


def test_real_probe_and_a_container():
    """The engine on this machine answers, and runs a container of the base image.

    Skipped only when neither docker nor podman answers, with their reasons.
    """
    found = container_cli.detect()
    if found is None:
        pytest.skip(container_cli.unavailable_reason())
    assert found.name in container_cli.ENGINES
    base = os.environ.get("SHIP_BASE_IMAGE", container_cli.LOCAL_BASE_IMAGE)
    if not found.image_exists(base):
        base = container_cli.dockerfile_arg(Path(__file__).resolve().parent.parent / "Dockerfile", "BASE_IMAGE")
        proc = found.call("pull", base, check=False, timeout=600)
        assert proc.returncode == 0, (f"{found.name} has neither {container_cli.LOCAL_BASE_IMAGE} (run "
                                      f"{container_cli.SETUP_SCRIPT}) nor {base}: {proc.stderr.strip()[-300:]}")
    image_id = found.image_id(base)
    assert image_id.startswith("sha256:") and len(image_id) == 71
    proc = found.run(image_id, ["python3", "-c", "print(6 * 7)"], remove=True)
    assert proc.stdout.strip() == "42"
    assert found.image_size(base) > 10_000_000
    with pytest.raises(ShipError, match="no image"):
        found.image_inspect("localhost/ship-no-such-image:never")
    assert found.image_id("localhost/ship-no-such-image:never") is None
    found.remove_container("ship-no-such-container")  # already gone is fine


@pytest.mark.parametrize("name, force", [("podman", ["--force", "--time", "0"]), ("docker", ["--force"])])
def test_a_forced_removal_kills_at_once(fake_path, tmp_path, name, force):
    """Podman's ``rm --force`` first waits up to 10 s for a main process that ignores SIGTERM; Docker's kills."""
    calls = tmp_path / "calls"
    script = fake_path / name
    script.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n'
                      'case "$1" in ps) echo c1; echo c2;; esac\n')
    script.chmod(0o755)
    engine = container_cli.Engine(name)
    engine.remove_container("one")
    engine.remove_container("two", force=False)
    assert engine.remove_containers("k=v") == 2
    lines = calls.read_text().splitlines()
    assert lines[0] == " ".join(["rm", *force, "one"])
    assert lines[1] == "rm two"
    assert lines[-1] == " ".join(["rm", *force, "c1", "c2"])


def test_cli_composition_matches_the_real_cli():
    """The flags used here exist in the engine's CLI (catches a renamed option)."""
    found = container_cli.detect()
    if found is None:
        pytest.skip(container_cli.unavailable_reason())
    for sub, flags in {"build": ["--iidfile", "--secret", "--target", "--build-arg", "--label", "--file"],
                       "run": ["--publish", "--label", "--entrypoint", "--pull", "--detach"],
                       "stop": ["--time"], "ps": ["--filter", "--no-trunc"],
                       "rm": ["--force", *(["--time"] if found.name == "podman" else [])]}.items():
        text = subprocess.run(found.argv(sub, "--help"), capture_output=True, text=True).stdout
        for flag in flags:
            assert flag in text, f"{found.name} {sub} has no {flag}"


def test_a_build_that_meets_buildah_s_cache_lookup_race_is_run_again(fake_path, tmp_path):
    """containers/buildah#5674: an image removed by another process during the cache lookup."""
    script = fake_path / "podman"
    script.write_text(
        "#!/bin/sh\n"
        f"if [ ! -e {tmp_path}/raced ]; then : > {tmp_path}/raced; echo 'STEP 2/9: RUN true'; "
        "echo 'Error: checking if cached image exists from a previous build: getting top layer info: "
        "layer not known'; exit 125; fi\n"
        'while [ $# -gt 0 ]; do case "$1" in --iidfile) echo sha256:' + "a" * 64 + ' > "$2";; '
        '--iidfile=*) echo sha256:' + "a" * 64 + ' > "${1#--iidfile=}";; esac; shift; done\n')
    script.chmod(0o755)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    lines: list[str] = []
    assert container_cli.Engine("podman").build(tmp_path, "hello:abc", on_output=lines.append) == "sha256:" + "a" * 64
    assert "podman build: an image vanished during the cache lookup; building again" in lines


def test_a_build_that_meets_the_race_twice_fails_in_one_line(fake_path, tmp_path):
    script = fake_path / "podman"
    script.write_text("#!/bin/sh\necho 'Error: checking if cached image exists from a previous build: getting top "
                      "layer info: layer not known'\nexit 125\n")
    script.chmod(0o755)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ShipError) as err:
        container_cli.Engine("podman").build(tmp_path, "hello:abc")
    assert str(err.value) == ("podman build of hello:abc failed: Error: checking if cached image exists from a "
                              "previous build: getting top layer info: layer not known")
