"""End to end, on the shared stack: a task is held to its task definition's cpu and memory
(the local environment's 256 cpu units and 512 MiB), in the process runtime (cgroups, else
rlimits) and in containers (the engine's --cpus/--memory), and says so.

* `inv run -- <allocate past 512 MiB>` exits with 137 and names the OOM kill, and the task is
  stopped as ECS stops an OOM-killed container;
* `inv run -- <spin>`: the task gets about a quarter of a CPU (an upper bound: a busy machine
  can only lower it);
* `inv local.status` says how tasks are limited.
"""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("deployed")]

CLUSTER = "hello-local"
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"
ALLOCATE = ("import time\nprint('allocating', flush=True)\nheld = []\nfor i in range(512):\n"
            "    held.append(b'x' * (4 << 20))\n    time.sleep(0.02)\nprint('survived', flush=True)")
SPIN = ("import time\nwall = time.monotonic(); cpu = time.process_time()\n"
        "while time.monotonic() - wall < 3:\n    pass\n"
        "print('share %.3f' % ((time.process_time() - cpu) / (time.monotonic() - wall)), flush=True)")


def test_a_task_past_its_memory_is_stopped_as_an_oom_kill(stack):
    result = stack.inv("run", "--env=local", "--", "python", "-c", ALLOCATE, check=False, timeout=300)
    assert result.returncode == 137, result.stdout + result.stderr
    assert f"exited with 137 ({OOM_REASON})" in result.stdout
    lines = result.stdout.splitlines()         # the task's own output, one line each (not the echoed command)
    assert "allocating" in lines and "survived" not in lines, lines
    task_id = re.search(r"as task ([0-9a-f]{32})", result.stdout).group(1)
    [task] = stack.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[task_id])["tasks"]
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["containers"][0]["reason"] == OOM_REASON and task["containers"][0]["exitCode"] == 137


def test_a_spinning_task_gets_its_cpu_units(stack):
    result = stack.inv("run", "--env=local", "--", "python", "-c", SPIN, check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    share = float(re.search(r"share ([0-9.]+)", result.stdout).group(1))
    print(f"{stack.runtime}: a spinning task of the local environment (256 cpu units) got {share:.3f} of a CPU")
    assert 0.0 < share <= 0.25 * 1.4


def test_local_status_says_how_tasks_are_limited(stack):
    out = stack.inv("local.status").stdout
    assert re.search(r"task limits \(process\): (cgroup2|cgroup1|rlimit): ", out), out
    if stack.runtime == "container":
        assert "task limits (container): " in out and "--memory" in out, out
