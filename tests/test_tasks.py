"""The Invoke menu, run for real."""

import os
import subprocess
import sys
from pathlib import Path

from invoke import Collection, Config, Context
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


# ---------------------------------------------------------------- defaults in Invoke's configuration

def _tasks():
    module, _parent = FilesystemLoader(start=str(ROOT)).load("tasks")
    return module


def _context(project: Path) -> Context:
    """A context configured the way `inv` configures one: the collection's configuration, then
    ``project``/invoke.yaml (the project file beside tasks.py), then INVOKE_* variables."""
    config = Config(project_location=str(project))
    config.load_collection(_collection().configuration())
    config.load_project()
    config.load_shell_env()
    return Context(config)


def test_defaults_live_in_the_collections_configuration(tmp_path):
    tasks, c = _tasks(), _context(tmp_path)
    assert dict(c.config.ship) == tasks.DEFAULTS
    assert tasks._opts(c).timeout == 900.0
    assert tasks._opts(c, key="dev_timeout").timeout == 300.0
    assert tasks._opts(c, timeout="45").timeout == 45.0      # a flag wins over any default


def test_an_invoke_variable_changes_a_default(tmp_path, monkeypatch):
    monkeypatch.setenv("INVOKE_SHIP_ROLLOUT_TIMEOUT", "600")
    monkeypatch.setenv("INVOKE_SHIP_BENCH_CONNECTIONS", "4")
    tasks, c = _tasks(), _context(tmp_path)
    assert tasks._opts(c).timeout == 600.0
    assert tasks._whole_default(c, "bench_connections") == 4
    assert tasks._opts(c, timeout="45").timeout == 45.0


def test_invoke_yaml_changes_a_default(tmp_path):
    (tmp_path / "invoke.yaml").write_text("ship:\n  dev_timeout: 120\n  logs_since: 2h\n")
    tasks, c = _tasks(), _context(tmp_path)
    assert tasks._opts(c, key="dev_timeout").timeout == 120.0
    assert tasks._default(c, "logs_since") == "2h"
    assert tasks._opts(c).timeout == 900.0                   # the others keep theirs


def test_inv_reads_defaults_from_invoke_variables_and_config_files(tmp_path):
    """Through `inv` itself: a bad configured default is refused in one line naming where it came from."""
    environ = {**os.environ, "INVOKE_SHIP_LOGS_SINCE": "soon"}
    result = run("logs", "--env=local", env=environ)
    assert result.returncode == 1 and result.stderr.strip() == (
        "error: --since='soon' is not a duration: use e.g. 30s, 10m, 2h or 1d"), result.stderr
    result = run("run", "--env=local", "--", "true", env={**os.environ, "INVOKE_SHIP_RUN_TIMEOUT": "0"})
    assert result.returncode == 1 and result.stderr.strip() == "error: ship.run_timeout=0 must be at least 1", \
        result.stderr
    result = run("release", "--env=local", env={**os.environ, "INVOKE_SHIP_ROLLOUT_TIMEOUT": "soon"})
    assert result.returncode == 1 and result.stderr.strip() == (
        "error: ship.rollout_timeout='soon' is not a whole number: give e.g. ship.rollout_timeout=900"), result.stderr
    config = tmp_path / "invoke.yaml"
    config.write_text("ship:\n  logs_since: later\n")
    result = run("-f", str(config), "logs", "--env=local")
    assert result.returncode == 1 and "--since='later' is not a duration" in result.stderr, result.stderr
