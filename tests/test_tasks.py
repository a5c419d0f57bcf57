"""The Invoke menu, run for real."""

import subprocess
import sys
from pathlib import Path

from invoke import Collection
from invoke.loader import FilesystemLoader

from helpers import ROOT

INV = str(Path(sys.executable).parent / "inv")


def run(*args, **kwargs):
    return subprocess.run([INV, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, **kwargs)


def test_list_shows_the_menu():
    out = run("--list").stdout
    for name in ("test", "lint", "build", "deploy", "release", "promote", "rollback", "redeploy", "status", "logs",
                 "prune", "bootstrap", "destroy", "infra.plan", "infra.apply", "local.up", "local.down"):
        assert f"  {name} " in out or f"  {name}\n" in out, name


def _collection():
    """The menu as Invoke itself loads it from tasks.py (the same loader `inv` uses)."""
    module, _parent = FilesystemLoader(start=str(ROOT)).load("tasks")
    return Collection.from_module(module)


def test_every_task_has_help_for_every_argument():
    ns = _collection()
    assert len(ns.task_names) > 20
    missing = {name: [a.name for a in ns[name].get_arguments() if not (a.help or "").strip()]
               for name in ns.task_names}
    assert {name: args for name, args in missing.items() if args} == {}
    undocumented = [name for name in ns.task_names if not (ns[name].__doc__ or "").strip()]
    assert undocumented == []


def test_help_of_a_task_shows_each_argument_with_its_help():
    ns = _collection()
    out = run("--help", "deploy").stdout
    for arg in ns["deploy"].get_arguments():
        assert f"--{arg.name}" in out and arg.help.split()[0] in out, arg.name


def test_inv_test_runs_flake8_and_pytest_for_real():
    result = run("test", "--pytest-args=tests/test_domain.py -q -p no:cacheprovider")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flake8" in result.stdout + result.stderr
    assert " passed" in result.stdout


def test_unknown_environment_is_one_line_and_exit_1():
    result = run("status", "--env=nope")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown environment 'nope'" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_missing_env_flag_is_one_line():
    result = run("status")
    assert result.returncode == 2
    assert "say which environment" in result.stderr and "Traceback" not in result.stderr
