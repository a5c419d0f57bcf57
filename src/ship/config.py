"""Per-environment settings from terraform/environments.yaml.

Terraform reads the same file with yamldecode(); ship reads it to know the
region, whether an environment lives on the local emulator, and where its
state goes. Both apply the same shallow merge: ``defaults`` then the
environment's own keys.

The whole file is checked (``ship.settings``: one table of every key) before
anything is built or started, and every problem is reported at once, with its
line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ship import paths, settings
from ship.errors import ShipError
from ship.yamlfile import Document, YamlError

DEFAULT_LOCAL_ENDPOINT = "http://127.0.0.1:4566"


@dataclass(frozen=True)
class Environment:
    name: str
    settings: dict = field(repr=False)

    def __getitem__(self, key):
        return self.settings[key]

    @property
    def region(self) -> str:
        return self.settings["aws_region"]

    @property
    def emulator(self) -> bool:
        return bool(self.settings["emulator"])

    @property
    def state_bucket(self) -> str:
        return self.settings["state_bucket"]

    @property
    def state_key(self) -> str:
        return f"env/{self.name}/terraform.tfstate"

    @property
    def prefix(self) -> str:
        return f"{self.settings['app_name']}-{self.name}"

    @property
    def cluster_name(self) -> str:
        return self.prefix

    @property
    def service_name(self) -> str:
        return self.prefix

    @property
    def repository_name(self) -> str:
        return self.prefix

    @property
    def endpoint_url(self) -> str | None:
        """The emulator's endpoint for emulator environments, else None (real AWS)."""
        if not self.emulator:
            return None
        return os.environ.get("SHIP_LOCAL_ENDPOINT") or local_endpoint()


def local_port() -> int:
    raw = os.environ.get("SHIP_LOCAL_PORT", "4566")
    try:
        port = int(raw)
    except ValueError:
        raise ShipError(f"SHIP_LOCAL_PORT={raw!r} is not a port number; unset it or give e.g. 4566") from None
    if not 1 <= port <= 65535:
        raise ShipError(f"SHIP_LOCAL_PORT={raw!r} is out of range; give a port between 1 and 65535")
    return port


def local_endpoint() -> str:
    return f"http://127.0.0.1:{local_port()}"


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(paths.project_root()))
    except ValueError:
        return str(path)


def _parse(path: Path) -> tuple[Document, settings.Parsed]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ShipError(f"{path} is missing; restore it from git (git checkout -- {path.name})") from None
    try:
        doc = Document(text)
        parsed = settings.parse(doc)
    except YamlError as err:
        where = f" at line {err.line}" if err.line else ""
        raise ShipError(f"{_display(path)} is not valid YAML{where}: {err.problem}; fix the file and retry") from None
    return doc, parsed


def _report(path: Path, problems: list[settings.Problem]) -> None:
    if problems:
        lines = sorted(set(problems), key=lambda p: (p.line or 0, p.message))
        what = "problem" if len(lines) == 1 else f"{len(lines)} problems"
        raise ShipError(f"{_display(path)}: {what}: " + "; ".join(str(p) for p in lines))


def environment_names(path: Path | None = None) -> list[str]:
    path = path or paths.environments_file()
    _, parsed = _parse(path)
    if not parsed.environments:
        _report(path, parsed.problems)
    return sorted(parsed.environments)


def load(name: str, path: Path | None = None) -> Environment:
    """The merged settings of environment ``name``, after checking the whole file; one line for bad input."""
    path = path or paths.environments_file()
    _, parsed = _parse(path)
    problems = list(parsed.problems)
    if parsed.environments and name not in parsed.environments:
        valid = ", ".join(sorted(parsed.environments))
        raise ShipError(f"unknown environment {name!r}: valid environments are {valid}")
    problems += settings.check_all(parsed, local_ceiling())
    if name in parsed.environments:
        problems += settings.check_deployable(name, parsed)
    _report(path, problems)
    return Environment(name, parsed.merged(name))


def local_ceiling() -> int:
    """Most replicas an emulator environment may ask for (they all run on this machine)."""
    raw = os.environ.get("SHIP_LOCAL_MAX_DESIRED_COUNT", str(settings.DEFAULT_LOCAL_CEILING))
    try:
        value = int(raw)
    except ValueError:
        raise ShipError(f"SHIP_LOCAL_MAX_DESIRED_COUNT={raw!r} is not a whole number; unset it or give e.g. 10") \
            from None
    if value < 1:
        raise ShipError(f"SHIP_LOCAL_MAX_DESIRED_COUNT={raw!r} must be at least 1")
    return value
