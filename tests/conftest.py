import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import ROOT  # noqa: E402,F401


@pytest.fixture
def app(monkeypatch):
    from hello import create_app

    monkeypatch.delenv("ECS_CONTAINER_METADATA_URI_V4", raising=False)
    return create_app({"TESTING": True, "APP_VERSION": "test-1"})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def aws_credentials(monkeypatch):
    """Fake credentials so no test can reach a real AWS account."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return os.environ
