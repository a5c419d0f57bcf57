"""Local environments never reach real AWS; AWS environments never get local settings."""

import pytest

from ship import aws, config
from ship.errors import ShipError


def test_local_environment_gets_dummy_credentials_and_the_emulator(monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "prod-admin")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    env = aws.terraform_env(config.load("local"))
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["AWS_ACCESS_KEY_ID"] == "test"
    assert "AWS_PROFILE" not in env


def test_local_environment_refuses_a_non_loopback_endpoint(monkeypatch):
    monkeypatch.setenv("SHIP_LOCAL_ENDPOINT", "https://ecs.us-east-1.amazonaws.com")
    with pytest.raises(ShipError, match="refusing to use https://ecs.us-east-1.amazonaws.com"):
        aws.terraform_env(config.load("local"))
    with pytest.raises(ShipError, match="refusing"):
        aws.Session(config.load("local"))


def test_aws_environment_drops_local_endpoint_and_dummy_keys(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    env = aws.terraform_env(config.load("staging"))
    assert "AWS_ENDPOINT_URL" not in env
    assert "AWS_ACCESS_KEY_ID" not in env


@pytest.mark.parametrize("url, loopback", [
    ("http://127.0.0.1:4566", True), ("http://localhost:4566", True), ("http://[::1]:4566", True),
    ("http://10.0.0.5:4566", False), ("https://s3.amazonaws.com", False),
])
def test_is_loopback_url(url, loopback):
    assert aws.is_loopback_url(url) is loopback
