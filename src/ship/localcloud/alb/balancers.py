"""The load balancers' data plane: one listener per ALB listener in the emulator,
each on a local port, fed with its target group's targets and their health.

``LoadBalancers`` follows the emulator on a tick of its own: it opens a
listener for every ALB listener that appears, closes those that go away, and
hands each listener the current targets with the states the health checker
(``alb.healthcheck``) wrote into the emulator. The local port of every
listener is kept in ``<state>/listeners.json`` so a URL stays the same across
restarts.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Callable

from ship.localcloud import emulator
from ship.localcloud.alb.healthcheck import HealthChecker
from ship.localcloud.alb.proxy import ListenerProxy, Target
from ship.localcloud.emulator import elbv2

log = logging.getLogger("ship.localcloud.alb")

TICK = 0.5


class LoadBalancers:
    def __init__(self, state_dir: Path, host: str = "127.0.0.1",
                 on_health_change: Callable[[], None] | None = None):
        self.state = Path(state_dir)
        self.host = host
        self.health = HealthChecker(on_change=on_health_change)
        self._proxies: dict[str, dict] = {}      # listener arn -> {"proxy", "spec", "targets", "local_port"}
        self._listener_ports = self._load_listener_ports()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="load-balancers", daemon=True)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.health.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        for entry in list(self._proxies.values()):
            try:
                entry["proxy"].stop()
            except Exception:
                log.exception("stopping a listener proxy failed")
        self._proxies.clear()
        self.health.stop()

    def _loop(self) -> None:
        while not self._stop.wait(TICK):
            try:
                self._sync_listeners()
            except Exception:
                log.exception("listener sync failed")

    # ------------------------------------------------------------------ listeners

    def _load_listener_ports(self) -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads((self.state / "listeners.json").read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save_listener_ports(self) -> None:
        tmp = self.state / "listeners.json.tmp"
        tmp.write_text(json.dumps(self._listener_ports, indent=1, sort_keys=True))
        os.replace(tmp, self.state / "listeners.json")

    def _sync_listeners(self) -> None:
        with emulator.LOCK:
            specs = elbv2.listeners()
            wanted = {}
            for spec in specs:
                states = elbv2.target_states(spec.target_group_arn) if spec.target_group_arn else []
                wanted[spec.listener_arn] = (spec, states)
        for arn, (spec, states) in wanted.items():
            entry = self._proxies.get(arn)
            if entry is None:
                entry = self._open_proxy(spec)
                if entry is None:
                    continue
            entry["spec"] = spec
            targets = [Target(host=h, port=p, state=s) for h, p, s in states]
            if targets != entry["targets"]:
                entry["proxy"].set_targets(targets)
                entry["targets"] = targets
        for arn in [a for a in self._proxies if a not in wanted]:
            entry = self._proxies.pop(arn)
            try:
                entry["proxy"].stop()
            except Exception:
                log.exception("stopping listener proxy failed")

    def _open_proxy(self, spec: elbv2.ListenerSpec) -> dict | None:
        key = f"{spec.load_balancer_name}:{spec.port}"
        preferred = self._listener_ports.get(key, 0)
        proxy = None
        for port in ([preferred, 0] if preferred else [0]):
            try:
                proxy = ListenerProxy(host=self.host, port=port, listener_port=spec.port,
                                      protocol=spec.protocol or "HTTP")
                proxy.start()
                break
            except OSError as exc:
                log.info("listener %s: port %s unavailable (%s)", key, port, exc)
                proxy = None
        if proxy is None:
            return None
        entry = {"proxy": proxy, "spec": spec, "targets": None, "local_port": proxy.port}
        self._proxies[spec.listener_arn] = entry
        if self._listener_ports.get(key) != proxy.port:
            self._listener_ports[key] = proxy.port  # type: ignore[assignment]  # set once the proxy listens
            self._save_listener_ports()
        log.info("listener %s (%s) served on http://%s:%s", key, spec.listener_arn, self.host, proxy.port)
        return entry

    def listener_table(self) -> list[dict]:
        out = []
        for entry in list(self._proxies.values()):
            spec = entry["spec"]
            out.append({
                "load_balancer_arn": spec.load_balancer_arn,
                "load_balancer_name": spec.load_balancer_name,
                "dns_name": spec.dns_name,
                "listener_arn": spec.listener_arn,
                "port": spec.port,
                "protocol": spec.protocol,
                "target_group_arn": spec.target_group_arn,
                "local_port": entry["local_port"],
                "url": f"http://{self.host}:{entry['local_port']}",
            })
        return sorted(out, key=lambda x: (x["load_balancer_name"], x["port"]))
