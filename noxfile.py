"""The project's menu for CI: `nox -l`; `nox` runs the default sessions.

Slow or machine-heavy sessions (e2e, container, bench) are not in the default
run; CI runs them by name (`nox -s e2e`).

Every session installs exactly its dependency groups (pyproject.toml) at the
versions in uv.lock, with `uv sync --locked`: nothing is resolved at test time,
a stale lock fails the session, and uv's cache makes a session's install a copy
of what the first one downloaded, not a second download or build.
"""

from __future__ import annotations

import os
import shutil

import nox

PYTHON = os.environ.get("NOX_PYTHON", "3.11")

nox.options.sessions = ["lint", "typecheck", "tests", "terraform", "checkov", "actionlint"]
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False


def _sync(session: nox.Session, *groups: str) -> None:
    """Install these dependency groups from uv.lock into the session's environment (and nothing else)."""
    if session.venv_backend != "uv":
        session.install("uv>=0.13")  # nox fell back to virtualenv: uv still installs from the lock
    args = ["uv", "sync", "--locked", "--no-default-groups", *(f"--group={group}" for group in groups)]
    session.run_install(*args, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location}, silent=True,
                        external=True)


def _terraform(session: nox.Session) -> str:
    tf = os.environ.get("TF_BINARY", "terraform")
    if not shutil.which(tf):
        session.error(f"{tf} not found: install Terraform >= 1.10 or set TF_BINARY")
    return tf


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """flake8 over the Python code."""
    _sync(session, "lint")
    session.run("flake8", *session.posargs)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy over src/ (settings in pyproject.toml)."""
    _sync(session, "typecheck")
    session.run("mypy", *(session.posargs or ["src"]))


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """pytest: app, ship and the local cloud, without the end-to-end suite, on 4 workers."""
    _sync(session, "test")
    # The tests mostly wait (processes starting, health checks, one-second metric datapoints): on
    # 2 cores, 4 workers pay (README; more made the CPU-bound tests miss their start limits).
    # loadgroup hands out one test at a time, except that the tests of one xdist_group (a
    # module's own local cloud) stay on one worker.
    args = session.posargs or ["-m", "not e2e and not container", "--numprocesses=4", "--dist=loadgroup"]
    session.run("pytest", *args)


@nox.session(python=PYTHON)
def terraform(session: nox.Session) -> None:
    """terraform fmt -check; init (from the committed lock files, offline) + validate + test, per root module."""
    tf = _terraform(session)
    _sync(session, "src")
    session.run(tf, "fmt", "-check", "-recursive", "-diff", "terraform", external=True)
    session.run("python", "-m", "ship.tfcheck", "validate", "test", *session.posargs)


@nox.session(python=PYTHON)
def checkov(session: nox.Session) -> None:
    """checkov over terraform/ with zero failed checks (skips are inline, listed in CHECKOV_SKIPS.md)."""
    _sync(session, "checkov")
    session.run("checkov", "--config-file", ".checkov.yaml", "--directory", "terraform", "--compact", "--quiet",
                *session.posargs)


@nox.session(python=PYTHON)
def actionlint(session: nox.Session) -> None:
    """actionlint over .github/workflows (the workflows call nox and inv, nothing else)."""
    _sync(session, "actionlint")
    session.run("actionlint", "-shellcheck=", *session.posargs)


@nox.session(python=PYTHON, default=False)
def e2e(session: nox.Session) -> None:
    """End to end on the local cloud: Terraform apply, replicas, rollouts, promote, rollback, destroy."""
    _sync(session, "test")
    args = session.posargs or ["-m", "e2e", "-x"]
    session.run("pytest", *args)


@nox.session(python=PYTHON, default=False)
def container(session: nox.Session) -> None:
    """Image build, pytest and flake8 inside it, /health, non-root user, compose; then the e2e suite
    with replicas as containers."""
    _sync(session, "test")
    reason = session.run("python", "-c", "from ship import container_cli; print(container_cli.unavailable_reason())",
                         silent=True).strip()
    if reason:
        session.skip(reason)
    if session.posargs:
        session.run("pytest", *session.posargs)
        return
    session.run("pytest", "-m", "container")
    session.run("pytest", "-m", "e2e", "-x", "tests/e2e", env={"SHIP_LOCAL_RUNTIME": "container"})


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks (figures, not pass/fail): gunicorn throughput, the local load balancer against HAProxy."""
    session.run("bash", ".ci/bench-setup.sh", external=True)  # wrk and HAProxy from Debian
    _sync(session, "test")
    session.run("python", "benchmarks/gunicorn_throughput.py", *session.posargs)
    session.run("python", "benchmarks/lb_overhead.py")
