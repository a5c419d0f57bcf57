"""ELBv2 in the emulator: targets keyed by Id+Port, health-checked target states, draining,
and the listener view the load balancer data plane reads."""

from __future__ import annotations

import time
from typing import Any

from ship.localcloud.emulator.compat import backends as _backends, internals as _moto

PATCHES = [
    "elbv2: targets are keyed by Id+Port (moto keyed by Id only, so 127.0.0.1:A replaced 127.0.0.1:B)",
    "elbv2: describe_target_health reports health-checked states (initial/healthy/unhealthy/"
    "draining/unused) instead of always healthy",
]


def _target_key(target: dict, default_port) -> str:
    tid = target["Id"]
    port = target.get("Port") or default_port
    if str(tid).startswith("i-"):
        return tid
    return f"{tid}:{int(port) if port is not None else ''}"


def _tg_extra(tg, name: str) -> dict:
    d = tg.__dict__.get(name)
    if d is None:
        d = {}
        tg.__dict__[name] = d
    return d


def _dereg_delay(tg) -> float:
    try:
        return float(tg.attributes.get("deregistration_delay.timeout_seconds", 300))
    except (TypeError, ValueError):
        return 300.0


def install() -> None:
    elbv2_models = _moto()[2]
    TG = elbv2_models.FakeTargetGroup
    Backend = elbv2_models.ELBv2Backend
    Health = elbv2_models.FakeHealthStatus
    if getattr(TG, "_ship_patched", False):
        return
    InvalidTargetError = elbv2_models.InvalidTargetError
    TargetNotRunning = elbv2_models.TargetNotRunning

    def register(self, targets):
        for target in targets:
            if str(target["Id"]).startswith("i-"):
                instance = self.ec2_backend.get_instance_by_id(target["Id"])
                if instance and instance.state != "running":
                    raise TargetNotRunning(instance_id=target["Id"])
            key = _target_key(target, self.port)
            port = target.get("Port") or self.port
            if key not in self.targets:
                _tg_extra(self, "_ship_health")[key] = (
                    "initial", "Elb.RegistrationInProgress", "Target registration is in progress")
            self.targets[key] = {"Id": target["Id"], "Port": int(port) if port is not None else None}
            self.deregistered_targets.pop(key, None)
            _tg_extra(self, "_ship_draining").pop(key, None)

    def deregister(self, targets):
        for target in targets:
            key = _target_key(target, self.port)
            t = self.targets.pop(key, None)
            if not t:
                raise InvalidTargetError()
            self.deregistered_targets[key] = t
            _tg_extra(self, "_ship_health").pop(key, None)
            if self.load_balancer_arns:
                _tg_extra(self, "_ship_draining")[key] = (t, time.monotonic() + _dereg_delay(self))

    def health_for(self, target, ec2_backend):
        key = _target_key(target, self.port)
        port = target.get("Port") or self.port
        hc_port = self.health_check_port
        t = self.targets.get(key)
        if t is None:
            draining = _tg_extra(self, "_ship_draining").get(key)
            if draining and draining[1] > time.monotonic():
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
        state, reason, desc = _tg_extra(self, "_ship_health").get(
            key, ("initial", "Elb.RegistrationInProgress", "Target registration is in progress"))
        return Health(t["Id"], t["Port"], hc_port, state, reason, desc)

    def describe_target_health(self, target_group_arn, targets):
        tg = self.target_groups.get(target_group_arn)
        if tg is None:
            raise elbv2_models.TargetGroupNotFoundError()
        if not targets:
            now = time.monotonic()
            targets = list(tg.targets.values()) + [
                t for t, deadline in _tg_extra(tg, "_ship_draining").values() if deadline > now]
        return [tg.health_for(target, self.ec2_backend) for target in targets]

    TG.register = register
    TG.deregister = deregister
    TG.health_for = health_for
    Backend.describe_target_health = describe_target_health
    TG._ship_patched = True


class TargetGroupSpec:
    """A snapshot of a target group's health-check settings and targets."""

    def __init__(self, tg):
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
        self.targets = [(key, t["Id"], int(t["Port"] or 0)) for key, t in tg.targets.items()]
        now = time.monotonic()
        self.draining = [(key, t["Id"], int(t["Port"] or 0))
                         for key, (t, deadline) in _tg_extra(tg, "_ship_draining").items() if deadline > now]


def _all_target_groups() -> dict[str, Any]:
    elbv2_models = _moto()[2]
    out = {}
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
        _tg_extra(tg, "_ship_health")[key] = (state, reason, description)


def target_state(tg_arn: str, host: str, port: int) -> str:
    tg = _all_target_groups().get(tg_arn)
    if tg is None:
        return "unused"
    return tg.health_for({"Id": host, "Port": port}, None).status


def target_states(tg_arn: str) -> list[tuple[str, int, str]]:
    """(host, port, state) for every registered or draining target."""
    tg = _all_target_groups().get(tg_arn)
    if tg is None:
        return []
    elbv2_models = _moto()[2]
    backend: Any = None
    for _a, _r, b in _backends(elbv2_models.elbv2_backends):
        if tg_arn in b.target_groups:
            backend = b
    return [(h.instance_id, int(h.port), h.status) for h in backend.describe_target_health(tg_arn, [])]


def prune_draining() -> None:
    now = time.monotonic()
    for tg in _all_target_groups().values():
        d = _tg_extra(tg, "_ship_draining")
        for key in [k for k, (_t, deadline) in d.items() if deadline <= now]:
            del d[key]


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


class ListenerSpec:
    def __init__(self, lb, listener):
        self.load_balancer_arn = lb.arn
        self.load_balancer_name = lb.name
        self.dns_name = lb.dns_name
        self.listener_arn = listener.arn
        self.port = int(listener.port)
        self.protocol = listener.protocol
        self.target_group_arn = None
        for action in listener.default_actions:
            data = getattr(action, "data", {}) or {}
            if (data.get("Type") or "").lower() != "forward":
                continue
            if data.get("TargetGroupArn"):
                self.target_group_arn = data["TargetGroupArn"]
            else:
                groups = (data.get("ForwardConfig") or {}).get("TargetGroups") or []
                if groups:
                    best = max(groups, key=lambda g: int(g.get("Weight", 1) or 0))
                    self.target_group_arn = best.get("TargetGroupArn")
            break


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
