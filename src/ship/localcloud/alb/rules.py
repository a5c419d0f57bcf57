"""Listener rules: which action a request gets (pure).

Built from the ELBv2 API's own shapes (``Conditions``, ``Actions``, as DescribeRules
returns them) by ``compile_rules``; ``match`` evaluates them the way the ALB user
guide ("Listener rules for your Application Load Balancer") describes: rules in
priority order, lowest first, the default rule last; all conditions of a rule must
match, any value of a condition may. ``host-header``, ``http-header`` and
``query-string`` compare case-insensitively, ``path-pattern`` and
``http-request-method`` case-sensitively; ``*`` matches any run of characters and
``?`` exactly one.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Union

from ship.localcloud.alb.rewrite import Request

log = logging.getLogger("ship.localcloud.alb.rules")

__all__ = ["Action", "Condition", "Forward", "FixedResponse", "Redirect", "Rule", "compile_rules", "match",
           "redirect_location", "forward_to"]

_TERMINAL = ("forward", "fixed-response", "redirect")


_Wildcard = re.Pattern[str]
_Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@dataclass(frozen=True)
class Condition:
    field: str
    patterns: tuple[_Wildcard, ...] = ()  # path-pattern, host-header, http-header: compiled wildcards
    header: bytes = b""  # http-header: the lower-case header name
    methods: tuple[str, ...] = ()  # http-request-method
    pairs: tuple[tuple[_Wildcard | None, _Wildcard], ...] = ()  # query-string: (key or any key, value)
    networks: tuple[_Network, ...] = ()  # source-ip

    def matches(self, req: Request, client_ip: str) -> bool:
        f = self.field
        if f == "path-pattern":
            return _any(self.patterns, req.path.decode("latin-1"))
        if f == "host-header":
            return _any(self.patterns, req.host.decode("latin-1"))
        if f == "http-request-method":
            return req.head.method.decode("latin-1") in self.methods
        if f == "http-header":
            return any(_any(self.patterns, v.strip().decode("latin-1"))
                       for n, v in req.head.headers if n.lower() == self.header)
        if f == "query-string":
            return _query_matches(self.pairs, req.query)
        if f == "source-ip":
            return _ip_in(client_ip, self.networks)
        return False


@dataclass(frozen=True)
class Forward:
    groups: tuple[tuple[str, int], ...]  # ((target group arn, weight), ...)
    sticky_seconds: int = 0  # target group stickiness (AWSALBTG), 0 when off


@dataclass(frozen=True)
class FixedResponse:
    status: int
    content_type: str
    body: str


@dataclass(frozen=True)
class Redirect:
    status: int
    protocol: str = "#{protocol}"
    host: str = "#{host}"
    port: str = "#{port}"
    path: str = "/#{path}"
    query: str = "#{query}"


Action = Union[Forward, FixedResponse, Redirect]


@dataclass(frozen=True)
class Rule:
    priority: float  # the default rule: infinity
    conditions: tuple[Condition, ...]
    action: Action
    arn: str = field(default="", compare=False)


def forward_to(arn: str) -> Rule:
    """A default rule forwarding everything to one target group."""
    return Rule(float("inf"), (), Forward(((arn, 1),)))


def _wildcard(pattern: str, ignore_case: bool) -> _Wildcard:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _any(patterns: tuple[_Wildcard, ...], text: str) -> bool:
    return any(p.fullmatch(text) for p in patterns)


def _query_matches(pairs: tuple[tuple[_Wildcard | None, _Wildcard], ...], query: bytes) -> bool:
    items = []
    for part in query.decode("latin-1").split("&"):
        if part:
            key, eq, value = part.partition("=")
            items.append((key, value) if eq else ("", key))
    for key_p, value_p in pairs:
        for key, value in items:
            if value_p.fullmatch(value) and (key_p is None or key_p.fullmatch(key)):
                return True
    return False


def _ip_in(ip: str, networks: tuple[_Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks if net.version == addr.version)


def _values(cond: dict[str, Any], config_key: str) -> list[str]:
    config = cond.get(config_key) or {}
    return list(config.get("Values") or cond.get("Values") or [])


def compile_condition(cond: dict[str, Any]) -> Condition:
    f = cond.get("Field")
    if f == "path-pattern":
        return Condition(f, tuple(_wildcard(v, False) for v in _values(cond, "PathPatternConfig")))
    if f == "host-header":
        return Condition(f, tuple(_wildcard(v, True) for v in _values(cond, "HostHeaderConfig")))
    if f == "http-request-method":
        return Condition(f, methods=tuple(_values(cond, "HttpRequestMethodConfig")))
    if f == "http-header":
        config = cond.get("HttpHeaderConfig") or {}
        return Condition(f, tuple(_wildcard(v, True) for v in config.get("Values") or []),
                         str(config.get("HttpHeaderName", "")).lower().encode("latin-1"))
    if f == "query-string":
        pairs = [((_wildcard(p["Key"], True) if p.get("Key") else None), _wildcard(p.get("Value", ""), True))
                 for p in (cond.get("QueryStringConfig") or {}).get("Values") or []]
        return Condition(f, pairs=tuple(pairs))
    if f == "source-ip":
        nets = tuple(ipaddress.ip_network(v, strict=False) for v in _values(cond, "SourceIpConfig"))
        return Condition(f, networks=nets)
    raise ValueError(f"unknown rule condition field {f!r}")


def compile_action(actions: list[dict[str, Any]]) -> Action | None:
    """The terminal action of a rule's action list (authentication actions are not emulated)."""
    ordered = sorted(actions, key=lambda a: int(a.get("Order") or 0))
    for a in reversed(ordered):
        kind = (a.get("Type") or "").lower()
        if kind == "forward":
            return _forward(a)
        if kind == "fixed-response":
            c = a.get("FixedResponseConfig") or {}
            return FixedResponse(int(c.get("StatusCode") or 200), c.get("ContentType") or "text/plain",
                                 c.get("MessageBody") or "")
        if kind == "redirect":
            c = a.get("RedirectConfig") or {}
            query = c.get("Query")  # "" is a query of its own: no query
            return Redirect(302 if c.get("StatusCode") == "HTTP_302" else 301,
                            c.get("Protocol") or "#{protocol}", c.get("Host") or "#{host}",
                            str(c.get("Port") or "#{port}"), c.get("Path") or "/#{path}",
                            "#{query}" if query is None else query)
    return None


