"""The commit being shipped."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ship.errors import ShipError


@dataclass(frozen=True)
class Commit:
    sha: str
    short: str
    dirty: bool
    timestamp: int

    @property
    def tag(self) -> str:
        """The image tag: the short sha, plus -dirty for an uncommitted tree."""
        return f"{self.short}-dirty" if self.dirty else self.short


def _git(root: Path, *args: str) -> str:
    if not shutil.which("git"):
        raise ShipError("git not found on PATH: install git (apt-get install git)")
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise ShipError(f"git {' '.join(args)} failed in {root}: {result.stderr.strip().splitlines()[-1:]}")
    return result.stdout.strip()


def dirty_files(root: Path) -> list[str]:
    out = _git(root, "status", "--porcelain", "--untracked-files=normal")
    return [line[3:] for line in out.splitlines() if line.strip()]


def head(root: Path) -> Commit:
    try:
        sha = _git(root, "rev-parse", "HEAD")
    except ShipError:
        raise ShipError(f"{root} has no commit yet: commit your work first (git commit)") from None
    short = _git(root, "rev-parse", "--short=12", "HEAD")
    timestamp = int(_git(root, "show", "-s", "--format=%ct", "HEAD"))
    return Commit(sha=sha, short=short, dirty=bool(dirty_files(root)), timestamp=timestamp)


def require_clean(root: Path, what: str = "release") -> Commit:
    commit = head(root)
    if commit.dirty:
        files = dirty_files(root)
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        raise ShipError(f"refusing to {what} a dirty tree ({shown}): commit or stash your changes first")
    return commit


def all_commits(root: Path) -> list[str]:
    """Every commit ``root`` knows: on any ref or in a reflog (amended and reset ones too)."""
    return _git(root, "rev-list", "--all", "--reflog").split()


def export(root: Path, dest: Path, rev: str = "HEAD") -> None:
    """Write the tree of ``rev`` (tracked files only) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=root, capture_output=True)
    if archive.returncode != 0:
        raise ShipError(f"git archive {rev} failed: {archive.stderr.decode().strip()}")
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
