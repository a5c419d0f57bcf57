"""The local cloud's container runner against the real engine."""

from __future__ import annotations

import time

import pytest
from container_support import SESSION, wait_for
from ship.net import free_port

from ship import oci
from ship.localcloud.runtime.container_runner import ContainerRunner, container_name, remove_leftovers
from ship.localcloud.runtime.images import ResolvedImage
from ship.localcloud.runtime.base import TaskSpec

pytestmark = pytest.mark.container


def _spec(engine, image_tag, task_id, task_cpu=None, task_memory=None, **container):
    image = ResolvedImage(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/hello:{SESSION}", "sha256:" + "0" * 64,
                          oci.OCI_CONFIG_MEDIA_TYPE, {"config": {"ExposedPorts": {"5000/tcp": {}}}})
    image.config_digest = engine.image_id(image_tag)   # what the ECR manifest's config descriptor names
    definition = {"name": "app", "portMappings": [{"containerPort": 5000}], "stopTimeout": 10, **container}
    return TaskSpec(task_id, f"arn:aws:ecs:us-east-1:123456789012:task/c/{task_id}", definition, image, free_port(),
                    {"AWS_REGION": "us-east-1"}, cpu=task_cpu, memory=task_memory)


def _run_to_exit(runner, spec, timeout=60):
    lines: list[str] = []
    handle = runner.start(spec, lines.append)
    deadline = time.monotonic() + timeout
    while runner.poll(handle) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    code = runner.poll(handle)
    runner.stop(handle, 5)
    return handle, code, lines


def test_runner_starts_serves_and_stops_a_task(engine, runtime_image, tmp_path):
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path)
    spec = _spec(engine, runtime_image, f"task{SESSION}",
                 environment=[{"name": "GREETING", "value": "from the runner"}])
    lines: list[str] = []
    handle = runner.start(spec, lines.append)
    try:
        assert (handle.host, handle.port) == ("127.0.0.1", spec.port)
        _, body = wait_for(f"http://127.0.0.1:{spec.port}/")
        assert body["message"] == "from the runner"
        assert runner.poll(handle) is None
        assert engine.containers(label=f"ship.localcloud=inst-{SESSION}")
        assert runner.stop(handle, 10) == 0
        assert runner.poll(handle) == 0
        assert any("Booting worker" in line for line in lines), lines[-5:]
        assert engine.container_state(container_name(spec.task_id)) is None, "stopped tasks are removed"
    finally:
        engine.remove_container(container_name(spec.task_id))


def test_runner_reports_the_exit_code_of_a_task_that_exits(engine, runtime_image, tmp_path):
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path)
    spec = _spec(engine, runtime_image, f"exit{SESSION}", entryPoint=["python"],
                 command=["-c", "print('bye'); raise SystemExit(3)"])
    lines: list[str] = []
    handle = runner.start(spec, lines.append)
    try:
        deadline = time.monotonic() + 30
        while runner.poll(handle) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runner.poll(handle) == 3
        assert runner.stop(handle, 5) == 3
        assert "bye" in lines
    finally:
        engine.remove_container(container_name(spec.task_id))


def test_leftovers_are_found_by_label(engine, runtime_image, tmp_path):
    crashed = ContainerRunner(engine, f"old-{SESSION}", tmp_path)
    spec = _spec(engine, runtime_image, f"left{SESSION}")
    crashed.start(spec, lambda line: None)
    try:
        assert remove_leftovers(engine, tmp_path, keep_instance=f"new-{SESSION}") == 1
        assert engine.container_state(container_name(spec.task_id)) is None
    finally:
        engine.remove_container(container_name(spec.task_id))


def test_an_image_the_engine_lacks_is_a_pull_error(engine, runtime_image, tmp_path):
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path)
    spec = _spec(engine, runtime_image, f"miss{SESSION}")
    spec.image.config_digest = "sha256:" + "e" * 64
    try:
        runner.start(spec, lambda line: None)
    except Exception as exc:
        assert str(exc).startswith("CannotPullContainerError:") and "not in" in str(exc)
    else:
        raise AssertionError("start should fail for an image the engine does not have")


def test_the_task_s_cpu_and_memory_are_the_engine_s_flags(engine, runtime_image, tmp_path):
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path)
    args = runner.run_args(_spec(engine, runtime_image, "t", task_cpu="256", task_memory="512", memory=128,
                                 memoryReservation=64, cpu=128), "sha256:" + "1" * 64)
    for flag in ("--cpus=0.25", "--memory=128m", "--memory-swap=128m", "--memory-reservation=64m", "--cpu-shares=128"):
        assert flag in args, (flag, args)
    assert runner.limits.startswith(f"{engine.name} run --cpus")


