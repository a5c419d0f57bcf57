"""Other people's Terraform: a Fargate service + ALB written with terraform-aws-modules' ECS (v5.12.1)
and ALB (v9.17.0) modules, at their defaults (tests/e2e/community/), applied to the shared local cloud.

It runs the image the project's own stack runs, beside it (own VPC, cluster, service, load balancer),
and removes everything it made before it ends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import wait_until

pytestmark = [pytest.mark.e2e]

NAME = "community"


class Root:
    """terraform in the stack's copy of tests/e2e/community/stack, against the shared local cloud."""

    def __init__(self, stack, tmp: Path, variables: dict):
        from ship import terraform

        # A copy outside the stack's repository: Terraform's working files must not make its tree dirty.
        shutil.copytree(stack.repo / "tests" / "e2e" / "community", tmp / "community")
        self.stack, self.workdir, self.tf = stack, tmp / "community" / "stack", terraform.binary()
        self.vars = [f"-var={k}={v}" for k, v in variables.items()]
        self.env = dict(stack.env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{stack.port}", TF_IN_AUTOMATION="1")
        config = stack.env.get("TF_CLI_CONFIG_FILE") or terraform.cli_config(tmp / "cli")  # the stack's (conftest.py)
        if config is not None:
            self.env["TF_CLI_CONFIG_FILE"] = str(config)

    def run(self, *args: str, timeout: float = 600, ok=(0,)) -> subprocess.CompletedProcess:
        started = time.monotonic()
        result = subprocess.run([self.tf, *args], cwd=self.workdir, env=self.env, capture_output=True, text=True,
                                timeout=timeout)
        with open(self.stack.log, "a") as fh:
            fh.write(f"\n$ terraform {' '.join(args)}  ({time.monotonic() - started:.1f}s, "
                     f"exit {result.returncode})\n{result.stdout}{result.stderr}")
        assert result.returncode in ok, f"terraform {args[0]} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        return result


def _listener_url(stack, lb_arn: str) -> str | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.port}/_ship/listeners", timeout=5) as resp:
        table = json.loads(resp.read())
    return next((row["url"] for row in table if row["load_balancer_arn"] == lb_arn and row["port"] == 80), None)


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url + "/", timeout=5) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, {}
    except OSError:
        return 0, {}


def _shared_image(stack) -> tuple[str, int]:
    ecs = stack.client("ecs")
    svc = ecs.describe_services(cluster="hello-local", services=["hello-local"])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    container = td["containerDefinitions"][0]
    return container["image"], container["portMappings"][0]["containerPort"]


def test_community_modules_apply_serve_plan_clean_and_destroy(deployed, tmp_path):
    image, port = _shared_image(deployed)
    root = Root(deployed, tmp_path, {"image": image, "container_port": port, "name": NAME})
    root.run("init", "-input=false", "-no-color")
    started = time.monotonic()
    root.run("apply", "-auto-approve", "-input=false", "-no-color", *root.vars, timeout=900)
    apply_seconds = time.monotonic() - started
    destroyed = False
    try:
        outputs = json.loads(root.run("output", "-json").stdout)
        ecs = deployed.client("ecs")

        def steady():
            svc = ecs.describe_services(cluster=NAME, services=[NAME])["services"][0]
            return svc if (svc["runningCount"] == 2 and len(svc["deployments"]) == 1
                           and svc["deployments"][0]["rolloutState"] == "COMPLETED") else None

        # the target group's health checks are the provider's defaults (30 s interval, 3 healthy)
        wait_until(steady, 420, "the community service to be steady", step=2)
        task_arns = ecs.list_tasks(cluster=NAME, serviceName=NAME)["taskArns"]
        assert len(task_arns) == 2

        url = wait_until(lambda: _listener_url(deployed, outputs["load_balancer_arn"]["value"]), 300,
                         "the community load balancer's listener", step=1.0)
        answers = [_get(url) for _ in range(20)]
        assert all(status == 200 for status, _ in answers), answers
        instances = {body["instance"].split(":")[0] for _, body in answers}
        assert len(instances) == 2 and all(any(a.endswith("/" + i) for a in task_arns) for i in instances)

        aas = deployed.client("application-autoscaling")
        (target,) = aas.describe_scalable_targets(ServiceNamespace="ecs",
                                                  ResourceIds=[f"service/{NAME}/{NAME}"])["ScalableTargets"]
        # the module's default maximum; the minimum set to the desired 2 (community/README.md says why)
        assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 10)
        assert aas.list_tags_for_resource(ResourceARN=target["ScalableTargetARN"])["Tags"] == {}
        policies = aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=f"service/{NAME}/{NAME}")
        assert sorted(p["PolicyName"] for p in policies["ScalingPolicies"]) == ["cpu", "memory"]

        plan = root.run("plan", "-detailed-exitcode", "-input=false", "-no-color", *root.vars, ok=(0, 2))
        assert plan.returncode == 0, f"plan right after apply is not empty (drift):\n{plan.stdout[-6000:]}"

        root.run("destroy", "-auto-approve", "-input=false", "-no-color", *root.vars, timeout=900)
        destroyed = True
        wait_until(lambda: all(t["lastStatus"] == "STOPPED"
                               for t in ecs.describe_tasks(cluster=NAME, tasks=task_arns)["tasks"]), 120,
                   "the community tasks to stop", step=1.0)
        wait_until(lambda: _get(url)[0] == 0, 60, "the community listener to close", step=1.0)
        assert not [lb for lb in deployed.client("elbv2").describe_load_balancers()["LoadBalancers"]
                    if lb["LoadBalancerName"] == NAME]
        assert root.run("state", "list", ok=(0,)).stdout.strip() == ""
    finally:
        if not destroyed:
            root.run("destroy", "-auto-approve", "-input=false", "-no-color", *root.vars, timeout=900, ok=(0, 1))
    cold = getattr(deployed, "cold_deploy_seconds", None)
    print(f"community modules: terraform apply {apply_seconds:.1f}s; this project's cold "
          f"`inv deploy --env=local` {cold:.1f}s" if cold else f"community apply {apply_seconds:.1f}s")
    # the shared stack is untouched, its tree too
    assert deployed.get("/")[0] == 200
    assert deployed.git("status", "--porcelain") == ""
