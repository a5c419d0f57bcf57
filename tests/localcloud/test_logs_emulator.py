"""CloudWatch Logs filter patterns through the API (moto in-process, patched by emulator/logs.py)."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ship import oci
from ship.localcloud import emulator

GROUP = "/ecs/hello"
MESSAGES = [
    "[ERROR 419] MISSING ARGUMENTS",
    "[WARN] slow request",
    json.dumps({"status": 404, "path": "/missing", "level": "info"}),
    json.dumps({"status": 200, "path": "/", "level": "info"}),
    json.dumps({"status": 500, "path": "/boom", "level": "error"}),
    '127.0.0.1 - - [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.1" 404 209',
]


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory):
    emulator.install(oci.BlobStore(tmp_path_factory.mktemp("blobs")))


@pytest.fixture
def logs(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName=GROUP)
        client.create_log_stream(logGroupName=GROUP, logStreamName="web/web/1")
        client.create_log_group(logGroupName="/empty")
        client.put_log_events(logGroupName=GROUP, logStreamName="web/web/1", logEvents=[
            {"timestamp": int(time.time() * 1000) - 1000 + i, "message": m} for i, m in enumerate(MESSAGES)])
        yield client


def _found(logs, pattern: str) -> list[int]:
    events = logs.filter_log_events(logGroupName=GROUP, filterPattern=pattern)["events"]
    return [MESSAGES.index(e["message"]) for e in events]


@pytest.mark.parametrize("pattern, expected", [
    ("", [0, 1, 2, 3, 4, 5]),
    ("{ $.status = 404 }", [2]),
    ("{ $.status >= 400 && $.level = info }", [2]),
    ("{ $.status >= 400 || $.path = \"/\" }", [2, 3, 4]),
    ("{ $.missing NOT EXISTS }", [2, 3, 4]),
    ("?ERROR ?WARN", [0, 1]),
    ("ERROR -MISSING", []),
    ("[ip, user, username, timestamp, request, status = 404, bytes]", [5]),
    ("%\"status\": [45]0[04]%", [2, 4]),
])
def test_filter_log_events_matches_the_pattern(logs, pattern, expected):
    assert _found(logs, pattern) == expected


@pytest.mark.parametrize("pattern", ["{ $.status = ", "[a, , b]", '"open', "{ $.a > \"x\" }"])
def test_invalid_patterns_are_invalid_parameter_even_with_no_events(logs, pattern):
    for group in (GROUP, "/empty"):
        with pytest.raises(ClientError) as info:
            logs.filter_log_events(logGroupName=group, filterPattern=pattern)
        assert info.value.response["Error"]["Code"] == "InvalidParameterException"
        assert "Invalid filter pattern" in info.value.response["Error"]["Message"]


def test_metric_and_subscription_filters_reject_invalid_patterns(logs):
    with pytest.raises(ClientError) as info:
        logs.put_metric_filter(logGroupName=GROUP, filterName="f", filterPattern="{ $.a = ",
                               metricTransformations=[{"metricName": "m", "metricNamespace": "n",
                                                       "metricValue": "1"}])
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"
    logs.put_metric_filter(logGroupName=GROUP, filterName="f", filterPattern="{ $.status = 5* }",
                           metricTransformations=[{"metricName": "m", "metricNamespace": "n", "metricValue": "1"}])
    assert logs.describe_metric_filters(logGroupName=GROUP)["metricFilters"][0]["filterPattern"] == \
        "{ $.status = 5* }"


def test_test_metric_filter(logs):
    resp = logs.test_metric_filter(filterPattern="[ip, user, username, timestamp, request, status = 4*, bytes]",
                                   logEventMessages=[MESSAGES[0], MESSAGES[5]])
    assert [(m["eventNumber"], m["extractedValues"]["$status"]) for m in resp["matches"]] == [(2, "404")]
