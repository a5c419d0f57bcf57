"""Read-only questions several actions ask the AWS APIs: which service, which task
definition and image, which revision to roll back to, which URL serves. Nothing here changes
anything; the actions (``ship.actions``) build on these and never on each other's helpers.
"""

from __future__ import annotations

from dataclasses import dataclass

import botocore.exceptions

from ship import paths
from ship.aws import Session
from ship.config import Environment
from ship.domain import Service, TaskDefinition
from ship.errors import ShipError


@dataclass
class Target:
    cluster: str
    service: str


def target_of(env: Environment) -> Target:
    return Target(env.cluster_name, env.service_name)


def current_service(session: Session, target: Target) -> Service:
    raw = session.ecs.describe_service(target.cluster, target.service)
    if raw is None:
        raise ShipError(f"service {target.service} does not exist in cluster {target.cluster}: "
                        f"run `inv deploy --env={session.env.name}` first")
    return Service(raw)


def _cluster_active(session: Session, env: Environment) -> bool:
    clusters = session.ecs.client.describe_clusters(clusters=[env.cluster_name]).get("clusters", [])
    return any(c.get("status") == "ACTIVE" for c in clusters)


def service_active(session: Session, env: Environment) -> bool:
    """Whether the environment's service exists (in an ACTIVE cluster) and is ACTIVE."""
    if not _cluster_active(session, env):
        return False
    raw = session.ecs.describe_service(env.cluster_name, env.service_name)
    return raw is not None and raw.get("status") == "ACTIVE"


def task_definition(session: Session, arn: str) -> TaskDefinition:
    return TaskDefinition.from_describe(session.ecs.describe_task_definition(arn))


def image_of(session: Session, arn: str) -> str | None:
    """The image of a task definition's essential container (None if it cannot be described)."""
    try:
        return task_definition(session, arn).image()
    except ShipError:
        return None


def current_image(env: Environment, session: Session) -> str | None:
    """The image the service runs now (None when there is no service yet)."""
    try:
        active = _cluster_active(session, env)
    except botocore.exceptions.ClientError:
        active = False
    raw = session.ecs.describe_service(env.cluster_name, env.service_name) if active else None
    if not raw:
        return None
    td = task_definition(session, raw["taskDefinition"])
    container = next((lb.get("containerName") for lb in raw.get("loadBalancers", [])), None)
    return td.image(container)


def rollback_target(session: Session, running: str, active: list[str]) -> str | None:
    """The newest revision other than ``running`` that reached a steady deployment."""
    best, best_at = None, ""
    for arn in active:
        if arn == running:
            continue
        steady_at = task_definition(session, arn).steady_at
        if steady_at and steady_at > best_at:
            best, best_at = arn, steady_at
    return best


def service_url(env: Environment, session: Session, target_group_arns: list[str]) -> str | None:
    """The service's URL: the ALB listener in front of its target group.

    On AWS, the ALB's DNS name; on the local cloud, the local port that the
    listener is mapped to."""
    for tg_arn in target_group_arns:
        tg = session.elbv2.describe_target_group(tg_arn)
        for lb_arn in tg.get("LoadBalancerArns", []):
            lb = session.elbv2.describe_load_balancers([lb_arn])[0]
            listeners = session.elbv2.describe_listeners(lb_arn)
            listeners.sort(key=lambda x: (x.get("Protocol") != "HTTPS", x.get("Port")))
            if env.emulator:
                from ship.config import local_port
                from ship.localcloud import control

                for mapping in control.listeners(paths.local_cloud_dir(), port=local_port()):
                    if mapping.get("load_balancer_arn") == lb_arn:
                        return mapping["url"]
                return None
            for listener in listeners:
                scheme = "https" if listener.get("Protocol") == "HTTPS" else "http"
                default = 443 if scheme == "https" else 80
                port = "" if listener["Port"] == default else f":{listener['Port']}"
                return f"{scheme}://{lb['DNSName']}{port}"
    return None
