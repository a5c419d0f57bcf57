"""Task cpu and memory limits in the process runtime, for real, in every mode this machine
can run (``SHIP_LOCAL_LIMITS`` picks it; a mode the machine cannot offer is skipped with
the reason): a task that allocates past its memory is stopped as ECS stops an OOM-killed
container, a task that spins is held near its cpu share, and a crash-looping service
does not take the machine's cores. The container runtime's flags are tested in
tests/container/test_runner.py and end to end in tests/e2e/test_task_limits.py.

CPU figures are upper bounds only: a busy machine can lower them, never raise them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import requests

from conftest import Cloud, _pids_under, build_process_image, free_port, push_image
from ship import procfs
from ship.localcloud.runtime import cgroups, limits

NET = {"awsvpcConfiguration": {"subnets": ["subnet-12345678"], "securityGroups": ["sg-12345678"]}}
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"

# Allocates 4 MiB (written, so resident) every 20 ms: about 200 MB/s, up to 1 GiB.
ALLOCATE = ("import time\nprint('allocating', flush=True)\nheld = []\nfor i in range(256):\n"
            "    held.append(b'x' * (4 << 20))\n    time.sleep(0.02)\n"
            "print('survived with', len(held) * 4, 'MiB', flush=True)")
# Spins for 3 s of wall time, then prints the share of one CPU it got.
SPIN = ("import time\nwall = time.monotonic(); cpu = time.process_time()\n"
        "while time.monotonic() - wall < 3:\n    pass\n"
        "print('share %.3f' % ((time.process_time() - cpu) / (time.monotonic() - wall)), flush=True)")


def _available(mode: str) -> str | None:
    try:
        limits.choose(cgroups.probe(), mode)
    except limits.LimitsError as exc:
        return str(exc)
    return None


# each mode's tests on one worker when the suite runs on several (pytest-xdist, --dist loadgroup): its
# local cloud is made once
@pytest.fixture(scope="module", params=[pytest.param(mode, marks=pytest.mark.xdist_group(f"task-limits-{mode}"))
                                        for mode in ("cgroup2", "cgroup1", "rlimit")])
def limited(request, tmp_path_factory):
    """A local cloud whose process tasks are limited by ``request.param``: (cloud, ecs, logs, image, mode)."""
    from ship.localcloud import control

    mode = request.param
    missing = _available(mode)
    if missing:
        pytest.skip(f"{mode} cannot run on this machine: {missing}")
    port, state = free_port(), tmp_path_factory.mktemp(f"limits-{mode}") / "state"
    before = os.environ.get(limits.ENV_VAR)
    os.environ[limits.ENV_VAR] = mode           # the serve process reads it
    try:
        info = control.up(state, port=port, timeout=60)
    finally:
        if before is None:
            os.environ.pop(limits.ENV_VAR, None)
        else:
            os.environ[limits.ENV_VAR] = before
    cloud = Cloud(f"http://127.0.0.1:{port}", state, info)
    try:
        ecs, ecr, logs = cloud.client("ecs"), cloud.client("ecr"), cloud.client("logs")
        ecr.create_repository(repositoryName="demo")
        config, layer = build_process_image("v1")
        image = push_image(ecr, "demo", "v1", config, layer)
        logs.create_log_group(logGroupName="/ecs/limits")
        ecs.create_cluster(clusterName="limits")
        ec2 = cloud.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        cloud.network = {"awsvpcConfiguration": {
            "subnets": [ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]],
            "securityGroups": [ec2.create_security_group(GroupName="t", Description="t", VpcId=vpc)["GroupId"]]}}
        yield cloud, ecs, logs, image, mode
    finally:
        assert control.down(state, timeout=60)
        assert _pids_under(state) == []


def _register(ecs, image, task_cpu="256", task_memory="512", **container):
    cdef = {"name": "app", "image": image, "essential": True, "stopTimeout": 3, "memory": 512,
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": "/ecs/limits", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "t"}}}
    cdef.update(container)
    return ecs.register_task_definition(family="limits", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                                        cpu=task_cpu, memory=task_memory, containerDefinitions=[cdef])[
        "taskDefinition"]["taskDefinitionArn"]


def _run_to_end(ecs, td, code: str) -> dict:
    task = ecs.run_task(cluster="limits", taskDefinition=td, launchType="FARGATE", networkConfiguration=NET,
                        overrides={"containerOverrides": [{"name": "app", "command": ["python", "-c", code]}]},
                        )["tasks"][0]
    ecs.get_waiter("tasks_stopped").wait(cluster="limits", tasks=[task["taskArn"]],
                                         WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    return ecs.describe_tasks(cluster="limits", tasks=[task["taskArn"]])["tasks"][0]


def _output(logs, task: dict) -> list[str]:
    stream = f"t/app/{task['taskArn'].rsplit('/', 1)[1]}"
    deadline = time.monotonic() + 10
    while True:
        events = logs.get_log_events(logGroupName="/ecs/limits", logStreamName=stream, startFromHead=True)["events"]
        if events or time.monotonic() > deadline:
            return [e["message"] for e in events]
        time.sleep(0.2)


def test_the_local_cloud_says_how_it_limits_tasks(limited):
    cloud, _, _, _, mode = limited
    health = requests.get(cloud.endpoint + "/_ship/health", timeout=5).json()
    assert health["limits"]["process"].startswith(f"{mode}: "), health["limits"]
    log = (cloud.state_dir / "localcloud.log").read_text()
    assert f"task limits (process runtime): {mode}: " in log


def test_a_task_past_its_memory_is_stopped_as_an_oom_kill(limited):
    """Container memory 128 MiB (task 512): ECS's OOM stop, exit code 137, the app never finishes."""
    _, ecs, logs, image, _ = limited
    td = _register(ecs, image, task_memory="512", memory=128)
    done = _run_to_end(ecs, td, ALLOCATE)
    [container] = done["containers"]
    assert done["stopCode"] == "EssentialContainerExited"
    assert done["stoppedReason"] == "Essential container in task exited"
    assert container.get("reason") == OOM_REASON, (container, _output(logs, done))
    assert container["exitCode"] == 137
    assert not any(line.startswith("survived") for line in _output(logs, done))


