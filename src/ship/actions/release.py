"""Build once per commit, push under the immutable commit tag, roll out."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ship import artifact, git, paths
from ship.actions import Options
from ship.actions.deploy import deploy_image
from ship.aws import Session
from ship.config import Environment
from ship.errors import ShipError
from ship.registry import ImageRef, Registry


def image_kind(env: Environment) -> str:
    """'container' or 'process': what this environment's images are."""
    choice = os.environ.get("SHIP_LOCAL_RUNTIME", "process") if env.emulator else "container"
    if choice not in ("process", "container"):
        raise ShipError(f"SHIP_LOCAL_RUNTIME={choice!r} is not one of process, container")
    return choice


def build_and_push(env: Environment, session: Session, echo=print, root: Path | None = None,
                   allow_dirty: bool = False) -> ImageRef:
    """The commit's image in the environment's registry; built only if it is not there yet."""
    root = root or paths.project_root()
    commit = git.head(root)
    if commit.dirty and not allow_dirty:
        git.require_clean(root)
    registry = Registry(session, env.repository_name)
    registry.repository_uri()  # fails with a hint when the repository is missing
    kind = image_kind(env)
    if not commit.dirty:
        existing = registry.tag_exists(commit.tag)
        if existing:
            echo(f"image {commit.tag} already in {env.repository_name} ({existing.digest[:19]}…); not rebuilding")
            return existing
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ship-src-") as tmp:
        source = Path(tmp)
        if commit.dirty:
            # Local iteration only: the working tree, tagged so it can never pass for the commit.
            _copy_worktree(root, source)
        else:
            git.export(root, source)
        if kind == "process":
            image = artifact.build_process_image(source, commit)
        else:
            from ship import containers

            image = containers.build_image(source, commit)
    if commit.dirty:
        image.tag = f"{commit.tag}-{image.digest.split(':')[1][:8]}"
    echo(f"built {kind} image {image.tag} ({image.digest[:19]}…) in {time.monotonic() - started:.1f}s")
    if image.kind == "process":
        ref = registry.push_manifest(image.manifest, image.media_type, image.tag, image.blobs)
    else:
        from ship import containers

        ref = containers.push(image, registry, env, session)
    echo(f"pushed {ref.uri} as {image.tag}")
    return ref


def _copy_worktree(root: Path, dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        src = root / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def release(env: Environment, opts: Options, echo=print, root: Path | None = None) -> ImageRef | None:
    session = Session(env)
    root = root or paths.project_root()
    git.require_clean(root)
    if opts.dry_run:
        echo(f"dry run: would build {git.head(root).tag}, push it to {env.repository_name} and roll it out")
        return None
    ref = build_and_push(env, session, echo, root)
    deploy_image(env, ref, opts, echo, session)
    return ref
