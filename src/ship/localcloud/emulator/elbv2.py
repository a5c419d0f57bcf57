"""ELBv2 in the emulator: targets keyed by Id+Port, health-checked target states, draining,
and the view of listeners (rules, attributes) and target groups the load balancers read.

What the emulator knows beyond moto lives in ``STORE`` (an ``ElbStore``): plain
dataclasses, picklable together with moto's backends, with wall-clock deadlines
(epoch seconds) so that a restored state means the same thing after a restart.
Call everything here under ``emulator.LOCK``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Collection

from ship.localcloud import emulator
from ship.localcloud.emulator.compat import backends as _backends, internals as _moto

if TYPE_CHECKING:
    from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeListener, FakeLoadBalancer, FakeTargetGroup

PATCHES = [
    "elbv2: targets are keyed by Id+Port (moto keyed by Id only, so 127.0.0.1:A replaced 127.0.0.1:B)",
    "elbv2: describe_target_health reports health-checked states (initial/healthy/unhealthy/"
    "draining/unused) instead of always healthy",
]

# What the load balancers' data plane (alb/) and the fargate data plane act on (the coverage
# table in docs/ is generated from this): a listener is served for every ALB listener and
# follows its rules, its default actions and its load balancer's attributes
# (idle_timeout.timeout_seconds, routing.http.desync_mitigation_mode,
# routing.http.drop_invalid_header_fields.enabled); the target groups' health check settings
# drive the health checks and their attributes the routing (load_balancing.algorithm.type,
# stickiness.*) and draining (deregistration_delay.timeout_seconds); registered targets are
# checked and routed to, deregistered ones drain; DescribeTargetHealth reports the checks.
# Listener attributes, certificates, tags, security groups and subnets are only stored.
ACTED_ON = frozenset({
    "CreateLoadBalancer", "DeleteLoadBalancer", "ModifyLoadBalancerAttributes",
    "CreateListener", "ModifyListener", "DeleteListener",
    "CreateRule", "ModifyRule", "DeleteRule", "SetRulePriorities",
    "CreateTargetGroup", "ModifyTargetGroup", "ModifyTargetGroupAttributes", "DeleteTargetGroup",
    "RegisterTargets", "DeregisterTargets", "DescribeTargetHealth",
})

_REGISTERING = ("initial", "Elb.RegistrationInProgress", "Target registration is in progress")


@dataclass
class TargetHealth:
    state: str
    reason: str | None = None
    description: str | None = None


@dataclass
class Draining:
    target: dict[str, Any]  # {"Id": ..., "Port": ...} as it was registered
    until: float  # epoch seconds


@dataclass
class ElbStore:
    """Per target group ARN, per target key ("<id>:<port>"): health, and draining targets."""

    health: dict[str, dict[str, TargetHealth]] = field(default_factory=dict)
    draining: dict[str, dict[str, Draining]] = field(default_factory=dict)

    def health_of(self, arn: str) -> dict[str, TargetHealth]:
        return self.health.setdefault(arn, {})

    def draining_of(self, arn: str) -> dict[str, Draining]:
        return self.draining.setdefault(arn, {})

    def forget(self, live_arns: Collection[str]) -> None:
        """Drop what belongs to target groups that no longer exist."""
        for arn in [a for a in self.health if a not in live_arns]:
            del self.health[arn]
        for arn in [a for a in self.draining if a not in live_arns]:
            del self.draining[arn]


STORE = emulator.keep("elbv2", ElbStore(), version=1)


def _target_key(target: dict[str, Any], default_port: int | str | None) -> str:
    tid = target["Id"]
    port = target.get("Port") or default_port
    if str(tid).startswith("i-"):
        return tid
    return f"{tid}:{int(port) if port is not None else ''}"


def _dereg_delay(tg: FakeTargetGroup) -> float:
    try:
        return float(str(tg.attributes.get("deregistration_delay.timeout_seconds", 300)))  # moto keeps str or int
    except (TypeError, ValueError):
        return 300.0


def _draining_now(tg: FakeTargetGroup, now: float) -> dict[str, Draining]:
    return {k: d for k, d in STORE.draining.get(tg.arn, {}).items() if d.until > now}


def _register(self: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
    """FakeTargetGroup.register: targets keyed by Id+Port, each starting in ``initial``."""
    for target in targets:
        if str(target["Id"]).startswith("i-"):
            instance = self.ec2_backend.get_instance_by_id(target["Id"])
            if instance and instance.state != "running":
                raise _moto()[2].TargetNotRunning(instance_id=target["Id"])
        key = _target_key(target, self.port)
        port = target.get("Port") or self.port
        if key not in self.targets:
            STORE.health_of(self.arn)[key] = TargetHealth(*_REGISTERING)
        self.targets[key] = {"Id": target["Id"], "Port": int(port) if port is not None else None}
        self.deregistered_targets.pop(key, None)
        STORE.draining_of(self.arn).pop(key, None)


def _deregister(self: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
    """FakeTargetGroup.deregister: a target behind a load balancer drains for the deregistration delay."""
    for target in targets:
        key = _target_key(target, self.port)
        t = self.targets.pop(key, None)
        if not t:
            raise _moto()[2].InvalidTargetError()
        self.deregistered_targets[key] = t
        STORE.health_of(self.arn).pop(key, None)
        if self.load_balancer_arns:
            STORE.draining_of(self.arn)[key] = Draining(dict(t), time.time() + _dereg_delay(self))


def _health_for(self: FakeTargetGroup, target: dict[str, Any], ec2_backend: object = None) -> FakeHealthStatus:
    """FakeTargetGroup.health_for: the health-checked state, as DescribeTargetHealth reports it."""
    Health = _moto()[2].FakeHealthStatus
    key = _target_key(target, self.port)
    port = target.get("Port") or self.port
    hc_port = self.health_check_port
    t = self.targets.get(key)
    if t is None:
        if key in _draining_now(self, time.time()):
            return Health(target["Id"], port, hc_port, "draining",
                          "Target.DeregistrationInProgress", "Target deregistration is in progress")
        return Health(target["Id"], port, hc_port, "unused", "Target.NotRegistered",
                      "Target is not registered to the target group")
    if not self.load_balancer_arns:
        return Health(t["Id"], t["Port"], hc_port, "unused", "Target.NotInUse",
                      "Target group is not configured to receive traffic from the load balancer")
    if not self.health_check_enabled:
        return Health(t["Id"], t["Port"], hc_port, "unavailable", "Target.HealthCheckDisabled",
                      "Health checks are disabled")
    h = STORE.health.get(self.arn, {}).get(key) or TargetHealth(*_REGISTERING)
    return Health(t["Id"], t["Port"], hc_port, h.state, h.reason, h.description)


def _describe_target_health(self: ELBv2Backend, target_group_arn: str,
                            targets: list[dict[str, Any]]) -> list[FakeHealthStatus]:
    """ELBv2Backend.describe_target_health: draining targets are listed too."""
    tg = self.target_groups.get(target_group_arn)
    if tg is None:
        raise _moto()[2].TargetGroupNotFoundError()
    if not targets:
        targets = list(tg.targets.values()) + [d.target for d in _draining_now(tg, time.time()).values()]
    return [tg.health_for(target, self.ec2_backend) for target in targets]


def install() -> None:
    elbv2_models = _moto()[2]
    TG = elbv2_models.FakeTargetGroup
    if getattr(TG, "_ship_patched", False):
        return
    TG.register = _register
    TG.deregister = _deregister
    TG.health_for = _health_for
    elbv2_models.ELBv2Backend.describe_target_health = _describe_target_health
    TG._ship_patched = True


# ---------------------------------------------------------------------------
# Target groups, for the health checker and the data planes
# ---------------------------------------------------------------------------


class TargetGroupSpec:
    """A snapshot of a target group's health-check settings, attributes and targets."""

    def __init__(self, tg: FakeTargetGroup):
        self.arn = tg.arn
        self.name = tg.name
        self.protocol = (tg.health_check_protocol or tg.protocol or "HTTP").upper()
        self.port = tg.port
        self.health_check_port = tg.health_check_port or "traffic-port"
        self.path = tg.health_check_path or "/"
        self.interval = float(tg.health_check_interval_seconds or 30)
        self.timeout = float(tg.health_check_timeout_seconds or 5)
        self.healthy_threshold = int(tg.healthy_threshold_count or 5)
        self.unhealthy_threshold = int(tg.unhealthy_threshold_count or 2)
        matcher = getattr(tg, "matcher", None) or {}
        self.matcher = str(matcher.get("HttpCode") or "200")
        self.enabled = bool(tg.health_check_enabled)
        self.in_use = bool(tg.load_balancer_arns)
        self.deregistration_delay = _dereg_delay(tg)
        self.attributes = {str(k): str(v) for k, v in (tg.attributes or {}).items()}
        # (key, host, port) of the registered and of the draining targets
        self.targets: list[tuple[str, str, int]] = [
            (key, t["Id"], int(t["Port"] or 0)) for key, t in tg.targets.items()]
        self.draining: list[tuple[str, str, int]] = [
            (key, d.target["Id"], int(d.target["Port"] or 0)) for key, d in _draining_now(tg, time.time()).items()]

    @property
    def algorithm(self) -> str:
        return self.attributes.get("load_balancing.algorithm.type", "round_robin")

    @property
    def sticky_seconds(self) -> int:
        """Load-balancer cookie stickiness duration, 0 when stickiness is off."""
        a = self.attributes
        if a.get("stickiness.enabled", "false").lower() != "true":
            return 0
        try:
            return int(a.get("stickiness.lb_cookie.duration_seconds") or 86400)
        except ValueError:
            return 86400


