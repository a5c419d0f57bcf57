"""Deregister old task definition revisions, keeping the ones that matter."""

from __future__ import annotations

from ship.actions import Options
from ship.aws import Session
from ship.config import Environment
from ship.domain import family_revision
from ship.queries import current_service, rollback_target, target_of, task_definition


def plan_prune(session: Session, env: Environment, keep: int) -> tuple[list[str], list[str]]:
    """(keep, remove): the newest ``keep`` revisions, plus the running one and the rollback target."""
    svc = current_service(session, target_of(env))
    family = task_definition(session, svc.task_definition).family
    active = session.ecs.list_task_definitions(family)  # oldest first
    protected = {svc.task_definition} | {d.task_definition for d in svc.deployments}
    rollback = rollback_target(session, svc.task_definition, active)
    if rollback:
        protected.add(rollback)
    newest = set(active[-keep:]) if keep > 0 else set()
    kept = [a for a in active if a in newest or a in protected]
    removed = [a for a in active if a not in kept]
    return kept, removed


def prune(env: Environment, opts: Options, keep: int | None = None, echo=print, session: Session | None = None,
          quiet: bool = False) -> list[str]:
    session = session or Session(env)
    keep = env["task_definitions_to_keep"] if keep is None else keep
    kept, removed = plan_prune(session, env, keep)
    for arn in removed:
        if opts.dry_run:
            echo(f"dry run: would deregister {family_revision(arn)}")
        else:
            session.ecs.deregister_task_definition(arn)
            echo(f"deregistered {family_revision(arn)}")
    if not quiet or removed:
        echo(f"kept {len(kept)} revisions: {', '.join(family_revision(a) for a in kept)}")
    return removed
