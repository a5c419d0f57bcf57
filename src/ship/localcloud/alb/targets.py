"""Target groups and the choice of a target (pure, apart from the counters passed in).

As the ALB user guide describes it ("Target groups for your Application Load
Balancers"): requests go to ``healthy`` targets (and to ``unavailable`` ones, whose
health checks are disabled); when no target is healthy the group fails open over
its ``initial`` and ``unhealthy`` targets; ``draining`` and ``unused`` targets get
no new requests. ``round_robin`` is the default algorithm,
``least_outstanding_requests`` the other one; weighted forward actions pick a
group at random in proportion to the weights. Stickiness is by cookie: ``AWSALB``
names a target of a group, ``AWSALBTG`` a group of a forward action; the values
are opaque tokens of this listener.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Collection, Mapping

__all__ = ["Target", "TargetGroup", "TargetKey", "TARGET_STATES", "ALGORITHMS", "pick", "choose_group", "token",
           "read_cookie", "sticky_cookie"]

TARGET_STATES = frozenset({"initial", "healthy", "unhealthy", "draining", "unused", "unavailable"})
ALGORITHMS = frozenset({"round_robin", "least_outstanding_requests"})
_ROUTED = frozenset({"healthy", "unavailable"})
_FAIL_OPEN = frozenset({"initial", "unhealthy"})


@dataclass(frozen=True)
class Target:
    """One registered target of a target group."""

    host: str
    port: int
    state: str  # initial | healthy | unhealthy | draining | unused | unavailable


TargetKey = tuple[str, int]  # (host, port)


@dataclass(frozen=True)
class TargetGroup:
    arn: str
    targets: tuple[Target, ...] = ()
    algorithm: str = "round_robin"
    sticky_seconds: int = 0  # load-balancer-generated cookie stickiness (AWSALB), 0 when off
    routable: tuple[Target, ...] = field(default=(), compare=False)  # derived: who gets new requests

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"load balancing algorithm {self.algorithm!r} is not one of {sorted(ALGORITHMS)}")
        targets = tuple(self.targets)
        object.__setattr__(self, "targets", targets)
        healthy = tuple(t for t in targets if t.state in _ROUTED)
        object.__setattr__(self, "routable", healthy or tuple(t for t in targets if t.state in _FAIL_OPEN))


def pick(routable: tuple[Target, ...], turn: int, in_flight: Mapping[TargetKey, int], least_outstanding: bool,
         avoid: Collection[TargetKey] = ()) -> Target | None:
    """The target for the ``turn``-th request of a group, skipping those in ``avoid``.

    ``in_flight`` maps (host, port) to requests in flight, for least outstanding
    requests (ties go in round-robin order).
    """
    n = len(routable)
    best = None
    low = 0
    for j in range(n):
        t = routable[(turn + j) % n]
        if avoid and (t.host, t.port) in avoid:
            continue
        if not least_outstanding:
            return t
        k = in_flight.get((t.host, t.port), 0)
        if best is None or k < low:
            best, low = t, k
            if not k:
                break
    return best


def choose_group(groups: tuple[tuple[str, int], ...], r: float) -> str | None:
    """A target group of a weighted forward action; ``r`` is uniform in [0, 1)."""
    total = sum(w for _arn, w in groups if w > 0)
    if total <= 0:
        return None
    x = r * total
    for arn, w in groups:
        if w <= 0:
            continue
        if x < w:
            return arn
        x -= w
    return [arn for arn, w in groups if w > 0][-1]


def token(secret: bytes, *parts: str) -> str:
    """An opaque cookie value naming a group or a target of this listener."""
    return hashlib.blake2b("|".join(parts).encode(), key=secret, digest_size=16).hexdigest()


def read_cookie(cookie_headers: list[bytes], name: bytes) -> str | None:
    """The value of cookie ``name`` in the request's Cookie headers."""
    prefix = name + b"="
    for header in cookie_headers:
        for part in header.split(b";"):
            part = part.strip()
            if part.startswith(prefix):
                return part[len(prefix):].decode("latin-1")
    return None


def sticky_cookie(name: str, value: str, seconds: int, path: str = "/") -> bytes:
    """Set-Cookie lines as ALB sends them (the CORS twin has SameSite=None; Secure)."""
    plain = f"Set-Cookie: {name}={value}; Max-Age={seconds}; Path={path}"
    cors = f"Set-Cookie: {name}CORS={value}; Max-Age={seconds}; Path={path}; SameSite=None; Secure"
    return (plain + "\r\n" + cors).encode("latin-1")