def _all_target_groups() -> dict[str, FakeTargetGroup]:
    elbv2_models = _moto()[2]
    out: dict[str, FakeTargetGroup] = {}
    for _a, _r, backend in _backends(elbv2_models.elbv2_backends):
        out.update(backend.target_groups)
    return out


def target_groups() -> list[TargetGroupSpec]:
    return [TargetGroupSpec(tg) for tg in _all_target_groups().values()]


def target_group(arn: str) -> TargetGroupSpec | None:
    tg = _all_target_groups().get(arn)
    return TargetGroupSpec(tg) if tg is not None else None


def set_target_health(tg_arn: str, key: str, state: str, reason: str | None, description: str | None) -> None:
    tg = _all_target_groups().get(tg_arn)
    if tg is not None and key in tg.targets:
        STORE.health_of(tg_arn)[key] = TargetHealth(state, reason, description)


def target_state(tg_arn: str, host: str, port: int) -> str:
    tg = _all_target_groups().get(tg_arn)
    if tg is None:
        return "unused"
    return _health_for(tg, {"Id": host, "Port": port}).status


def target_states(tg_arn: str) -> list[tuple[str, int, str]]:
    """(host, port, state) for every registered or draining target."""
    elbv2_models = _moto()[2]
    for _a, _r, backend in _backends(elbv2_models.elbv2_backends):
        if tg_arn in backend.target_groups:
            return [(h.instance_id, int(h.port), h.status) for h in backend.describe_target_health(tg_arn, [])]
    return []


