"""The Flask application factory."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone

from flask import Flask, g, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from hello import config as app_config
from hello.instance import describe_instance
from hello.views import bp

REQUEST_LOGGER = "hello.request"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line, the shape CloudWatch Logs Insights parses."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _JSONProvider(DefaultJSONProvider):
    """Flask's JSON with keys in the order the view wrote them."""

    sort_keys = False


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is at the time of the record."""

    _hello = True  # the handler create_app installs (once per process)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass


def _configure_logging(level: str) -> None:
    root = logging.getLogger("hello")
    if not any(isinstance(h, _StdoutHandler) for h in root.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonLineFormatter())
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(level)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: defaults, then environment variables, then ``test_config``."""
    app = Flask(__name__)
    app.config.from_mapping(app_config.from_env())
    if test_config:
        app.config.from_mapping(test_config)
    _configure_logging(app.config["LOG_LEVEL"])
    app.config["INSTANCE"] = app.config.get("INSTANCE") or describe_instance(
        app.config["ECS_CONTAINER_METADATA_URI_V4"], app.config["METADATA_TIMEOUT"]
    )
    app.json = _JSONProvider(app)
    app.register_blueprint(bp)
    _register_error_handlers(app)
    _register_request_log(app)
    return app


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        return jsonify(error=err.name, status=err.code, message=err.description), err.code

    @app.errorhandler(Exception)
    def unhandled(err: Exception):
        # The trace goes to the log, never to the client.
        logging.getLogger("hello").exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(error="Internal Server Error", status=500), 500


def _register_request_log(app: Flask) -> None:
    log = logging.getLogger(REQUEST_LOGGER)

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def log_request(response):
        started = g.get("started")
        log.info(
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3) if started else None,
                    "remote_addr": request.remote_addr,
                    "user_agent": request.user_agent.string,
                    "trace_id": request.headers.get("X-Amzn-Trace-Id"),
                    "instance": app.config["INSTANCE"],
                    "version": app.config["APP_VERSION"],
                }
            },
        )
        return response
