"""The two distributions and the lock: what the app's images get, and the pins kept in two places."""

from __future__ import annotations

import re
import tomllib

from helpers import ROOT
from ship import wheelhouse
from ship.container_cli import BUILD_LABEL
from ship.localcloud.emulator import compat

TOOL_ONLY = {"ship", "boto3", "botocore", "moto", "invoke", "python-terraform", "pyyaml", "localstack-client", "uv",
             "pip"}


def _names(requirements: str) -> set[str]:
    return {re.split(r"[=<>;\s\[]", line, maxsplit=1)[0].lower()
            for line in requirements.splitlines() if line and not line.startswith((" ", "#"))}


def _project(path: str) -> dict:
    return tomllib.loads((ROOT / path).read_text())["project"]


def test_the_app_distribution_depends_on_flask_and_gunicorn_only():
    deps = {re.split(r"[=<>~!\[ ]", d, maxsplit=1)[0].lower() for d in _project("distributions/hello/pyproject.toml")
            ["dependencies"]}
    assert deps == {"flask", "gunicorn"}


def test_what_an_image_installs_is_the_app_and_its_dependencies_alone():
    reqs = wheelhouse.requirements(ROOT, wheelhouse.APP)
    names = _names(reqs)
    assert {"flask", "gunicorn", "werkzeug", "jinja2"} <= names
    assert not names & TOOL_ONLY, names & TOOL_ONLY
    # Every requirement is pinned to one version and to the hashes of uv.lock.
    lines = [ln for ln in reqs.splitlines() if ln and not ln.startswith((" ", "#"))]
    assert all("==" in ln for ln in lines), lines
    assert reqs.count("--hash=sha256:") >= len(lines)


def test_the_tool_requires_the_moto_versions_its_adapter_accepts():
    moto = [d for d in _project("distributions/ship/pyproject.toml")["dependencies"] if d.startswith("moto")]
    low = ".".join(map(str, compat.MOTO_MIN))
    high = ".".join(map(str, compat.MOTO_MAX_EXCLUSIVE))
    assert moto == [f"moto[server]>={low},<{high}"]


def test_the_dockerfile_installs_the_uv_that_uv_lock_pins():
    dockerfile = (ROOT / "Dockerfile").read_text()
    pinned = re.search(r"^ARG UV_VERSION=(\S+)$", dockerfile, re.M)
    assert pinned, "the Dockerfile's builder must pin UV_VERSION"
    assert pinned.group(1) == wheelhouse.locked_version(ROOT, "uv")


def test_every_image_a_build_of_the_dockerfile_commits_carries_the_build_label():
    """The first stage sets it before any step, and every other stage starts from a stage of the
    file: each step's image, the build cache among them, carries it (container_cli.build_cache)."""
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line and not line.startswith("#")]
    froms = [line.split() for line in lines if line.startswith("FROM ")]
    assert all(len(words) == 4 and words[2] == "AS" for words in froms), froms
    assert lines[lines.index(" ".join(froms[0])) + 1] == f'LABEL {BUILD_LABEL}="1"'
    stages = [words[3] for words in froms]
    assert all(words[1] in stages[:i] for i, words in enumerate(froms) if i), froms


def test_ci_runs_exactly_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    quickstart = readme[readme.index("## Quickstart"):readme.index("## Python packages")]
    commands = re.findall(r"```sh\n(.+?)\n```", quickstart)
    assert len(commands) == 2 and commands[0].endswith("inv deploy --env=local")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == commands[1]