def prune_draining() -> None:
    """Forget targets whose draining time is over, and the state of deleted target groups."""
    now = time.time()
    groups = _all_target_groups()
    STORE.forget(groups)
    for arn, table in STORE.draining.items():
        for key in [k for k, d in table.items() if d.until <= now]:
            del table[key]


def register_target(tg_arn: str, host: str, port: int) -> None:
    tg = _all_target_groups().get(tg_arn)
    if tg is not None:
        tg.register([{"Id": host, "Port": port}])


def deregister_target(tg_arn: str, host: str, port: int) -> float:
    """Deregister; returns the draining time (0 when it was not registered)."""
    tg = _all_target_groups().get(tg_arn)
    if tg is None or _target_key({"Id": host, "Port": port}, tg.port) not in tg.targets:
        return 0.0
    tg.deregister([{"Id": host, "Port": port}])
    return _dereg_delay(tg) if tg.load_balancer_arns else 0.0


# ---------------------------------------------------------------------------
# Listeners, for the load balancers' data plane
# ---------------------------------------------------------------------------


def _forward_arns(actions: list[dict[str, Any]]) -> list[str]:
    arns = []
    for a in actions:
        if (a.get("Type") or "").lower() != "forward":
            continue
        if a.get("TargetGroupArn"):
            arns.append(a["TargetGroupArn"])
        for g in (a.get("ForwardConfig") or {}).get("TargetGroups") or []:
            if g.get("TargetGroupArn"):
                arns.append(g["TargetGroupArn"])
    return arns


class ListenerSpec:
    """An ALB listener as the API describes it: its rules (default rule last, with
    Priority "default") and its load balancer's attributes."""

    def __init__(self, lb: FakeLoadBalancer, listener: FakeListener):
        self.load_balancer_arn = lb.arn
        self.load_balancer_name = lb.name
        self.dns_name = lb.dns_name
        self.listener_arn = listener.arn
        self.port = int(listener.port)
        self.protocol = listener.protocol
        self.attributes = {str(k): str(v) for k, v in (getattr(lb, "attrs", None) or {}).items()}
        self.rules: list[dict[str, Any]] = []  # as DescribeRules has them
        for rule in listener.rules.values():
            self.rules.append({
                "RuleArn": rule.arn,
                "Priority": "default" if rule.is_default else str(rule.priority),
                "Conditions": copy.deepcopy(list(rule.conditions or [])),
                "Actions": copy.deepcopy([getattr(a, "data", {}) or {} for a in rule.actions or []]),
            })
        defaults = [r for r in self.rules if r["Priority"] == "default"]
        default_arns = _forward_arns(defaults[0]["Actions"]) if defaults else []
        self.target_group_arn = default_arns[0] if default_arns else None
        self.target_group_arns = sorted({arn for r in self.rules for arn in _forward_arns(r["Actions"])})


def listeners() -> list[ListenerSpec]:
    elbv2_models = _moto()[2]
    out = []
    for _a, _r, backend in _backends(elbv2_models.elbv2_backends):
        for lb in backend.load_balancers.values():
            if getattr(lb, "type", "application") != "application":
                continue
            for listener in lb.listeners.values():
                out.append(ListenerSpec(lb, listener))
    return out
