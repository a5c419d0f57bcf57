"""The service's desired count, which Terraform sets only when it creates the service.

terraform/modules/ecs ignores later changes of ``desired_count`` (as terraform-aws-modules/ecs
does): with Service Auto Scaling on, the scaler owns the count, and a plan that reset it would
undo every scale-out (hashicorp/aws 5.x has no computed ``desired_count``). So the commands that
apply Terraform settle the count right after it (``settle``):

* autoscaling off: the environment's ``desired_count``, as Terraform used to;
* autoscaling on: the current count clamped into ``autoscaling_min_capacity``..``max``, so a new
  min or max takes effect at once and the scaler's count is otherwise left alone.

Rollouts (``inv deploy``'s rollout, ``inv promote``, ``inv rollback``) change only the task
definition through UpdateService and never the count, so they do not fight the scaler either.
"""

from __future__ import annotations

from ship.aws import Session
from ship.config import Environment


def wanted(settings: dict, current: int) -> int:
    """The count the service should have now, given its current one (pure)."""
    if settings.get("autoscaling"):
        low, high = settings["autoscaling_min_capacity"], settings["autoscaling_max_capacity"]
        return min(max(current, low), high)
    return settings["desired_count"]


def settle(env: Environment, session: Session, echo=print) -> int | None:
    """Set the service's desired count to ``wanted`` (UpdateService); None when there is no service."""
    raw = session.ecs.describe_service(env.cluster_name, env.service_name)
    if not raw or raw.get("status") != "ACTIVE":
        return None
    current = int(raw.get("desiredCount", 0))
    want = wanted(env.settings, current)
    if want != current:
        session.ecs.update_service(env.cluster_name, env.service_name, desiredCount=want)
        why = (f"within autoscaling's {env['autoscaling_min_capacity']}-{env['autoscaling_max_capacity']}"
               if env["autoscaling"] else "desired_count in environments.yaml")
        echo(f"{env.service_name}: desired count {current} -> {want} ({why})")
    return want
