"""A warm deploy leaves Terraform out only when nothing it reads changed since the last successful
apply (ship.applied); a changed .tf file or environment setting still applies; drift made outside
Terraform is not seen by the fingerprint, and `inv infra.apply` reconciles it.

On the shared stack (`deployed`), which each test leaves as it found it.

CI runs this file in the process runtime only (`ONE_RUNTIME` in noxfile.py): its subject is not how
replicas run."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

SKIPPED = "Terraform skipped: nothing Terraform reads changed since the last successful apply"


@pytest.fixture
def recorded(deployed):
    """The stack with a record of its last apply (an earlier test may have applied without one)."""
    result = deployed.inv("deploy", "--env=local")
    if SKIPPED not in result.stdout:
        assert "Apply complete!" in result.stdout, result.stdout
    return deployed


def _edited(stack, path: str, old: str, new: str) -> str:
    target = stack.repo / path
    original = target.read_text()
    assert old in original, f"{old!r} not in {path}"
    target.write_text(original.replace(old, new, 1))
    return original


def test_a_deploy_with_nothing_changed_skips_terraform(recorded):
    stack = recorded
    result = stack.inv("deploy", "--env=local")
    assert SKIPPED in result.stdout, result.stdout
    assert "terraform runs" not in result.stdout and "Apply complete!" not in result.stdout
    # the outputs are still shown once, read from the state
    assert any(ln.strip().startswith("cluster_name") and "hello-local" in ln for ln in result.stdout.splitlines())
    assert result.stdout.strip().splitlines()[-1] == stack.url


def test_a_changed_tf_file_runs_terraform(recorded):
    stack = recorded
    original = _edited(stack, "terraform/outputs.tf", "output ", "# an edit Terraform's plan ignores\noutput ")
    try:
        result = stack.inv("deploy", "--env=local")
        assert "terraform runs: the Terraform configuration changed" in result.stdout, result.stdout
        # the edit itself changes no resource, but the tree it dirtied may give the image a new digest,
        # and with it Terraform's own task definition: the apply is what counts, not its size
        assert "Apply complete!" in result.stdout, result.stdout
        assert SKIPPED in stack.inv("deploy", "--env=local").stdout     # the new apply was recorded
    finally:
        (stack.repo / "terraform/outputs.tf").write_text(original)
    assert "terraform runs: the Terraform configuration changed" in stack.inv("deploy", "--env=local").stdout


def test_a_changed_environment_setting_is_applied(recorded):
    stack = recorded
    logs = stack.client("logs")

    def retention() -> int | None:
        # the prefix also matches other environments' groups (/ecs/hello-local-prod): pick by name
        groups = logs.describe_log_groups(logGroupNamePrefix="/ecs/hello-local")["logGroups"]
        [group] = [g for g in groups if g["logGroupName"] == "/ecs/hello-local"]
        return group.get("retentionInDays")

    assert retention() == 1
    original = _edited(stack, "terraform/environments.yaml", "    log_retention_days: 1\n",
                       "    log_retention_days: 3\n")
    try:
        result = stack.inv("deploy", "--env=local")
        assert "terraform runs: the environment's settings changed" in result.stdout, result.stdout
        assert "0 added, 1 changed, 0 destroyed" in result.stdout
        assert retention() == 3
    finally:
        (stack.repo / "terraform/environments.yaml").write_text(original)
    result = stack.inv("deploy", "--env=local")
    assert "terraform runs: the environment's settings changed" in result.stdout
    assert retention() == 1


def test_drift_is_not_seen_by_the_fingerprint_and_infra_apply_reconciles_it(recorded):
    stack = recorded
    elbv2 = stack.client("elbv2")
    [tg] = elbv2.describe_target_groups(Names=["hello-local"])["TargetGroups"]
    interval = tg["HealthCheckIntervalSeconds"]
    elbv2.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckIntervalSeconds=interval + 25)
    try:
        # a change made outside Terraform: documented as what the fingerprint cannot see
        assert SKIPPED in stack.inv("deploy", "--env=local").stdout
        [now] = elbv2.describe_target_groups(Names=["hello-local"])["TargetGroups"]
        assert now["HealthCheckIntervalSeconds"] == interval + 25
        result = stack.inv("infra.apply", "--env=local")
        assert "0 added, 1 changed, 0 destroyed" in result.stdout, result.stdout
        [now] = elbv2.describe_target_groups(Names=["hello-local"])["TargetGroups"]
        assert now["HealthCheckIntervalSeconds"] == interval
    finally:
        elbv2.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckIntervalSeconds=interval)
    assert SKIPPED in stack.inv("deploy", "--env=local").stdout       # infra.apply recorded its apply
