"""The one-line log of every API call: what a request is (a table), the middleware, and a real
local cloud's api.log."""

from __future__ import annotations

import io
import re

import pytest

from ship.localcloud import apilog

AUTH = ("AWS4-HMAC-SHA256 Credential=test/20261129/us-east-1/{}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=0")


@pytest.mark.parametrize("environ, form, expected", [
    ({"HTTP_AUTHORIZATION": AUTH.format("ecs"),
      "HTTP_X_AMZ_TARGET": "AmazonEC2ContainerServiceV20141113.CreateService"}, None, ("ecs", "CreateService")),
    ({"HTTP_AUTHORIZATION": AUTH.format("ec2"), "QUERY_STRING": "Action=DescribeVpcs&Version=2016-11-15"},
     None, ("ec2", "DescribeVpcs")),
    ({"HTTP_AUTHORIZATION": AUTH.format("elasticloadbalancing")},
     b"Action=CreateLoadBalancer&Version=2015-12-01&Name=x", ("elasticloadbalancing", "CreateLoadBalancer")),
    ({"HTTP_AUTHORIZATION": AUTH.format("s3"), "REQUEST_METHOD": "PUT", "PATH_INFO": "/b/env/local/x.tfstate"},
     None, ("s3", "PUT /b/env/local/x.tfstate")),
    ({"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, None, ("?", "GET /")),                      # unsigned
    ({"HTTP_AUTHORIZATION": AUTH.format("s3"), "REQUEST_METHOD": "GET", "PATH_INFO": "/" + "k" * 300},
     None, ("s3", "GET /" + "k" * (apilog.PATH_SHOWN - 1) + "…")),
    ({"HTTP_AUTHORIZATION": "Bearer x", "HTTP_X_AMZ_TARGET": "Logs_20140328.PutLogEvents"}, None,
     ("?", "PutLogEvents")),
], ids=["json target", "query string", "form body", "rest", "unsigned", "long path", "no sigv4 scope"])
def test_a_request_is_named_by_its_service_and_operation(environ, form, expected):
    assert apilog.call(environ, form) == expected


@pytest.mark.parametrize("agent, client", [
    ("APN/1.0 HashiCorp/1.0 Terraform/1.11.4 (+https://www.terraform.io) terraform-provider-aws/5.100.0 "
     "aws-sdk-go-v2/1.36.3 ua/2.1 os/linux lang/go#1.24", "Terraform"),
    ("aws-cli/1.40.0 md/Botocore#1.38.0 ua/2.1 os/linux#6.1 md/arch#x86_64 lang/python#3.11.7 "
     "botocore/1.38.0", "aws-cli"),
    ("Boto3/1.38.0 md/Botocore#1.38.0 ua/2.1 os/linux Botocore/1.38.0", "Boto3"),
    ("aws-sdk-go-v2/1.30.0 os/linux lang/go#1.22", "aws-sdk-go-v2"),
    ("curl/8.0.1", "curl"),
    ("", "-"),
])
def test_the_client_is_the_most_specific_product_it_names(agent, client):
    assert apilog.client_of(agent) == client


def test_the_middleware_logs_one_line_and_leaves_the_body_to_the_app(tmp_path):
    seen = {}

    def app(environ, start_response):
        seen["body"] = environ["wsgi.input"].read()
        start_response("400 Bad Request", [("Content-Type", "text/xml")])
        return [b"<Error/>"]

    wrapped = apilog.ApiLog(app, tmp_path)
    try:
        body = b"Action=DeleteSecurityGroup&GroupId=sg-1"
        environ = {"HTTP_AUTHORIZATION": AUTH.format("ec2"), "CONTENT_TYPE": "application/x-www-form-urlencoded",
                   "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body), "REQUEST_METHOD": "POST",
                   "PATH_INFO": "/", "HTTP_USER_AGENT": "Boto3/1.38.0 Botocore/1.38.0"}
        assert wrapped(environ, lambda status, headers, exc_info=None: None) == [b"<Error/>"]
        assert seen["body"] == body
        for handler in wrapped.log.handlers:
            handler.flush()
        lines = (tmp_path / apilog.FILENAME).read_text().splitlines()
        assert len(lines) == 1
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ec2 DeleteSecurityGroup 400 \d+\.\dms Boto3",
                            lines[0]), lines
    finally:
        for handler in wrapped.log.handlers:
            handler.close()


def test_a_local_cloud_logs_each_call_it_answers(cloud):
    from helpers import wait_until

    ecs = cloud.client("ecs")
    ecs.create_cluster(clusterName="logged")
    cloud.client("ec2").describe_vpcs()
    cloud.client("s3").create_bucket(Bucket="logged-bucket")
    path = cloud.state_dir / apilog.FILENAME

    def logged() -> list[str]:
        return path.read_text().splitlines() if path.is_file() else []

    wait_until(lambda: len(logged()) >= 3, 10, "three lines in api.log")
    calls = [" ".join(line.split()[2:-2]) for line in logged()]     # without the time, duration, client
    assert calls[-3:] == ["ecs CreateCluster 200", "ec2 DescribeVpcs 200", "s3 PUT /logged-bucket 200"], logged()
