"""CloudWatch Logs in the emulator: how the data plane delivers task output, and filter patterns.

moto 5.2.5 understands plain terms and one quoted phrase; any other filter pattern (JSON, ``?`` terms,
``-`` exclusions, space-delimited ``[...]``, regular expressions) matched every event. Here the
whole syntax is matched by ``logfilter`` (pure), and a pattern AWS rejects is an
InvalidParameterException before any event is read, as on AWS.
"""

from __future__ import annotations

import json

from ship.localcloud.emulator import logfilter
from ship.localcloud.emulator.compat import internals as _moto

PATCHES = [
    "logs: FilterLogEvents and StartLiveTail match the whole filter pattern syntax (terms, phrases, ? and -, "
    "regular expressions, JSON selectors, space-delimited fields); invalid patterns are InvalidParameterException",
    "logs: PutMetricFilter and PutSubscriptionFilter reject invalid filter patterns (InvalidParameterException)",
    "logs: TestMetricFilter is implemented (matches and extractedValues)",
]

# What the local cloud acts on (emulator/coverage.py): tasks' output is delivered to these groups and
# streams by the data plane, and these answers are computed from it.
ACTED_ON = {"CreateLogGroup", "DeleteLogGroup", "CreateLogStream", "GetLogEvents", "FilterLogEvents",
            "StartLiveTail", "TestMetricFilter"}


def check_pattern(pattern: str | None, what: str = "filter pattern") -> None:
    """Raise moto's InvalidParameterException for a pattern AWS rejects."""
    from moto.logs.exceptions import InvalidParameterException

    try:
        logfilter.compile(pattern or "")
    except logfilter.FilterPatternError as exc:
        raise InvalidParameterException(f"Invalid {what}: {exc}") from None


class EventMessageFilter:
    """Stands in for moto's class of the same name (moto builds one per event it filters)."""

    def __init__(self, pattern: str):
        check_pattern(pattern)
        self.matcher = logfilter.compile(pattern or "")

    def matches(self, message: str) -> bool:
        return self.matcher.matches(message)


def install() -> None:
    from moto.logs import models, responses

    Backend = models.LogsBackend
    if getattr(Backend, "_ship_patched", False):
        return
    setattr(models, "EventMessageFilter", EventMessageFilter)
    orig_filter, orig_tail = Backend.filter_log_events, Backend.start_live_tail
    orig_metric, orig_subscription = Backend.put_metric_filter, Backend.put_subscription_filter

    def filter_log_events(self, log_group_name, log_stream_names, start_time, end_time, limit, next_token,
                          filter_pattern, interleaved):
        check_pattern(filter_pattern)
        return orig_filter(self, log_group_name, log_stream_names, start_time, end_time, limit, next_token,
                           filter_pattern, interleaved)

    def start_live_tail(self, log_group_identifiers, log_stream_names, log_stream_name_prefixes,
                        log_event_filter_pattern):
        check_pattern(log_event_filter_pattern)
        return orig_tail(self, log_group_identifiers, log_stream_names, log_stream_name_prefixes,
                         log_event_filter_pattern)

    def put_metric_filter(self, filter_name, filter_pattern, log_group_name, metric_transformations):
        check_pattern(filter_pattern, "metric filter pattern")
        return orig_metric(self, filter_name, filter_pattern, log_group_name, metric_transformations)

    def put_subscription_filter(self, log_group_name, filter_name, filter_pattern, destination_arn, role_arn):
        check_pattern(filter_pattern, "subscription filter pattern")
        return orig_subscription(self, log_group_name, filter_name, filter_pattern, destination_arn, role_arn)

    def test_metric_filter(self):
        # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_TestMetricFilter.html
        pattern = self._get_param("filterPattern")
        check_pattern(pattern)
        matcher = logfilter.compile(pattern or "")
        found = [{"eventNumber": i, "eventMessage": message, "extractedValues": matcher.extract(message)}
                 for i, message in enumerate(self._get_param("logEventMessages") or [], start=1)
                 if matcher.matches(message)]
        return json.dumps({"matches": found})

    # Patches are set as attributes: moto's classes are typed, their methods are not ours to retype.
    for name, fn in (("filter_log_events", filter_log_events), ("start_live_tail", start_live_tail),
                     ("put_metric_filter", put_metric_filter), ("put_subscription_filter", put_subscription_filter)):
        setattr(Backend, name, fn)
    setattr(responses.LogsResponse, "test_metric_filter", test_metric_filter)
    setattr(Backend, "_ship_patched", True)


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
