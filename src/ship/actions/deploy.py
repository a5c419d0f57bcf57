"""Deploy an image that is already in the environment's registry."""

from __future__ import annotations

from ship.actions import Options
from ship.actions.prune import prune
from ship.actions.rollout import roll_to
from ship.aws import Session
from ship.config import Environment
from ship.domain import family_revision
from ship.errors import ShipError
from ship.queries import current_service, target_of, task_definition
from ship.registry import ImageRef, Registry


def resolve(session: Session, env: Environment, tag: str | None, digest: str | None) -> ImageRef:
    if not tag and not digest:
        raise ShipError("say which image to deploy: --tag=<commit tag> or --digest=sha256:...")
    return Registry(session, env.repository_name).find(tag=tag, digest=digest)


def deploy_image(env: Environment, ref: ImageRef, opts: Options, echo=print, session: Session | None = None):
    """Register a revision of the current task definition with only the image changed
    (pinned by digest), roll the service onto it and wait for ECS's verdict."""
    session = session or Session(env)
    target = target_of(env)
    svc = current_service(session, target)
    current = task_definition(session, svc.task_definition)
    container = svc.container_name
    if current.image(container) == ref.uri and svc.primary and svc.primary.rollout_state != "FAILED":
        echo(f"{env.service_name} already runs {ref.uri} ({current.label})")
        return roll_to(session, target, current.arn, opts, echo)
    if opts.dry_run:
        echo(f"dry run: would register a new revision of {current.family} with image {ref.uri} and roll it out")
        return svc
    new = session.ecs.register_task_definition(**current.register_kwargs(ref.uri, container))
    echo(f"registered {family_revision(new['taskDefinitionArn'])} with {ref.uri}")
    result = roll_to(session, target, new["taskDefinitionArn"], opts, echo)
    prune(env, Options(dry_run=False), echo=echo, session=session, quiet=True)
    return result
