"""A smoke test through the service's own URL (the load balancer), as a user sees it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from ship.aws import Session
from ship.config import Environment
from ship.errors import ShipError
from ship.queries import current_service, service_url, target_of


def smoke(env: Environment, requests: int = 10, timeout: float = 60.0, echo=print) -> dict:
    session = Session(env)
    svc = current_service(session, target_of(env))
    url = service_url(env, session, svc.target_group_arns)
    if not url:
        raise ShipError(f"{env.service_name} has no load balancer URL to test")
    deadline = time.monotonic() + timeout
    instances, versions, last = set(), set(), ""
    ok = 0
    while ok < requests:
        if time.monotonic() > deadline:
            raise ShipError(f"smoke test of {url} failed: {ok}/{requests} good answers in {timeout:.0f}s "
                            f"(last: {last})")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as health, \
                    urllib.request.urlopen(url + "/", timeout=5) as index:
                body = json.loads(index.read())
                if health.status == 200 and index.status == 200:
                    ok += 1
                    instances.add(body.get("instance"))
                    versions.add(body.get("version"))
                    continue
                last = f"HTTP {health.status}/{index.status}"
        except (urllib.error.URLError, OSError, ValueError) as err:
            last = str(err)
        time.sleep(1)
    echo(f"smoke test of {url}: {ok}/{requests} OK from {len(instances)} instances, versions {sorted(versions)}")
    return {"url": url, "instances": sorted(instances), "versions": sorted(versions)}