def _forward(a: dict[str, Any]) -> Forward:
    config = a.get("ForwardConfig") or {}
    groups = [(g["TargetGroupArn"], int(g.get("Weight", 1) if g.get("Weight") is not None else 1))
              for g in config.get("TargetGroups") or [] if g.get("TargetGroupArn")]
    if not groups and a.get("TargetGroupArn"):
        groups = [(a["TargetGroupArn"], 1)]
    sticky = config.get("TargetGroupStickinessConfig") or {}
    seconds = int(sticky.get("DurationSeconds") or 3600) if sticky.get("Enabled") in (True, "true") else 0
    return Forward(tuple(groups), seconds)


def compile_rules(rules: list[dict[str, Any]]) -> tuple[Rule, ...]:
    """Rules from the API's shapes: [{"Priority", "Conditions", "Actions", "RuleArn"}], in priority order."""
    out = []
    for r in rules:
        prio = r.get("Priority", "default")
        priority = float("inf") if prio in (None, "default") else float(prio)
        try:
            action = compile_action(r.get("Actions") or [])
            conditions = tuple(compile_condition(c) for c in r.get("Conditions") or [])
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("listener rule %s ignored: %s", r.get("RuleArn", prio), exc)
            continue
        if action is None:
            log.warning("listener rule %s has no forward, redirect or fixed-response action: ignored",
                        r.get("RuleArn", prio))
            continue
        out.append(Rule(priority, conditions, action, r.get("RuleArn", "")))
    out.sort(key=lambda rule: rule.priority)
    return tuple(out)


def match(rules: tuple[Rule, ...], req: Request, client_ip: str) -> Action | None:
    """The action of the first rule whose conditions all match, or None."""
    for rule in rules:
        for cond in rule.conditions:
            if not cond.matches(req, client_ip):
                break
        else:
            return rule.action
    return None


def redirect_location(r: Redirect, req: Request, listener_protocol: str, listener_port: int) -> bytes:
    """The Location of a redirect action, with #{protocol}, #{host}, #{port}, #{path} and #{query}.

    Locally ``#{port}`` is the port the client put in its Host header when it put one
    (the listener's local port), so that a redirect to the same listener can be followed.
    """
    host_header = req.hosts[0].decode("latin-1") if req.hosts else ""
    hostname, _, host_port = host_header.rpartition(":") if host_header.count(":") == 1 else (host_header, "", "")
    values = {
        "protocol": listener_protocol.lower(),
        "host": hostname or host_header,
        "port": host_port or str(listener_port),
        "path": req.path.decode("latin-1").lstrip("/"),
        "query": req.query.decode("latin-1"),
    }

    def fill(template: str) -> str:
        return re.sub(r"#\{(protocol|host|port|path|query)\}", lambda m: values[m.group(1)], template)

    protocol = fill(r.protocol).lower()
    port = fill(r.port)
    default_port = {"http": "80", "https": "443"}.get(protocol)
    netloc = fill(r.host) + ("" if port == default_port else ":" + port)
    path = fill(r.path)
    if not path.startswith("/"):
        path = "/" + path
    query = fill(r.query)
    return f"{protocol}://{netloc}{path}{'?' + query if query else ''}".encode("latin-1")
