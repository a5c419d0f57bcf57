"""Make one environment run the very image another one runs: same digest, no rebuild."""

from __future__ import annotations

from ship.actions import Options
from ship.actions.deploy import deploy_image
from ship.aws import Session
from ship.config import Environment
from ship.errors import ShipError
from ship.queries import current_service, target_of, task_definition
from ship.registry import Registry, parse_image_uri


def running_image(env: Environment, session: Session) -> tuple[str, str]:
    """(digest, tag) of the image the environment's service runs now."""
    try:
        svc = current_service(session, target_of(env))
    except ShipError:
        raise ShipError(f"nothing runs in {env.name}: deploy there first (inv release --env={env.name})") from None
    if svc.running == 0:
        raise ShipError(f"nothing runs in {env.name} (0 running tasks); deploy there first")
    uri = task_definition(session, svc.task_definition).image(svc.container_name)
    _, repo, tag, digest = parse_image_uri(uri)
    registry = Registry(session, repo)
    ref = registry.find(digest=digest) if digest else registry.find(tag=tag)
    tags = [t for t in ref.tags if t]
    return ref.digest, (tag or (tags[0] if tags else ref.digest.split(":")[1][:12]))


def promote(source: Environment, dest: Environment, opts: Options, echo=print, expect_digest: str | None = None):
    if source.name == dest.name:
        raise ShipError("promote needs two different environments (--from and --to)")
    src_session, dst_session = Session(source), Session(dest)
    digest, tag = running_image(source, src_session)
    src_registry = Registry(src_session, source.repository_name)
    dst_registry = Registry(dst_session, dest.repository_name)
    if expect_digest and expect_digest != digest:
        raise ShipError(f"{source.name} runs {digest}, not the expected {expect_digest}; not promoting")
    ref = src_registry.find(digest=digest)
    echo(f"{source.name} runs {tag} ({digest})")
    if opts.dry_run:
        echo(f"dry run: would retag {digest[:19]}… as {tag} in {dest.repository_name} and deploy {dest.name}")
        return None
    promoted = dst_registry.copy_from(src_registry, ref, tag)
    if promoted.digest != digest:
        raise ShipError(f"retag produced {promoted.digest}, not {digest}; not deploying")
    echo(f"retagged in {dest.repository_name}: {tag} -> {promoted.digest} (same manifest, no rebuild)")
    deploy_image(dest, promoted, opts, echo, dst_session)
    return promoted
