"""Return a service to the last revision that reached a steady, completed deployment."""

from __future__ import annotations

from ship.actions import Options
from ship.actions.rollout import roll_to
from ship.aws import Session
from ship.config import Environment
from ship.domain import family_revision
from ship.errors import ShipError
from ship.queries import current_service, rollback_target, target_of, task_definition


def rollback(env: Environment, opts: Options, echo=print, session: Session | None = None):
    session = session or Session(env)
    target = target_of(env)
    svc = current_service(session, target)
    family = task_definition(session, svc.task_definition).family
    previous = rollback_target(session, svc.task_definition, session.ecs.list_task_definitions(family))
    if previous is None:
        raise ShipError(f"{env.service_name} has no earlier revision that reached a steady deployment; "
                        "nothing to roll back to")
    image = task_definition(session, previous).image(svc.container_name)
    echo(f"rolling back {env.service_name} from {family_revision(svc.task_definition)} to "
         f"{family_revision(previous)} ({image})")
    return roll_to(session, target, previous, opts, echo, reason="rollback")


def redeploy(env: Environment, opts: Options, echo=print, session: Session | None = None):
    """A forced new deployment of the revision the service runs now."""
    session = session or Session(env)
    target = target_of(env)
    svc = current_service(session, target)
    return roll_to(session, target, svc.task_definition, opts, echo, force=True, reason="redeploy")
