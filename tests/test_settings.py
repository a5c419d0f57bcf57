"""environments.yaml is checked whole before anything is built or started: unknown and
duplicate keys, duplicate environments, types, ranges, Fargate task sizes, the local
replica ceiling; every problem at once, each with its line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT
from ship.net import free_port
from ship import config, paths, settings
from ship.errors import ShipError

REAL = paths.environments_file().read_text()
INV = str(Path(sys.executable).parent / "inv")


def variant(tmp_path, *edits: tuple[str, str]) -> Path:
    """The project's file with ``old -> new`` edits (each old text must occur once)."""
    text = REAL
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "environments.yaml"
    path.write_text(text)
    return path


def shown(path: Path) -> str:
    """How a message names a file: relative to the project when inside it (where a nox session's
    temporary directory is), else as given."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def line_of(path: Path, text: str, nth: int = 1) -> int:
    lines = [i + 1 for i, ln in enumerate(path.read_text().splitlines()) if text in ln]
    return lines[nth - 1]


def problems(path: Path, env: str = "local") -> str:
    with pytest.raises(ShipError) as err:
        config.load(env, path)
    return str(err.value)


LOCAL = "  local:\n    emulator: true\n"


@pytest.mark.parametrize("edit, marker, expected", [
    ((LOCAL, LOCAL + "    desird_count: 3\n"), "desird_count",
     "unknown key 'desird_count' in local (did you mean 'desired_count'?)"),
    (("  cpu: 256\n", "  cpu: 256\n  cpus: 512\n"), "cpus:", "unknown key 'cpus' in defaults (did you mean 'cpu'?)"),
    ((LOCAL, LOCAL + "    health_check_intreval: 5\n"), "intreval",
     "did you mean 'health_check_interval'?"),
    (("defaults:\n", "default:\n"), "default:", "unknown top-level key 'default' (did you mean 'defaults'?)"),
    ((LOCAL, LOCAL + "    zzz: 1\n"), "zzz", "unknown key 'zzz' in local; known keys: app_name, aws_region"),
    ((LOCAL, LOCAL + "    emulator: false\n"), "emulator: false",
     "'emulator' is set twice in environments.local (lines"),
    (("  staging:\n", "  local:\n    emulator: true\n  staging:\n"), "  local:",
     "environment 'local' is defined twice (lines"),
    (("  desired_count: 2\n", "  desired_count: two\n"), "desired_count", "defaults.desired_count must be an integer, "
                                                                          "got 'two'"),
    ((LOCAL, "  local:\n    emulator: yes please\n"), "emulator: yes please", "local.emulator must be true or false"),
    (("  container_port: 5000\n", "  container_port: 70000\n"), "container_port",
     "must be between 1 and 65535, got 70000"),
    (("  health_check_interval: 15\n", "  health_check_interval: 1\n"), "health_check_interval: 1",
     "must be between 5 and 300"),
    (("  deregistration_delay: 30\n", "  deregistration_delay: 4000\n"), "deregistration_delay: 4000",
     "must be between 0 and 3600"),
    (("  log_retention_days: 30\n", "  log_retention_days: 2\n"), "log_retention_days: 2",
     "must be a CloudWatch Logs retention (1, 3, 5, 7, 14"),
    (("    vpc_cidr: 10.30.0.0/16\n", "    vpc_cidr: 10.30.0.0/24\n"), "10.30.0.0/24", "must be a /16 to /20 block"),
    (("    vpc_cidr: 10.30.0.0/16\n", "    vpc_cidr: ten\n"), "vpc_cidr: ten", "must be an IPv4 CIDR block"),
    (('  alb_ingress_cidrs: ["0.0.0.0/0"]\n', '  alb_ingress_cidrs: ["everyone"]\n'), "alb_ingress_cidrs",
     "must be a list of IPv4 CIDR blocks"),
    (('  health_check_matcher: "200"\n', '  health_check_matcher: "600"\n'), "health_check_matcher",
     "codes must be between 200 and 499"),
    (("  health_check_path: /health\n", "  health_check_path: health\n"), "health_check_path",
     "must start with /"),
    (("  cpu: 256\n", "  cpu: 300\n"), "cpu: 300", "must be a Fargate CPU size (256, 512, 1024, 2048, 4096, 8192, "
                                                   "16384), got 300"),
    (("  environment_variables: {}\n", "  environment_variables: {1BAD: x}\n"), "environment_variables",
     "which is not an environment variable name"),
    (("  certificate_arn: \"\"", "  certificate_arn: \"mycert\""), "certificate_arn",
     "must be empty or an ACM certificate ARN"),
    (("    vpc_cidr: 10.30.0.0/16\n    health_check_interval: 5\n    health_check_timeout: 2\n",
      "    vpc_cidr: 10.30.0.0/16\n    health_check_interval: 5\n    health_check_timeout: 5\n"),
     "    health_check_timeout: 5",
     "local: health_check_timeout (5) must be less than health_check_interval (5)"),
    (("  app_name: hello\n", "  app_name: hello-world-service-of-ours\n"), "app_name",
     "is longer than 32 characters"),
    # Service Auto Scaling: min <= desired <= max, a policy to scale by, the local ceiling
    ((LOCAL, LOCAL + "    autoscaling: true\n    desired_count: 5\n"), "    desired_count: 5",
     "local: with autoscaling, autoscaling_min_capacity <= desired_count <= autoscaling_max_capacity must hold, "
     "got 2 <= 5 <= 4"),
    ((LOCAL, LOCAL + "    autoscaling: true\n    autoscaling_min_capacity: 3\n"), "  desired_count: 2",
     "got 3 <= 2 <= 4"),
    ((LOCAL, LOCAL + "    autoscaling: true\n    autoscaling_cpu_target: 0\n"), "    autoscaling: true",
     "local: autoscaling needs a policy: set autoscaling_cpu_target, autoscaling_memory_target or "
     "autoscaling_requests_per_target above 0"),
    ((LOCAL, LOCAL + "    autoscaling: true\n    autoscaling_max_capacity: 11\n"), "autoscaling_max_capacity: 11",
     "local: autoscaling_max_capacity 11 could start 11 replicas on this machine"),
    (("  autoscaling_cpu_target: 70 ", "  autoscaling_cpu_target: 170 "), "autoscaling_cpu_target: 170",
     "defaults.autoscaling_cpu_target must be between 0 and 100, got 170"),
    (("  autoscaling_scale_in_cooldown: 300 ", "  autoscaling_scale_in_cooldown: -1 "), "scale_in_cooldown: -1",
     "must be between 0 and 86400, got -1"),
])
def test_each_mistake_is_named_with_its_line(tmp_path, edit, marker, expected):
    path = variant(tmp_path, edit)
    message = problems(path)
    assert expected in message, message
    nth = 2 if marker in ("emulator: false", "  local:") else 1
    assert f"line {line_of(path, marker.rstrip(chr(10)), nth)}: " in message, message
    assert "\n" not in message and message.startswith(f"{shown(path)}: ")


# The ECS Developer Guide's table of Fargate task sizes, spot-checked at its edges.
@pytest.mark.parametrize("cpu, memory, valid", [
    (256, 512, True), (256, 2048, True), (256, 3072, False), (256, 4096, False),
    (512, 1024, True), (512, 4096, True), (512, 512, False), (512, 5120, False),
    (1024, 2048, True), (1024, 8192, True), (1024, 1024, False), (1024, 9216, False),
    (2048, 4096, True), (2048, 16384, True), (2048, 17408, False),
    (4096, 8192, True), (4096, 30720, True), (4096, 31744, False),
    (8192, 16384, True), (8192, 20480, True), (8192, 61440, True), (8192, 17408, False), (8192, 65536, False),
    (16384, 32768, True), (16384, 40960, True), (16384, 122880, True), (16384, 36864, False),
])
def test_fargate_task_sizes(tmp_path, cpu, memory, valid):
    path = variant(tmp_path, ("  cpu: 256\n  memory: 512\n", f"  cpu: {cpu}\n  memory: {memory}\n"))
    if valid:
        assert config.load("staging", path)["memory"] == memory
    else:
        message = problems(path, "staging")
        assert f"Fargate has no task with cpu {cpu} and memory {memory}" in message
        assert f"line {line_of(path, f'memory: {memory}')}: " in message


def test_local_replica_ceiling_is_configurable(tmp_path, monkeypatch):
    path = variant(tmp_path, (LOCAL, LOCAL + "    desired_count: 1000\n"))
    message = problems(path, "staging")  # a mistake anywhere in the file stops every environment
    assert "local: desired_count 1000 would start 1000 replicas on this machine; emulator environments allow " \
           "at most 10 (SHIP_LOCAL_MAX_DESIRED_COUNT raises it)" in message
    monkeypatch.setenv("SHIP_LOCAL_MAX_DESIRED_COUNT", "1000")
    assert config.load("local", path)["desired_count"] == 1000
    # AWS environments are not bound by the local ceiling
    monkeypatch.delenv("SHIP_LOCAL_MAX_DESIRED_COUNT")
    aws = variant(tmp_path, ("    vpc_cidr: 10.40.0.0/16\n", "    vpc_cidr: 10.40.0.0/16\n    desired_count: 1000\n"))
    assert config.load("staging", aws)["desired_count"] == 1000


def test_autoscaling_settings_are_checked_only_when_it_is_on(tmp_path):
    off = variant(tmp_path, (LOCAL, LOCAL + "    desired_count: 5\n"))     # 5 > max 4: no matter while off
    assert config.load("local", off)["desired_count"] == 5
    on = variant(tmp_path, (LOCAL, LOCAL + "    autoscaling: true\n    autoscaling_requests_per_target: 600\n"))
    merged = config.load("local", on)
    assert merged["autoscaling"] is True and merged["autoscaling_requests_per_target"] == 600


def test_all_problems_are_reported_together(tmp_path):
    path = variant(tmp_path, (LOCAL, LOCAL + "    desird_count: 3\n    cpu: 333\n"),
                   ("  production:\n", "  production:\n    memory: lots\n"),
                   ("  staging:\n", "  local:\n  staging:\n"))
    message = problems(path, "production")
    assert message.startswith(f"{shown(path)}: 4 problems: line ")
    lines = [int(n) for n in re.findall(r"line (\d+): ", message)]
    assert lines == sorted(lines) and len(lines) == 4
    for part in ("unknown key 'desird_count'", "local.cpu must be a Fargate CPU size", "production.memory must be "
                 "an integer, got 'lots'", "environment 'local' is defined twice"):
        assert part in message


def test_the_schema_covers_what_terraform_reads():
    """Every key Terraform reads from the merged settings is in the table, and the project's file is valid."""
    tf = "\n".join(p.read_text() for p in (ROOT / "terraform").glob("*.tf"))
    used = set(re.findall(r"local\.settings\.([a-z_]+)", tf))
    assert used <= set(settings.SETTINGS), used - set(settings.SETTINGS)
    for name in config.environment_names():
        config.load(name)


def test_checked_before_anything_starts(tmp_path):
    path = variant(tmp_path, ("  cpu: 256\n", "  cpu: 300\n"))
    state, port = tmp_path / "state", free_port()
    env = dict(os.environ, SHIP_ENVIRONMENTS_FILE=str(path), SHIP_STATE_DIR=str(state), SHIP_LOCAL_PORT=str(port))
    result = subprocess.run([INV, "deploy", "--env=local"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "must be a Fargate CPU size" in result.stderr
    assert not state.exists()  # no local cloud, no lock, no Terraform data
