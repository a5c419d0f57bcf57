"""A local cloud that remembers, end to end: the shared stack survives `inv local.down` and
`inv local.up` (and a kill -9 in the middle of a deploy), and a snapshot that cannot be
loaded is set aside with a message. Real processes, real Terraform, real HTTP.

These run after test_flow's tests on the shared stack and leave it serving: two healthy
replicas of one version (a new commit, for the kill -9 test)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import processes_mentioning
from ship import procfs
from ship.net import free_port

INV = str(Path(sys.executable).parent / "inv")
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("deployed")]

SNAPSHOT = "emulator-state.bin"


def _service(stack) -> dict:
    return stack.client("ecs").describe_services(cluster="hello-local", services=["hello-local"])["services"][0]


def _picture(stack) -> dict:
    """What must be the same after a restart."""
    svc = _service(stack)
    td = stack.client("ecs").describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    s3 = stack.client("s3")
    state = s3.get_object(Bucket="hello-tfstate-local", Key="env/local/terraform.tfstate")
    images = stack.client("ecr").describe_images(repositoryName="hello-local")["imageDetails"]
    return {
        "service": (svc["serviceArn"], svc["status"], svc["desiredCount"]),
        "task_definition": svc["taskDefinition"],
        "image": td["containerDefinitions"][0]["image"],
        "state_file": (state["VersionId"], state["Body"].read()),
        "images": sorted(i["imageDigest"] for i in images),
        "revisions": stack.client("ecs").list_task_definitions(familyPrefix="hello-local")["taskDefinitionArns"],
    }


def _wait_until_serving(stack, timeout: float = 90) -> float:
    """Seconds until the URL answers 200 (fails after ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if stack.get("/", timeout=2)[0] == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{stack.url} did not answer within {timeout:.0f}s")


def _log_marker(stack) -> str:
    marker = f"persist-{time.time_ns()}"
    stack.get(f"/{marker}")       # the access log names the path (a 404 is fine)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if marker in stack.inv("logs", "--env=local", "--since=10m").stdout:
            return marker
        time.sleep(1)
    raise AssertionError("the request's log line never reached CloudWatch Logs")


def _task_processes(stack) -> list[int]:
    """pids of the replicas the local cloud records (process mode), or container ids."""
    tasks = stack.state / "localcloud" / "tasks"
    pids = [json.loads(p.read_text())["pid"] for p in tasks.glob("*.pid")]
    if pids:
        return pids
    from ship import container_cli

    return container_cli.require().containers(label=f"ship.localcloud.state={(stack.state / 'localcloud').resolve()}")


def _alive(stack, what) -> bool:
    if isinstance(what, int):
        return procfs.alive(what)
    from ship import container_cli

    state = container_cli.require().container_state(what)
    return bool(state and state[0])


def _listeners(stack) -> list[dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/_ship/listeners", timeout=5) as resp:
        table = json.loads(resp.read())
    return sorted(({k: m.get(k) for k in ("load_balancer_name", "port", "url", "host_name")} for m in table),
                  key=lambda m: (m["load_balancer_name"], m["port"]))


def _by_host_name(stack, name: str) -> dict:
    """GET / through the emulator's port, addressed to the load balancer by name."""
    req = urllib.request.Request(f"http://127.0.0.1:{stack.port}/", headers={"Host": f"{name}:{stack.port}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_down_and_up_keep_everything_and_the_next_deploy_is_a_no_op(stack):
    stack.inv("deploy", "--env=local")          # the stack runs the tree as it is (earlier tests moved it)
    marker = _log_marker(stack)
    before = _picture(stack)
    listeners = _listeners(stack)
    [host_name] = {m["host_name"] for m in listeners if m["load_balancer_name"] == "hello-local"}
    assert host_name == "hello-local.elb.localhost" and _by_host_name(stack, host_name)["version"]
    stack.inv("local.down")
    assert (stack.state / "localcloud" / SNAPSHOT).is_file()
    started = time.monotonic()
    up = stack.inv("local.up")
    assert "restored the state saved" in up.stdout, up.stdout
    serving = _wait_until_serving(stack)
    print(f"`inv local.up` to the URL answering: {time.monotonic() - started:.1f}s ({serving:.1f}s after up)")

    assert _picture(stack) == before
    # the same local port for every listener, and the load balancer still answers by its name
    assert _listeners(stack) == listeners
    assert _by_host_name(stack, host_name)["version"] == stack.get("/")[1]["version"]
    assert marker in stack.inv("logs", "--env=local", "--since=30m").stdout
    info = json.loads(stack.inv("status", "--env=local", "--json").stdout)
    assert info["url"] == stack.url and info["desired"] == 2

    started = time.monotonic()
    result = stack.inv("deploy", "--env=local")
    print(f"`inv deploy --env=local` after the restart: {time.monotonic() - started:.1f}s")
    # nothing Terraform reads changed (the state's serial and the local cloud's lineage were restored
    # with it), so Terraform is left out: ship.applied
    assert "not rebuilding" in result.stdout and "Terraform skipped: nothing Terraform reads changed" in result.stdout
    assert "(warm)" in result.stdout and result.stdout.strip().splitlines()[-1] == stack.url
    assert _picture(stack)["revisions"] == before["revisions"]          # nothing was registered again
    assert _service(stack)["runningCount"] == 2
    # the outputs once, and true: the revision the service runs, not Terraform's first one
    rows = [ln.split() for ln in result.stdout.splitlines() if ln.strip().startswith("task_definition_arn")]
    assert rows == [["task_definition_arn", before["task_definition"], "(the", "revision", "the", "service",
                     "runs)"]]
    assert "Terraform will perform" not in result.stdout and "Refreshing state" not in result.stdout


def test_kill_9_during_a_deploy_then_start_loads_and_the_deploy_completes(stack):
    tag = stack.commit("persistence: a version deployed while the local cloud is killed")
    health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/_ship/health", timeout=5).read())
    replicas = _task_processes(stack)
    assert replicas
    deploy = subprocess.Popen([INV, "deploy", "--env=local"], cwd=stack.repo, env=stack.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    try:
        for line in deploy.stdout:
            seen.append(line)
            # the image is being pushed and unpacked (ECR and S3 writes); Terraform, which would
            # leave its state lock behind (another matter: see infra.unlock), has not started
            if line.split("] ", 1)[-1].startswith("pushed "):
                break
        os.kill(health["pid"], signal.SIGKILL)
        rest, _ = deploy.communicate(timeout=300)
        seen.append(rest)
    finally:
        if deploy.poll() is None:
            deploy.kill()
    with open(stack.log, "a") as fh:
        fh.write("\n$ inv deploy --env=local  (local cloud killed with SIGKILL during it)\n" + "".join(seen))

    up = stack.inv("local.up")
    assert "restored the state saved" in up.stdout and "could not be loaded" not in up.stdout, up.stdout
    # what the killed local cloud left running is gone
    assert not [r for r in replicas if _alive(stack, r)]
    stack.inv("deploy", "--env=local")
    _wait_until_serving(stack)
    versions = {stack.get("/")[1]["version"] for _ in range(10)}
    assert versions == {tag}
    svc = _service(stack)
    assert svc["runningCount"] == 2 and len(svc["deployments"]) == 1
    stopped = stack.client("ecs").list_tasks(cluster="hello-local", desiredStatus="STOPPED")["taskArns"]
    reasons = {t["stoppedReason"] for t in stack.client("ecs").describe_tasks(
        cluster="hello-local", tasks=stopped[:100])["tasks"]} if stopped else set()
    assert any("the local cloud restarted" in r for r in reasons), reasons


@pytest.mark.parametrize("damage, message", [
    ("corrupt", "corrupt"),
    ("other moto", "written by moto 5.1.0"),
])
def test_a_snapshot_that_cannot_be_loaded_is_set_aside_with_a_message(stack, tmp_path, damage, message):
    """On a private local cloud (its own state directory and port): the shared stack is untouched."""
    own = type(stack)(stack.repo, tmp_path / "state", free_port(), stack.log)
    try:
        own.inv("local.up")
        own.client("s3").create_bucket(Bucket="remember-me")
        own.inv("local.down")
        path = own.state / "localcloud" / SNAPSHOT
        data = path.read_bytes()
        if damage == "corrupt":
            data = data[:-100] + bytes(b ^ 0xFF for b in data[-100:])
        else:
            head, _, payload = data.partition(b"\n")
            header, _, payload = payload.partition(b"\n")
            meta = json.loads(header)
            meta["written_by"]["moto"] = "5.1.0"
            data = head + b"\n" + json.dumps(meta).encode() + b"\n" + payload
        path.write_bytes(data)

        up = own.inv("local.up")
        lines = [ln for ln in up.stdout.splitlines() if "could not be loaded" in ln]
        assert len(lines) == 1 and message in lines[0] and "set aside as" in lines[0], up.stdout
        aside = Path(lines[0].split("set aside as ", 1)[1].split(", starting empty")[0])
        assert aside.is_file() and aside.read_bytes() == data
        assert own.client("s3").list_buckets()["Buckets"] == []
    finally:
        own.inv("local.down", check=False)
        assert processes_mentioning(str(own.state)) == []


def _terraform_pids(data_dir: Path) -> list[int]:
    """Terraform and its provider plugins working in ``data_dir``."""
    needle = f"TF_DATA_DIR={data_dir}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and needle in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_a_state_lock_kept_by_a_killed_local_cloud_is_cleared_by_the_next_command(stack, tmp_path):
    """The local cloud is killed while Terraform holds the state lock: its saved state keeps the
    lock. On a private local cloud (the shared stack is untouched), with a plan as the run."""
    own = type(stack)(stack.repo, tmp_path / "state", free_port(), stack.log)
    data_dir = own.state / "terraform" / "local"
    lock_key = "env/local/terraform.tfstate.tflock"
    plan = None
    try:
        own.inv("local.up")
        own.inv("bootstrap", "--env=local")
        s3 = own.client("s3")
        plan = subprocess.Popen([INV, "infra.plan", "--env=local"], cwd=own.repo, env=own.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lock = None
        deadline = time.monotonic() + 120
        while lock is None:
            assert plan.poll() is None and time.monotonic() < deadline, "the plan never took the state lock"
            try:
                lock = json.loads(s3.get_object(Bucket="hello-tfstate-local", Key=lock_key)["Body"].read())
            except s3.exceptions.NoSuchKey:
                time.sleep(0.05)
        pids = _terraform_pids(data_dir)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)        # Terraform holds the lock for as long as this test needs
        from ship import terraform

        created = terraform.lock_created(lock)
        snapshot = own.state / "localcloud" / SNAPSHOT
        deadline = time.monotonic() + 30
        while not (snapshot.is_file() and snapshot.stat().st_mtime > created):
            assert time.monotonic() < deadline, "no snapshot was saved after the lock was taken"
            time.sleep(0.1)
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{own.port}/_ship/health", timeout=5).read())
        os.kill(health["pid"], signal.SIGKILL)
        for pid in pids + [plan.pid]:
            os.kill(pid, signal.SIGKILL)        # the run dies with it
        plan.wait(timeout=30)

        assert "restored the state saved" in own.inv("local.up").stdout
        result = own.inv("infra.plan", "--env=local")
        cleared = [ln for ln in result.stdout.splitlines() if ln.startswith("cleared the state lock")]
        assert cleared == [f"cleared the state lock of local ({terraform.describe_lock(lock)}): its run ended when "
                           "the local cloud that served it stopped"], result.stdout
        assert "Plan:" in result.stdout
        try:
            s3.get_object(Bucket="hello-tfstate-local", Key=lock_key)
            raise AssertionError("the lock is still there")
        except s3.exceptions.NoSuchKey:
            pass
    finally:
        if plan is not None and plan.poll() is None:
            plan.kill()
        for pid in _terraform_pids(data_dir):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        own.inv("local.down", check=False)
        assert processes_mentioning(str(own.state)) == []
