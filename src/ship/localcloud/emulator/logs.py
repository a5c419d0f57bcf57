"""CloudWatch Logs in the emulator: how the data plane delivers task output."""

from __future__ import annotations

from ship.localcloud.emulator.compat import internals as _moto

PATCHES: list[str] = []


def install() -> None:
    pass


def put_log_events(region: str, account: str, group: str, stream: str, events: list[dict],
                   create_group: bool = False) -> bool:
    """Append events ({timestamp, message}); False when the group is missing."""
    logs_models = _moto()[4]
    backend = logs_models.logs_backends[account][region]
    if group not in backend.groups:
        if not create_group:
            return False
        backend.ensure_log_group(group)
    backend.ensure_log_stream(group, stream)
    if events:
        events = sorted(events, key=lambda e: e["timestamp"])
        backend.put_log_events(group, stream, events)
    return True


def log_group_exists(region: str, account: str, group: str) -> bool:
    logs_models = _moto()[4]
    return group in logs_models.logs_backends[account][region].groups
