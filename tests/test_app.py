import contextlib
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hello import create_app
from hello.config import ConfigError, from_env


def test_index_reports_greeting_instance_and_version(client, app):
    resp = client.get("/")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body == {"message": "Hello, World!", "instance": app.config["INSTANCE"], "version": "test-1"}
    host, _, pid = body["instance"].rpartition(":")
    assert host and pid.isdigit()


def test_health_is_ok(client):
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_not_found_is_json(client):
    resp = client.get("/nope")
    assert resp.status_code == 404
    assert resp.is_json
    assert resp.get_json()["error"] == "Not Found"


def test_method_not_allowed_is_json(client):
    resp = client.post("/health")
    assert resp.status_code == 405
    assert resp.get_json()["status"] == 405


def test_internal_error_is_json_without_trace(monkeypatch):
    monkeypatch.delenv("ECS_CONTAINER_METADATA_URI_V4", raising=False)
    app = create_app({"APP_VERSION": "x"})

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail")

    resp = app.test_client().get("/boom")
    assert resp.status_code == 500
    assert resp.get_json() == {"error": "Internal Server Error", "status": 500}
    assert b"secret detail" not in resp.data
    assert b"Traceback" not in resp.data


def test_one_json_log_line_per_request(client, capsys):
    client.get("/health", headers={"X-Amzn-Trace-Id": "Root=1-abc"})
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["logger"] == "hello.request"
    assert entry["method"] == "GET" and entry["path"] == "/health" and entry["status"] == 200
    assert entry["trace_id"] == "Root=1-abc"
    assert entry["version"] == "test-1"
    assert entry["duration_ms"] >= 0


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"GREETING": "   "}, "GREETING"),
        ({"METADATA_TIMEOUT": "soon"}, "METADATA_TIMEOUT"),
        ({"METADATA_TIMEOUT": "99"}, "METADATA_TIMEOUT"),
        ({"APP_VERSION": "v" * 500}, "APP_VERSION"),
    ],
)
def test_bad_config_names_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        from_env(env)


def test_config_defaults():
    cfg = from_env({})
    assert cfg["APP_VERSION"] == "dev"
    assert cfg["LOG_LEVEL"] == "INFO"


def test_test_config_overrides_environment(monkeypatch):
    monkeypatch.setenv("GREETING", "from env")
    monkeypatch.delenv("ECS_CONTAINER_METADATA_URI_V4", raising=False)
    app = create_app({"GREETING": "from test"})
    assert app.test_client().get("/").get_json()["message"] == "from test"
    assert create_app().test_client().get("/").get_json()["message"] == "from env"


class _Metadata(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/v4/abc/task":
            body = json.dumps({"TaskARN": "arn:aws:ecs:us-east-1:123456789012:task/c/0123456789abcdef"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _metadata_endpoint(handler):
    """A task metadata endpoint answering with ``handler``; yields its ECS_CONTAINER_METADATA_URI_V4."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v4/abc"
    finally:
        server.shutdown()
        server.server_close()


def test_instance_is_the_ecs_task_id_when_metadata_answers(monkeypatch):
    with _metadata_endpoint(_Metadata) as uri:
        monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", uri)
        app = create_app()
        assert app.test_client().get("/").get_json()["instance"] == "0123456789abcdef"


class _SlowFirstMetadata(_Metadata):
    """Answers the first request only after the client's first wait is over."""
    requests: list[str] = []

    def do_GET(self):
        self.requests.append(self.path)
        if len(self.requests) == 1:
            time.sleep(1.0)
        try:
            super().do_GET()
        except (BrokenPipeError, ConnectionResetError):
            pass   # the first request's client gave up waiting, as the test means it to


def test_a_metadata_endpoint_slow_to_answer_is_asked_again(monkeypatch):
    monkeypatch.setattr(_SlowFirstMetadata, "requests", [])
    with _metadata_endpoint(_SlowFirstMetadata) as uri:
        monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", uri)
        app = create_app({"METADATA_TIMEOUT": 0.2})
        assert app.test_client().get("/").get_json()["instance"] == "0123456789abcdef"
        assert len(_SlowFirstMetadata.requests) == 2


def test_instance_falls_back_when_metadata_is_unreachable(monkeypatch):
    from ship.net import free_port

    monkeypatch.setenv("ECS_CONTAINER_METADATA_URI_V4", f"http://127.0.0.1:{free_port()}/v4/x")
    app = create_app({"METADATA_TIMEOUT": 0.2})
    assert ":" in app.test_client().get("/").get_json()["instance"]


def test_logging_handler_is_not_duplicated(monkeypatch):
    monkeypatch.delenv("ECS_CONTAINER_METADATA_URI_V4", raising=False)
    create_app()
    create_app()
    handlers = [h for h in logging.getLogger("hello").handlers if getattr(h, "_hello", False)]
    assert len(handlers) == 1
