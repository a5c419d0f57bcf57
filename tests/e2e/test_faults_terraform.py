"""A killed Terraform, its partial apply, its stale lock, and two deploys at once: for real.

Runs in an environment of its own (``faults``, one replica, its own VPC) added to a clone of
the stack's repository, on the shared local cloud; the shared ``local`` stack is not touched.
The tests run in order: the first kills an apply half-way, the second starts two deploys at
once on what it left, the third leaves a stale lock behind a killed plan.

CI runs this file in the process runtime only (``ONE_RUNTIME`` in noxfile.py): its subject is not how
replicas run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("deployed")]

ENV = "faults"
ENV_YAML = f"""
  {ENV}:
    emulator: true
    state_bucket: hello-tfstate-local
    vpc_cidr: 10.61.0.0/16
    desired_count: 1
    health_check_interval: 5
    health_check_timeout: 2
    deregistration_delay: 2
    health_check_grace_period: 0
    log_retention_days: 1
"""


class Project:
    def __init__(self, stack, repo: Path):
        self.stack, self.repo = stack, repo
        self.env = dict(stack.env, SHIP_PROJECT_DIR=str(repo), PYTHONPATH=str(repo / "src"))
        self.data_dir = stack.state / "terraform" / ENV

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([_inv(), *args], cwd=self.repo, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def inv(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        result = subprocess.run([_inv(), *args], cwd=self.repo, env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        with open(self.stack.log, "a") as fh:
            fh.write(f"\n$ [{ENV} project] inv {' '.join(args)} (exit {result.returncode})\n")
            fh.write(result.stdout + result.stderr)
        return result

    def terraform_pids(self) -> list[int]:
        """Terraform itself (not its provider plugins) working in this environment's data directory."""
        needle = f"TF_DATA_DIR={self.data_dir}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            try:
                if needle in (proc / "environ").read_bytes().split(b"\0"):
                    program = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
                    if not Path(program).name.startswith("terraform-provider-"):
                        found.append(int(proc.name))
            except (OSError, ValueError):
                continue
        return found

    def kill_terraform_when(self, proc: subprocess.Popen, marker: str, timeout: float = 240) -> str:
        """Read ``proc``'s output until ``marker``, SIGKILL its Terraform, return all it printed."""
        seen = []
        deadline = time.monotonic() + timeout
        for line in proc.stdout:
            seen.append(line)
            if marker in line:
                pids = self.terraform_pids()
                assert pids, "no Terraform to kill"
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                break
            assert time.monotonic() < deadline, f"{marker!r} never came:\n{''.join(seen)}"
        rest, _ = proc.communicate(timeout=120)
        return "".join(seen) + rest

    def vpcs(self) -> list[dict]:
        return self.stack.client("ec2").describe_vpcs(
            Filters=[{"Name": "tag:environment", "Values": [ENV]}])["Vpcs"]


def _inv() -> str:
    import sys

    return str(Path(sys.executable).parent / "inv")


@pytest.fixture(scope="module")
def project(stack, tmp_path_factory):
    repo = tmp_path_factory.mktemp("faults") / "repo"
    subprocess.run(["git", "clone", "-q", str(stack.repo), str(repo)], check=True)
    for key, value in (("user.email", "e2e@example.invalid"), ("user.name", "e2e")):
        subprocess.run(["git", "config", key, value], cwd=repo, check=True)
    envs = repo / "terraform" / "environments.yaml"
    envs.write_text(envs.read_text() + ENV_YAML)
    subprocess.run(["git", "commit", "-qam", f"add the {ENV} environment"], cwd=repo, check=True)
    stack.repos.append(repo)  # the images its deploys build go with the stack's
    p = Project(stack, repo)
    try:
        yield p
    finally:
        for pid in p.terraform_pids():
            os.kill(pid, signal.SIGKILL)
        result = p.inv("destroy", f"--env={ENV}")
        assert result.returncode == 0, result.stdout + result.stderr
        assert p.vpcs() == []


def test_a_killed_apply_is_reported_killed(project):
    proc = project.start("infra.apply", f"--env={ENV}")
    # the load balancer takes a minute to create: kill Terraform while it waits
    output = project.kill_terraform_when(proc, "module.loadbalancer.aws_lb.this: Creating...")
    assert proc.returncode == 1
    last = output.strip().splitlines()[-1]
    assert last == (f"error: terraform apply for {ENV} was killed by SIGKILL (signal 9) before it finished; run the "
                    f"command again: ship finds what the killed run left and rebuilds {ENV}'s stack")
    assert len(project.vpcs()) == 1


def test_two_deploys_at_once_take_turns_and_rebuild_the_partial_stack_once(project):
    first, second = project.start("deploy", f"--env={ENV}"), project.start("deploy", f"--env={ENV}")
    outputs = [p.communicate(timeout=900)[0] for p in (first, second)]
    with open(project.stack.log, "a") as fh:
        fh.write("".join(f"\n$ [{ENV} project, concurrent] inv deploy\n{out}" for out in outputs))
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    rebuilt = [o for o in outputs if f"the last apply of {ENV} did not finish and left" in o]
    assert len(rebuilt) == 1
    line = next(ln for ln in rebuilt[0].splitlines() if "did not finish" in ln)
    assert "removed the partial stack" in line and "to build it again from scratch" in line
    waited = [o for o in outputs if f"to finish with {ENV}" in o]
    assert len(waited) == 1 and waited[0] is not rebuilt[0]
    assert "not rebuilding" in waited[0]  # found the image the first one pushed
    urls = {o.strip().splitlines()[-1] for o in outputs}
    assert len(urls) == 1 and urls.pop().startswith("http://127.0.0.1:")
    assert len(project.vpcs()) == 1  # not a second VPC
    status = json.loads(project.inv("status", f"--env={ENV}", "--json").stdout)
    assert status["running"] == status["desired"] == 1
    assert [t["health"] for t in status["targets"]] == ["healthy"]


def test_a_stale_lock_is_named_with_its_id_and_cleared_by_unlock(project):
    proc = project.start("infra.plan", f"--env={ENV}")
    output = project.kill_terraform_when(proc, "Refreshing state...")
    assert output.strip().splitlines()[-1] == f"error: terraform plan for {ENV} was killed by SIGKILL (signal 9); " \
                                              "run the command again"
    # named at once: a deploy that waited out Terraform's 60 s lock timeout would not end within this one
    result = project.inv("deploy", f"--env={ENV}", timeout=50)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    line = result.stderr.strip()
    assert line.startswith(f"error: the state of {ENV} is locked (lock id ")
    assert line.endswith(f"a killed run left it; clear it with `inv infra.unlock --env={ENV}`")
    lock_id = line.split("lock id ", 1)[1].split(",", 1)[0]

    dry = project.inv("infra.unlock", f"--env={ENV}", "--dry")
    assert dry.returncode == 0 and f"dry run: would clear lock {lock_id}" in dry.stdout
    unasked = project.inv("infra.unlock", f"--env={ENV}")  # no terminal to ask on
    assert unasked.returncode == 1 and "confirm with --yes" in unasked.stderr
    cleared = project.inv("infra.unlock", f"--env={ENV}", "--yes")
    assert cleared.returncode == 0 and f"cleared lock {lock_id} of {ENV}" in cleared.stdout
    again = project.inv("deploy", f"--env={ENV}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already runs" in again.stdout