def test_a_task_within_its_memory_is_not_an_oom_kill(limited):
    _, ecs, logs, image, _ = limited
    td = _register(ecs, image, task_memory="512", memory=512)
    small = ALLOCATE.replace("range(256)", "range(16)")        # 64 MiB
    done = _run_to_end(ecs, td, small)
    [container] = done["containers"]
    assert container["exitCode"] == 0 and "reason" not in container, container
    assert _output(logs, done)[-1] == "survived with 64 MiB"


def test_a_spinning_task_is_held_to_its_cpu_units(limited):
    """Task cpu 256 = 0.25 vCPU: what the task measures of its own CPU time over 3 s of wall time."""
    _, ecs, logs, image, mode = limited
    td = _register(ecs, image, task_cpu="256")
    done = _run_to_end(ecs, td, SPIN)
    assert done["containers"][0]["exitCode"] == 0
    share = float(_output(logs, done)[-1].split()[1])
    print(f"{mode}: a spinning task with 256 cpu units got {share:.3f} of a CPU")
    assert 0.0 < share <= 0.25 * 1.4, share


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and every process below it, the reaped ones included."""
    fields = procfs.fields(pid)
    if fields is None:
        raise ProcessLookupError(pid)   # an OSError: a child gone meanwhile is skipped below
    total = sum(int(f) for f in fields[procfs.UTIME:procfs.UTIME + 4]) / procfs.CLK_TCK   # with reaped children
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                total += _tree_cpu(int(child))
            except (OSError, IndexError):
                pass
    return total


def test_a_crash_looping_service_does_not_take_the_machine(limited):
    """Two replicas that spin for 2 s and crash. They reach RUNNING first, so ECS relaunches them
    at once (no throttle: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-throttle-logic.html):
    only the limits keep the loop in its 2 x 0.25 vCPU. The local cloud with all its tasks must
    stay under one of the machine's cores."""
    cloud, ecs, _, image, mode = limited
    crash = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 2:\n    pass\nraise SystemExit(1)"
    td = _register(ecs, image, task_cpu="256", command=["python", "-c", crash])
    ecs.create_service(cluster="limits", serviceName=f"crash-{mode}", taskDefinition=td, desiredCount=2,
                       launchType="FARGATE",
                       networkConfiguration=cloud.network)

    def stopped() -> int:
        return len(ecs.list_tasks(cluster="limits", serviceName=f"crash-{mode}", desiredStatus="STOPPED")["taskArns"])

    def wait_for_stopped(count: int) -> None:
        deadline = time.monotonic() + 180               # a guard against a hang, not a measure
        while stopped() < count:
            assert time.monotonic() < deadline, f"the crash-looping service never had {count} stopped tasks"
            time.sleep(0.5)

    try:
        wait_for_stopped(1)
        first, serve = stopped(), cloud.info["pid"]
        cpu0, wall0 = _tree_cpu(serve), time.monotonic()
        wait_for_stopped(first + 4)                     # measured over four more crashes, however long they take
        cpu1, wall1 = _tree_cpu(serve), time.monotonic()
        cores = (cpu1 - cpu0) / (wall1 - wall0)
        print(f"{mode}: crash loop: the local cloud used {cores:.2f} cores over {stopped() - first} crashes")
        assert cores < 1.0, f"the crash loop took {cores:.2f} of the machine's {os.cpu_count()} cores"
    finally:
        ecs.delete_service(cluster="limits", service=f"crash-{mode}", force=True)
