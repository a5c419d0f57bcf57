"""Per-environment settings from terraform/environments.yaml.

Terraform reads the same file with yamldecode(); ship reads it to know the
region, whether an environment lives on the local emulator, and where its
state goes. Both apply the same shallow merge: ``defaults`` then the
environment's own keys.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ship import paths
from ship.errors import ShipError

REQUIRED = {
    "app_name": str,
    "aws_region": str,
    "emulator": bool,
    "state_bucket": str,
    "vpc_cidr": str,
    "container_port": int,
    "cpu": int,
    "memory": int,
    "desired_count": int,
    "health_check_path": str,
    "health_check_interval": int,
    "deregistration_delay": int,
    "task_definitions_to_keep": int,
}

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


def _read(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ShipError(f"{path} is missing; restore it from git (git checkout -- {path.name})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ShipError(f"{path} is not valid YAML{where}: {problem}; fix the file and retry") from None
    if not isinstance(data, dict) or not isinstance(data.get("environments"), dict) or not data["environments"]:
        raise ShipError(f"{path} must have a top-level 'environments' mapping with at least one environment")
    if not isinstance(data.get("defaults", {}), dict):
        raise ShipError(f"{path}: 'defaults' must be a mapping of settings")
    return data


def environment_names(path: Path | None = None) -> list[str]:
    return sorted(_read(path or paths.environments_file())["environments"])


def load(name: str, path: Path | None = None) -> Environment:
    """The merged settings of environment ``name``; one-line errors for bad input."""
    path = path or paths.environments_file()
    data = _read(path)
    envs = data["environments"]
    if name not in envs:
        raise ShipError(f"unknown environment {name!r}: valid environments are {', '.join(sorted(envs))}")
    own = envs[name] or {}
    if not isinstance(own, dict):
        raise ShipError(f"{path}: environment {name!r} must be a mapping of settings")
    merged = {**(data.get("defaults") or {}), **own}
    for key, kind in REQUIRED.items():
        if key not in merged:
            raise ShipError(f"{path}: environment {name!r} lacks {key!r} (set it under defaults or {name})")
        value = merged[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ShipError(f"{path}: {name}.{key} must be an integer, got {value!r}")
        if kind is not int and not isinstance(value, kind):
            raise ShipError(f"{path}: {name}.{key} must be a {kind.__name__}, got {value!r}")
    if not merged["emulator"] and not merged["state_bucket"]:
        raise ShipError(f"{path}: environment {name!r} needs a state_bucket (a globally unique S3 bucket name)")
    try:
        ipaddress.ip_network(merged["vpc_cidr"])
    except ValueError:
        raise ShipError(f"{path}: {name}.vpc_cidr={merged['vpc_cidr']!r} is not a CIDR block") from None
    if merged["desired_count"] < 1 or merged["task_definitions_to_keep"] < 1:
        raise ShipError(f"{path}: {name}.desired_count and task_definitions_to_keep must be at least 1")
    return Environment(name, merged)
