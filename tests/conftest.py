import os
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import ROOT  # noqa: E402,F401


def pytest_configure(config):
    """The session's life bounds what it starts. Every local cloud it starts (through any fixture,
    or `inv` run by one) stops with its tasks when this process exits, however it dies
    (SHIP_LOCAL_EXIT_WITH, read by ship.localcloud.control.up); SIGTERM ends the session as Ctrl-C
    does (fixtures tear down); and the session ends when its parent dies (nox, a CI step), unless
    it was started to outlive it (nohup: SIGHUP ignored)."""
    from ship.localcloud import lifeline

    from ship.localcloud.emulator.compat import share_botocore_loader

    share_botocore_loader()   # in-process moto tests parsed service models again for every test
    os.environ["SHIP_LOCAL_EXIT_WITH"] = str(os.getpid())

    def interrupt(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    parent = os.getppid()
    if parent > 1 and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        lifeline.watch(parent, lambda: os.kill(os.getpid(), signal.SIGINT), name="session-parent")


@pytest.fixture
def app(monkeypatch):
    from hello import create_app

    monkeypatch.delenv("ECS_CONTAINER_METADATA_URI_V4", raising=False)
    return create_app({"TESTING": True, "APP_VERSION": "test-1"})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def staging_on_moto(monkeypatch):
    """The staging environment, an AWS one (boto3's own session), answered by moto in this process."""
    from moto import mock_aws

    from ship import config

    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_SESSION_TOKEN": "test"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield config.load("staging")
