"""Where things live: the project root, Terraform, and ship's local state."""

from __future__ import annotations

import errno
import os
import tempfile
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


def require_writable(directory: Path) -> Path:
    """Create ``directory`` if needed and prove it takes a file; one line (ShipError) when it cannot."""
    from ship.errors import ShipError

    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        known = {errno.EROFS: "is on a read-only file system", errno.ENOSPC: "is on a full disk"}
        what = known.get(exc.errno or 0, f"is not writable ({exc.strerror})")
        raise ShipError(f"{directory} {what}: ship keeps its state there (Terraform data, the local cloud); "
                        "make it writable or point SHIP_STATE_DIR at a writable directory") from None
    return Path(directory)
