"""Fail fast on the unimplemented: the pure decisions (tables, milliseconds), botocore reading the
errors back as non-retryable client errors, and a real ``serve`` process answering at once."""

from __future__ import annotations

import boto3
import botocore.config
import botocore.session
import pytest
from botocore.parsers import create_parser
from botocore.retries.standard import RetryContext, StandardRetryConditions

from ship.localcloud.emulator import unimplemented as u

SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20261128/eu-west-1/application-autoscaling/aws4_request, "
                           "SignedHeaders=host, Signature=00"}


@pytest.mark.parametrize("backend, headers, version, expected", [
    ("applicationautoscaling", {}, None, "application-autoscaling"),
    ("ecs", {}, None, "ecs"),
    ("awslambda", {}, None, "lambda"),
    ("elb", {}, "2015-12-01", "elbv2"),
    ("elb", {}, "2012-06-01", "elb"),
    (None, SIGNED, None, "application-autoscaling"),
    (None, {"Authorization": SIGNED["Authorization"].replace("application-autoscaling", "monitoring")},
     None, "cloudwatch"),
    (None, {"Authorization": SIGNED["Authorization"].replace("application-autoscaling", "nosuchsvc")},
     None, "nosuchsvc"),
    (None, {}, None, "unknown-service"),
])
def test_service_name(backend, headers, version, expected):
    known = {"application-autoscaling", "ecs", "lambda", "elbv2", "elb", "cloudwatch"}.__contains__
    assert u.service_name(backend, headers, known, version) == expected


@pytest.mark.parametrize("headers, model_protocol, form, expected", [
    ({"X-Amz-Target": "AnyScaleFrontendService.ListTagsForResource",
      "Content-Type": "application/x-amz-json-1.1"}, "json", False, "json"),
    ({"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, "query", True, "query"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, "ec2", True, "ec2"),
    ({"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor"}, "smithy-rpc-v2-cbor", False,
     "smithy-rpc-v2-cbor"),
    ({}, "rest-json", False, "rest-json"),
    ({}, "rest-xml", False, "rest-xml"),
    ({}, None, False, "rest-json"),
])
def test_protocol_of(headers, model_protocol, form, expected):
    assert u.protocol_of(headers, model_protocol, form) == expected


@pytest.mark.parametrize("headers, params, path, rest, expected", [
    ({"X-Amz-Target": "Logs_20140328.ListAnomalies"}, {}, "/", None, "ListAnomalies"),
    ({}, {"Action": "DescribeTrustStores"}, "/", None, "DescribeTrustStores"),
    ({}, {}, "/service/GraniteServiceVersion20100801/operation/ListManagedInsightRules", None,
     "ListManagedInsightRules"),
    ({}, {}, "/2024-08-31/functions/f/recursion-config", "GetFunctionRecursionConfig",
     "GetFunctionRecursionConfig"),
    ({}, {}, "/nowhere", None, "GET /nowhere"),
])
def test_operation_of(headers, params, path, rest, expected):
    assert u.operation_of(headers, params, path, lambda: rest, "GET") == expected


def test_cbor_map_encodes_short_and_long_text():
    assert u.cbor_map({"a": "b"}) == bytes([0xA1, 0x61, ord("a"), 0x61, ord("b")])
    long = "x" * 300
    assert u.cbor_map({"m": long})[3:6] == bytes([0x79, 0x01, 0x2C])  # text, 2-byte length 300


@pytest.mark.parametrize("protocol, service, code, status", [
    ("json", "application-autoscaling", "UnknownOperationException", 400),
    ("rest-json", "lambda", "UnknownOperationException", 400),
    ("smithy-rpc-v2-cbor", "cloudwatch", "UnknownOperationException", 400),
    ("query", "elbv2", "NotImplemented", 501),
    ("ec2", "ec2", "NotImplemented", 501),
    ("rest-xml", "s3", "NotImplemented", 501),
    ("rest-xml", "route53", "NotImplemented", 501),
])
def test_botocore_reads_the_error_and_does_not_retry_it(protocol, service, code, status):
    err = u.Unimplemented(service, "DoThing", protocol, "moto lacks it")
    st, headers, body = u.error_response(err, request_id="rid-1")
    assert st == status
    parsed = create_parser(protocol).parse({"status_code": st, "headers": headers, "body": body}, None)
    assert parsed["Error"]["Code"] == code
    assert f"does not implement {service} DoThing" in parsed["Error"]["Message"]
    assert "moto lacks it" in parsed["Error"]["Message"]
    # botocore's standard retry policy (also what boto3's "adaptive" mode uses) calls it non-retryable
    model = botocore.session.get_session().get_service_model(service)
    ctx = RetryContext(attempt_number=1, operation_model=model.operation_model(model.operation_names[0]),
                       parsed_response=parsed,
                       http_response=type("R", (), {"status_code": st})(), caught_exception=None)
    assert not StandardRetryConditions().is_retryable(ctx)


def test_xml_message_is_escaped():
    err = u.Unimplemented("s3", "GET /a<b>&c", "rest-xml")
    _, _, body = u.error_response(err)
    parsed = create_parser("rest-xml").parse({"status_code": 501, "headers": {}, "body": body}, None)
    assert "GET /a<b>&c" in parsed["Error"]["Message"]


# -- a real serve process ----------------------------------------------------------------------------------------

CALLS = [
    # (service, method, kwargs, code): operations moto 5.2.5 lacks, one per protocol family
    ("ecs", "list_service_deployments", {"service": "svc"}, "UnknownOperationException"),
    ("logs", "list_anomalies", {}, "UnknownOperationException"),
    ("elbv2", "describe_trust_stores", {}, "NotImplemented"),
    ("ec2", "describe_capacity_block_offerings", {"CapacityDurationHours": 24}, "NotImplemented"),
    ("lambda", "get_function_recursion_config", {"FunctionName": "f"}, "UnknownOperationException"),
    ("kendra", "list_indices", {}, "UnknownOperationException"),  # no emulator for the service at all
]


@pytest.mark.parametrize("mode", ["legacy", "standard"])
def test_the_sdk_gets_one_answer_and_does_not_retry(cloud, mode):
    config = botocore.config.Config(retries={"mode": mode, "max_attempts": 5})
    for service, method, kwargs, code in CALLS:
        client = boto3.client(service, endpoint_url=cloud.endpoint, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test", config=config)
        sent = []
        client.meta.events.register("before-send", lambda **kw: sent.append(1))
        with pytest.raises(client.exceptions.ClientError) as info:
            getattr(client, method)(**kwargs)
        err = info.value.response["Error"]
        assert err["Code"] == code, (service, err)
        assert len(sent) == 1, f"{service} {method}: the SDK sent {len(sent)} requests"
        assert info.value.response["ResponseMetadata"].get("RetryAttempts", 0) == 0
        operation = client.meta.method_to_api_mapping[method]
        assert f"{service} {operation}" in err["Message"], err
    log = (cloud.state_dir / "localcloud.log").read_text()
    assert "unimplemented: ecs ListServiceDeployments" in log
    assert "unimplemented: elbv2 DescribeTrustStores" in log
