"""Where things live: the project root, Terraform, and ship's local state."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository root (overridable with SHIP_PROJECT_DIR)."""
    override = os.environ.get("SHIP_PROJECT_DIR")
    if override:
        return Path(override).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "terraform").is_dir():
            return parent
    return Path.cwd().resolve()


def terraform_dir() -> Path:
    return project_root() / "terraform"


def environments_file() -> Path:
    return Path(os.environ.get("SHIP_ENVIRONMENTS_FILE") or terraform_dir() / "environments.yaml")


def state_dir() -> Path:
    """ship's working state (local cloud, Terraform data dirs); SHIP_STATE_DIR overrides."""
    override = os.environ.get("SHIP_STATE_DIR")
    return Path(override).resolve() if override else project_root() / ".ship"


def local_cloud_dir() -> Path:
    return state_dir() / "localcloud"


def cache_dir() -> Path:
    """Downloads shared by every checkout and run (SHIP_CACHE_DIR, else $XDG_CACHE_HOME/ship or ~/.cache/ship)."""
    override = os.environ.get("SHIP_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ship"


def build_dir() -> Path:
    return project_root() / "build"
