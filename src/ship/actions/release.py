"""``inv release``: build once per commit, push under the immutable commit tag, roll out."""

from __future__ import annotations

from pathlib import Path

from ship import git, paths
from ship.actions import Options
from ship.actions.deploy import deploy_image
from ship.aws import Session
from ship.config import Environment
from ship.images import build_and_push
from ship.registry import ImageRef


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