def test_a_container_past_its_memory_is_oom_killed_and_says_so(engine, runtime_image, tmp_path):
    """Container memory 64 MiB: the kernel kills it (137, no swap), and the runner knows it was the memory."""
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path)
    code = "held = []\nwhile True:\n    held.append(b'x' * (4 << 20))"
    spec = _spec(engine, runtime_image, f"oom{SESSION}", task_cpu="256", task_memory="512", memory=64,
                 entryPoint=["python"], command=["-c", code])
    try:
        handle, exit_code, lines = _run_to_exit(runner, spec)
        assert exit_code == 137, lines[-5:]
        assert handle.reason == "OutOfMemoryError: Container killed due to memory usage"
    finally:
        engine.remove_container(container_name(spec.task_id))


def test_an_oom_kill_is_the_engine_s_own_verdict_and_leaves_no_file_where_the_runner_runs(
        engine, runtime_image, tmp_path, monkeypatch):
    """Podman 4's container monitor writes its OOM mark (a file named `oom`) in the directory it
    was started from, and Podman reads it from the container's own: the engine must say OOMKilled
    itself, and the local cloud's working directory must stay clean."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path / "state")
    code = "held = []\nwhile True:\n    held.append(b'x' * (4 << 20))"
    spec = _spec(engine, runtime_image, f"oomk{SESSION}", task_cpu="256", task_memory="512", memory=64,
                 entryPoint=["python"], command=["-c", code])
    handle = runner.start(spec, lambda line: None)
    try:
        deadline = time.monotonic() + 60
        while runner.poll(handle) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runner.poll(handle) == 137
        info = engine.container_inspect(container_name(spec.task_id)) or {}
        assert info["State"]["OOMKilled"] is True, info.get("State")
        assert sorted(p.name for p in work.iterdir()) == []
    finally:
        runner.stop(handle, 5)
        engine.remove_container(container_name(spec.task_id))


def test_a_container_stopped_by_the_runner_is_no_oom_kill(engine, runtime_image, tmp_path):
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path)
    spec = _spec(engine, runtime_image, f"ok{SESSION}", task_cpu="256", task_memory="512",
                 entryPoint=["python"], command=["-c", "import time; time.sleep(600)"])
    try:
        handle = runner.start(spec, lambda line: None)
        assert runner.stop(handle, 1) == 137            # SIGKILL after the stop timeout
        assert handle.reason is None
    finally:
        engine.remove_container(container_name(spec.task_id))


@pytest.mark.parametrize("init", [True, False], ids=["init process", "no init process"])
def test_initprocessenabled_forwards_the_stop_signal_to_the_command(engine, runtime_image, tmp_path, init):
    """A command that does not handle SIGTERM, as the container's first process, ignores it (the
    kernel gives PID 1 no default action): the stop ends in SIGKILL (137). With
    linuxParameters.initProcessEnabled, an init process runs first and passes SIGTERM on: the
    command dies of it (143)."""
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path)
    spec = _spec(engine, runtime_image, f"init{int(init)}{SESSION}", entryPoint=["python"],
                 command=["-c", "import time; print('up', flush=True); time.sleep(600)"],
                 linuxParameters={"initProcessEnabled": init})
    try:
        lines: list[str] = []
        handle = runner.start(spec, lines.append)
        deadline = time.monotonic() + 60
        while "up" not in lines and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runner.stop(handle, 30 if init else 1) == (143 if init else 137), lines[-5:]
        assert ("--init" in runner.run_args(spec, "sha256:" + "1" * 64)) is init
    finally:
        engine.remove_container(container_name(spec.task_id))


def test_a_spinning_container_is_held_to_its_cpu_units(engine, runtime_image, tmp_path):
    runner = ContainerRunner(engine, f"inst-{SESSION}", tmp_path)
    code = ("import time\nwall = time.monotonic(); cpu = time.process_time()\n"
            "while time.monotonic() - wall < 3:\n    pass\n"
            "print('share %.3f' % ((time.process_time() - cpu) / (time.monotonic() - wall)), flush=True)")
    spec = _spec(engine, runtime_image, f"cpu{SESSION}", task_cpu="256", task_memory="512",
                 entryPoint=["python"], command=["-c", code])
    try:
        _, exit_code, lines = _run_to_exit(runner, spec)
        assert exit_code == 0, lines[-5:]
        share = float(next(line for line in lines if line.startswith("share")).split()[1])
        print(f"a spinning container with 256 cpu units got {share:.3f} of a CPU")
        assert 0.0 < share <= 0.25 * 1.4
    finally:
        engine.remove_container(container_name(spec.task_id))
