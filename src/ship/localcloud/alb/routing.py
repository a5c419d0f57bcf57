"""A listener's routing state: its rules and target groups, round-robin turns, requests in
flight per target, request counts per target group, stickiness. The decisions themselves
are the pure functions of ``rules`` and ``targets``; this holds what they need to remember.

Everything here runs on the listener's event loop thread, except ``request_counts``,
which other threads may call at any time (it copies a dict of ints).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field, replace
from typing import Collection, Iterable

from ship.localcloud.alb import rules, targets
from ship.localcloud.alb.desync import MODES
from ship.localcloud.alb.rewrite import Request
from ship.localcloud.alb.targets import Target, TargetGroup, TargetKey

__all__ = ["ListenerConfig", "Router", "Route", "DEFAULT_GROUP"]

DEFAULT_GROUP = "default"


@dataclass(frozen=True)
class ListenerConfig:
    """Everything a listener serves by; replaced whole when anything changes."""

    listener_port: int = 80
    protocol: str = "HTTP"
    idle_timeout: float = 60.0  # the load balancer's idle_timeout.timeout_seconds
    desync_mode: str = "defensive"  # routing.http.desync_mitigation_mode
    drop_invalid_header_fields: bool = False  # routing.http.drop_invalid_header_fields.enabled
    default_host: str = "localhost"  # Host given to an HTTP/1.0 request without one
    rules: tuple[rules.Rule, ...] = (rules.forward_to(DEFAULT_GROUP),)
    groups: dict[str, TargetGroup] = field(default_factory=lambda: {DEFAULT_GROUP: TargetGroup(DEFAULT_GROUP)})

    def __post_init__(self) -> None:
        if str(self.protocol).upper() not in ("HTTP", "HTTPS"):
            raise ValueError(f"listener protocol {self.protocol!r} is not an ALB listener protocol (HTTP, HTTPS)")
        if self.desync_mode not in MODES:
            raise ValueError(f"desync mitigation mode {self.desync_mode!r} is not one of {', '.join(MODES)}")
        if not 1 <= float(self.idle_timeout) <= 4000:
            raise ValueError("idle timeout must be between 1 and 4000 seconds")

    def with_targets(self, group: str, new_targets: Iterable[Target]) -> "ListenerConfig":
        """A copy with ``group``'s targets replaced (its other settings kept)."""
        old = self.groups.get(group) or TargetGroup(group)
        groups = dict(self.groups)
        groups[group] = TargetGroup(group, tuple(new_targets), old.algorithm, old.sticky_seconds)
        return replace(self, groups=groups)


class Route:
    """Where a request goes: a target group and a target (with cookies to set), or nothing."""

    __slots__ = ("group", "target", "cookies")

    def __init__(self, group: TargetGroup | None, target: Target | None, cookies: tuple[bytes, ...] = ()):
        self.group = group
        self.target = target
        self.cookies = cookies


class Router:
    def __init__(self, config: ListenerConfig, secret: bytes | None = None):
        self.config = config
        self.secret = secret or os.urandom(16)
        self._turns: dict[str, int] = {}  # target group arn -> requests routed so far (round robin)
        self.in_flight: dict[TargetKey, int] = {}  # (host, port) -> requests in flight
        self._counts: dict[str, int] = {}  # target group arn -> requests routed to one of its targets
        self._random = random.random

    # -- the decision ------------------------------------------------------------

    def action(self, req: Request, client_ip: str) -> rules.Action | None:
        """The rule action for a request (Forward, FixedResponse, Redirect), or None."""
        return rules.match(self.config.rules, req, client_ip)

    def route(self, forward: rules.Forward, req: Request) -> Route:
        """A target group of the forward action (sticky, else weighted), then a target in it."""
        groups = self.config.groups
        cookies: list[bytes] = []
        arn = None
        if len(forward.groups) > 1 and forward.sticky_seconds:
            wanted = targets.read_cookie(req.cookies, b"AWSALBTG")
            for g, w in forward.groups:
                if w > 0 and wanted == targets.token(self.secret, "group", g):
                    arn = g
        if arn is None:
            arn = forward.groups[0][0] if len(forward.groups) == 1 else \
                targets.choose_group(forward.groups, self._random())
            if arn is not None and len(forward.groups) > 1 and forward.sticky_seconds:
                cookies.append(targets.sticky_cookie("AWSALBTG", targets.token(self.secret, "group", arn),
                                                     forward.sticky_seconds))
        group = groups.get(arn) if arn is not None else None
        if group is None:
            return Route(None, None)
        target = self._sticky_target(group, req)
        if target is None:
            target = self.pick(group)
            if target is not None and group.sticky_seconds:
                cookies.append(targets.sticky_cookie(
                    "AWSALB", targets.token(self.secret, group.arn, target.host, str(target.port)),
                    group.sticky_seconds))
        if target is not None:
            self._counts[group.arn] = self._counts.get(group.arn, 0) + 1
        return Route(group, target, tuple(cookies))

    def _sticky_target(self, group: TargetGroup, req: Request) -> Target | None:
        if not group.sticky_seconds or not req.cookies:
            return None
        wanted = targets.read_cookie(req.cookies, b"AWSALB")
        if wanted is None:
            return None
        for t in group.routable:
            if wanted == targets.token(self.secret, group.arn, t.host, str(t.port)):
                return t
        return None

    def pick(self, group: TargetGroup, avoid: Collection[TargetKey] = ()) -> Target | None:
        turn = self._turns.get(group.arn, 0)
        self._turns[group.arn] = turn + 1
        return targets.pick(group.routable, turn, self.in_flight,
                            group.algorithm == "least_outstanding_requests", avoid)

    # -- bookkeeping --------------------------------------------------------------

    def begin(self, target: Target) -> TargetKey:
        key = (target.host, target.port)
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        return key

    def end(self, key: TargetKey) -> None:
        n = self.in_flight.get(key, 0) - 1
        if n > 0:
            self.in_flight[key] = n
        else:
            self.in_flight.pop(key, None)

    def request_counts(self) -> dict[str, int]:
        """Requests routed to a target, per target group ARN, since the listener started."""
        return dict(self._counts)

    def routable_keys(self) -> set[TargetKey]:
        return {(t.host, t.port) for g in self.config.groups.values() for t in g.routable}

    def target_state(self, key: TargetKey) -> str | None:
        for g in self.config.groups.values():
            for t in g.targets:
                if (t.host, t.port) == key:
                    return t.state
        return None
