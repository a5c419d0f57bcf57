"""The commit's image, of either kind: built once (a process image, ``ship.artifact``, or a
container image, ``ship.container_image``), found in the registry or pushed to it under its
immutable tag, and prepared ahead on the local cloud. ``release``, ``deploy`` and ``dev`` use it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ship import artifact, git, paths
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


@dataclass
class Built:
    """The commit's image: built here (``image``, not pushed yet), or found in the registry (``ref``)."""

    tag: str
    kind: str
    image: artifact.Image | None = None
    ref: ImageRef | None = None
    seconds: float = 0.0

    @property
    def digest(self) -> str:
        return self.ref.digest if self.ref else self.built_image.digest

    @property
    def built_image(self) -> artifact.Image:
        if self.image is None:
            raise ShipError(f"image {self.tag} was found in the registry, not built")
        return self.image


def build(env: Environment, session: Session | None, echo=print, root: Path | None = None,
          allow_dirty: bool = False) -> Built:
    """Build the commit's image once. With a ``session``, an image the registry already has
    under the same tag is not rebuilt. A dirty tree (emulator environments only) is tagged
    ``<commit>-dirty-<content digest>``: the same tree is the same tag, and never the commit's."""
    root = root or paths.project_root()
    commit = git.head(root)
    if commit.dirty and not allow_dirty:
        git.require_clean(root)
    kind = image_kind(env)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ship-src-") as tmp:
        source = Path(tmp)
        if commit.dirty:
            # Local iteration only: the working tree, tagged so it can never pass for the commit.
            tag = f"{commit.tag}-{_copy_worktree(root, source)[:8]}"
        else:
            tag = commit.tag
        existing = Registry(session, env.repository_name).tag_exists(tag) if session is not None else None
        if existing:
            echo(f"image {tag} already in {env.repository_name} ({existing.digest[:19]}…); not rebuilding")
            return Built(tag, kind, ref=existing)
        if not commit.dirty:
            git.export(root, source)
        if kind == "process":
            image = artifact.build_process_image(source, commit, tag=tag)
        else:
            from ship import container_image

            image = container_image.build_image(source, commit, tag=tag)
    seconds = time.monotonic() - started
    echo(f"built {kind} image {tag} ({image.digest[:19]}…) in {seconds:.1f}s")
    return Built(tag, kind, image=image, seconds=seconds)


def push(env: Environment, session: Session, built: Built, echo=print) -> ImageRef:
    """Push a built image under its tag (a no-op for one found in the registry)."""
    if built.ref is not None:
        return built.ref
    image = built.built_image
    registry = Registry(session, env.repository_name)
    registry.repository_uri()  # fails with a hint when the repository is missing
    existing = registry.tag_exists(built.tag)
    if existing and existing.digest == image.digest:
        return existing
    if image.kind == "process":
        ref = registry.push_manifest(image.manifest, image.media_type, built.tag, image.blobs)
    else:
        from ship import container_image

        ref = container_image.push(image, registry, env, session)
    echo(f"pushed {ref.uri} as {built.tag}")
    return ref


def build_and_push(env: Environment, session: Session, echo=print, root: Path | None = None,
                   allow_dirty: bool = False) -> ImageRef:
    """The commit's image in the environment's registry; built only if it is not there yet."""
    Registry(session, env.repository_name).repository_uri()  # fails with a hint when the repository is missing
    return push(env, session, build(env, session, echo, root, allow_dirty), echo)


def _copy_worktree(root: Path, dest: Path) -> str:
    """Copy the working tree (tracked and untracked, not ignored); returns its content digest."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, capture_output=True)
    digest = hashlib.sha256()
    for name in sorted(set(filter(None, listed.stdout.decode().split("\0")))):
        src = root / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
            digest.update(name.encode() + b"\0" + (dest / name).read_bytes() + b"\0")
    return digest.hexdigest()


def prepare_image(ref: ImageRef, echo=print) -> None:
    """Ask the local cloud to unpack an image now, not when its first task starts."""
    from ship.config import local_port

    req = urllib.request.Request(f"http://127.0.0.1:{local_port()}/_ship/images/prepare",
                                 data=json.dumps({"image": ref.uri}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            resp.read()
    except (OSError, urllib.error.URLError) as exc:   # only an optimisation: the task start does it too
        echo(f"note: the local cloud did not prepare {ref.digest[:19]}… ahead ({exc})")


def remove_engine_images(app: str, commits: list[str]) -> int:
    """Remove the container engine's images of ``app`` built from these commits (``<short sha>``
    and ``<short sha>-dirty-<digest>``, as built and as tagged for a registry); others are not
    touched. For scripts and test sessions that build in a repository of their own. Returns how
    many were removed (0 without an engine)."""
    from ship import container_cli

    engine = container_cli.detect()
    if engine is None:
        return 0

    def built_from_commits(tag: str) -> bool:
        short = tag.split("-dirty", 1)[0]
        return len(short) >= 12 and any(sha.startswith(short) for sha in commits)

    removed = 0
    for image in engine.images():
        if image["repository"].rsplit("/", 1)[-1] == app and built_from_commits(image["tag"]):
            engine.rm_image(f"{image['repository']}:{image['tag']}", force=True)
            removed += 1
    return removed


def build_cache() -> set[str]:
    """The container engine's build cache: the untagged images builds of the project's Dockerfile
    left (``container_cli.build_cache``); empty without an engine."""
    from ship import container_cli

    engine = container_cli.detect()
    return engine.build_cache() if engine is not None else set()


def remove_build_cache(before: Iterable[str]) -> int:
    """Remove the build cache but what it held ``before`` (the builds since made the rest), as the
    test sessions and benchmarks do when they end. Returns how many images went."""
    from ship import container_cli

    engine = container_cli.detect()
    if engine is None:
        return 0
    return engine.remove_unused_images(engine.build_cache() - set(before))
