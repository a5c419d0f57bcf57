"""Configuration from environment variables, validated at start-up.

A bad value stops start-up with one line naming the variable, so a task that
is misconfigured fails fast and visibly instead of serving wrong answers.
"""

from __future__ import annotations

import os
from typing import Mapping


class ConfigError(Exception):
    """An environment variable holds a value the app cannot use."""


def _str(env: Mapping[str, str], name: str, default: str, max_len: int = 200) -> str:
    value = env.get(name, default).strip()
    if not value:
        raise ConfigError(f"{name} must not be empty")
    if len(value) > max_len:
        raise ConfigError(f"{name} is longer than {max_len} characters")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, default).strip().upper()
    if value not in choices:
        raise ConfigError(f"{name}={env.get(name)!r} is not one of {', '.join(choices)}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} must be between {low:g} and {high:g}")
    return value


def from_env(env: Mapping[str, str] | None = None) -> dict:
    """Read the app's settings from ``env`` (default: ``os.environ``)."""
    env = os.environ if env is None else env
    return {
        "GREETING": _str(env, "GREETING", "Hello, World!"),
        "APP_VERSION": _str(env, "APP_VERSION", "dev", max_len=128),
        "LOG_LEVEL": _choice(env, "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        # How long to wait for the ECS task metadata endpoint when naming the instance.
        "METADATA_TIMEOUT": _float(env, "METADATA_TIMEOUT", 0.5, 0.05, 10.0),
        "ECS_CONTAINER_METADATA_URI_V4": env.get("ECS_CONTAINER_METADATA_URI_V4", "").strip(),
    }
