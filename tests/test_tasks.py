"""The Invoke menu, run for real."""

import subprocess
import sys
from pathlib import Path

from helpers import ROOT

INV = str(Path(sys.executable).parent / "inv")


def run(*args, **kwargs):
    return subprocess.run([INV, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, **kwargs)


def test_list_shows_the_menu():
    out = run("--list").stdout
    for name in ("test", "lint", "build", "deploy", "release", "promote", "rollback", "redeploy", "status", "logs",
                 "prune", "bootstrap", "destroy", "infra.plan", "infra.apply", "local.up", "local.down"):
        assert f"  {name} " in out or f"  {name}\n" in out, name


def test_every_task_has_help_for_every_argument():
    out = run("--help", "deploy").stdout
    assert "--env" in out and "environment name" in out and "--tag" in out and "--dry" in out


def test_inv_test_runs_flake8_and_pytest_for_real():
    result = run("test", "--pytest-args=tests/test_domain.py -q -p no:cacheprovider")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flake8" in result.stdout + result.stderr
    assert " passed" in result.stdout


def test_unknown_environment_is_one_line_and_exit_1():
    result = run("status", "--env=nope")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        result.stderr.strip().splitlines()[0]] and "unknown environment 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_env_flag_is_one_line():
    result = run("status")
    assert result.returncode == 2
    assert "say which environment" in result.stderr and "Traceback" not in result.stderr
