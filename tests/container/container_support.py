"""Shared by the container tests (a module of its own: conftest modules are not importable by name)."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SESSION = uuid.uuid4().hex[:10]
LABEL_KEY = "ship.test"
LABEL = f"{LABEL_KEY}={SESSION}"
APP_VERSION = f"ctest-{SESSION}"
METRICS: dict[str, str] = {}


def wait_for(url: str, deadline: float = 30.0):
    """(status, JSON body) of the first answer from ``url``."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status, json.loads(resp.read())
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {deadline:.0f}s: {last}")
