"""The load balancers' data plane: one listener per ALB listener in the emulator.

``LoadBalancers`` follows the emulator on a tick of its own: it opens a listener
(``alb.listener``) for every ALB listener that appears, closes those that go away,
and hands each one a ``ListenerConfig`` built from the API's view: its rules, the
target groups they forward to with their targets (and the states the health checker,
``alb.healthcheck``, wrote into the emulator), the groups' attributes
(``load_balancing.algorithm.type``, ``stickiness.*``) and the load balancer's
(``idle_timeout.timeout_seconds``, ``routing.http.desync_mitigation_mode``,
``routing.http.drop_invalid_header_fields.enabled``). A change made through the ELBv2
API reaches the listener within a tick. The local port of every listener is kept in
``<state>/listeners.json`` so a URL stays the same across restarts; every load
balancer is also reachable by name on the emulator's port (``listener_for_host``).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ship.fsutil import write_atomically
from ship.localcloud import emulator
from ship.localcloud.alb import rules
from ship.localcloud.alb.desync import MODES
from ship.localcloud.alb.healthcheck import HealthChecker
from ship.localcloud.alb.hostnames import HOST_SUFFIX, host_name, served_port
from ship.localcloud.alb.listener import Listener
from ship.localcloud.alb.routing import ListenerConfig
from ship.localcloud.alb.targets import ALGORITHMS, Target, TargetGroup
from ship.localcloud.emulator import elbv2

log = logging.getLogger("ship.localcloud.alb")

TICK = 0.5


# Per target group ARN: its settings (None when it is gone) and its targets' (host, port, state).
Groups = dict[str, tuple["elbv2.TargetGroupSpec | None", list[tuple[str, int, str]]]]


def config_for(spec: elbv2.ListenerSpec, groups: Groups) -> ListenerConfig:
    """The listener configuration for ``spec``; ``groups`` maps target group ARN to
    (TargetGroupSpec, [(host, port, state)])."""
    attrs = spec.attributes
    try:
        idle = float(attrs.get("idle_timeout.timeout_seconds") or 60)
    except ValueError:
        idle = 60.0
    mode = attrs.get("routing.http.desync_mitigation_mode") or "defensive"
    if mode not in MODES:
        log.warning("load balancer %s: unknown desync mitigation mode %r, using defensive", spec.load_balancer_name,
                    mode)
        mode = "defensive"
    target_groups: dict[str, TargetGroup] = {}
    for arn in spec.target_group_arns:
        tg, states = groups.get(arn, (None, []))
        algorithm = tg.algorithm if tg is not None and tg.algorithm in ALGORITHMS else "round_robin"
        target_groups[arn] = TargetGroup(arn, tuple(Target(h, p, s) for h, p, s in states), algorithm,
                                         tg.sticky_seconds if tg is not None else 0)
    return ListenerConfig(
        listener_port=spec.port,
        protocol=spec.protocol or "HTTP",
        idle_timeout=min(max(idle, 1.0), 4000.0),
        desync_mode=mode,
        drop_invalid_header_fields=attrs.get("routing.http.drop_invalid_header_fields.enabled", "").lower() == "true",
        default_host=spec.dns_name or spec.load_balancer_name,
        rules=rules.compile_rules(spec.rules),
        groups=target_groups,
    )


@dataclass
class _Served:
    """An ALB listener served locally."""

    listener: Listener
    spec: elbv2.ListenerSpec
    key: str  # "<load balancer name>:<listener port>"
    local_port: int


class LoadBalancers:
    def __init__(self, state_dir: Path, host: str = "127.0.0.1",
                 on_health_change: Callable[[], None] | None = None, parser: str = "httptools"):
        self.state = Path(state_dir)
        self.host = host
        self.parser = parser
        self._notify = on_health_change or (lambda: None)
        self._wake = threading.Event()
        self._syncing = threading.Lock()  # one sync at a time: the loop's, or an API call's
        self.health = HealthChecker(on_change=self._health_changed)
        self._listeners: dict[str, _Served] = {}  # by listener ARN
        self._by_name: dict[str, list[tuple[int, Listener]]] = {}  # lower-case load balancer name -> [(port, ...)]
        self._retired_counts: dict[str, int] = {}
        self._counts_lock = threading.Lock()
        self._listener_ports = self._load_listener_ports()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="load-balancers", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.health.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        for arn in list(self._listeners):
            self._close(arn)
        self.health.stop()

    def _health_changed(self) -> None:
        """A target's health changed: the listeners route by it at once, not at the next tick."""
        self._wake.set()
        self._notify()

    def _loop(self) -> None:
        while True:
            self._wake.wait(TICK)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.sync()
            except Exception:
                log.exception("listener sync failed")

    # -- following the emulator ------------------------------------------------------------

    def sync(self) -> None:
        """Serve what the emulator says now: listeners opened, reconfigured (rules, targets and
        their health, attributes) or closed."""
        with self._syncing:
            self._sync()

    def _sync(self) -> None:
        with emulator.LOCK:
            specs = elbv2.listeners()
            wanted = {arn for s in specs for arn in s.target_group_arns}
            groups: Groups = {}
            for arn in wanted:
                tg = elbv2.target_group(arn)
                groups[arn] = (tg, elbv2.target_states(arn) if tg is not None else [])
        seen = set()
        for spec in specs:
            seen.add(spec.listener_arn)
            entry = self._listeners.get(spec.listener_arn) or self._open(spec)
            if entry is None:
                continue
            entry.spec = spec
            try:
                entry.listener.configure(config_for(spec, groups))
            except ValueError as exc:
                log.warning("listener %s: configuration refused: %s", entry.key, exc)
        for arn in [a for a in self._listeners if a not in seen]:
            self._close(arn)
        self._index()

    def _open(self, spec: elbv2.ListenerSpec) -> _Served | None:
        key = f"{spec.load_balancer_name}:{spec.port}"
        preferred = self._listener_ports.get(key, 0)
        listener = None
        for port in ([preferred, 0] if preferred else [0]):
            try:
                listener = Listener(ListenerConfig(listener_port=spec.port), host=self.host, port=port,
                                    parser=self.parser, name=key)
                listener.start()
                break
            except OSError as exc:
                log.info("listener %s: port %s unavailable (%s)", key, port, exc)
                listener = None
        local_port = listener.port if listener is not None else None
        if listener is None or local_port is None:
            return None
        entry = _Served(listener, spec, key, local_port)
        self._listeners[spec.listener_arn] = entry
        if self._listener_ports.get(key) != local_port:
            self._listener_ports[key] = local_port
            self._save_listener_ports()
        log.info("listener %s (%s) served on http://%s:%s", key, spec.listener_arn, self.host, local_port)
        return entry

    def _close(self, arn: str) -> None:
        with self._counts_lock:  # its counts move to the retired ones, never counted twice
            entry = self._listeners.pop(arn)
            listener = entry.listener
            for tg, n in listener.request_counts().items():
                self._retired_counts[tg] = self._retired_counts.get(tg, 0) + n
        try:
            listener.stop()
        except Exception:
            log.exception("stopping listener %s failed", entry.key)

    def _index(self) -> None:
        by_name: dict[str, list[tuple[int, Listener]]] = {}
        for entry in self._listeners.values():
            spec = entry.spec
            by_name.setdefault(spec.load_balancer_name.lower(), []).append((spec.port, entry.listener))
        self._by_name = by_name

    def _load_listener_ports(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads((self.state / "listeners.json").read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save_listener_ports(self) -> None:
        write_atomically(self.state / "listeners.json",
                         json.dumps(self._listener_ports, indent=1, sort_keys=True).encode())

    # -- for the rest of the local cloud ----------------------------------------------------

    def listener_for_host(self, host: str) -> Listener | None:
        """The listener serving ``<load balancer name>.elb.localhost[:port]``: its port-80
        listener, else its lowest port (``hostnames.served_port``)."""
        name = host.strip().lower().rsplit(":", 1)[0] if not host.startswith("[") else ""
        if not name.endswith(HOST_SUFFIX):
            return None
        candidates = self._by_name.get(name[: -len(HOST_SUFFIX)])
        if not candidates:
            return None
        port = served_port(p for p, _listener in candidates)
        return next(listener for p, listener in candidates if p == port)

    def request_counts(self) -> dict[str, int]:
        """Requests routed to a target, per target group ARN, since the load balancers started
        (the numerator of CloudWatch's RequestCountPerTarget). Any thread; cheap."""
        with self._counts_lock:
            totals = dict(self._retired_counts)
            for entry in list(self._listeners.values()):
                for tg, n in entry.listener.request_counts().items():
                    totals[tg] = totals.get(tg, 0) + n
        return totals

    def listener_table(self) -> list[dict[str, Any]]:
        out = []
        for entry in list(self._listeners.values()):
            spec = entry.spec
            out.append({
                "load_balancer_arn": spec.load_balancer_arn,
                "load_balancer_name": spec.load_balancer_name,
                "dns_name": spec.dns_name,
                "listener_arn": spec.listener_arn,
                "port": spec.port,
                "protocol": spec.protocol,
                "target_group_arn": spec.target_group_arn,
                "local_port": entry.local_port,
                "url": f"http://{self.host}:{entry.local_port}",
                "host_name": host_name(spec.load_balancer_name),
            })
        return sorted(out, key=lambda x: (x["load_balancer_name"], x["port"]))
