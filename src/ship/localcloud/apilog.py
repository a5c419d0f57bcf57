"""One line for every AWS API call the local cloud answers, in ``api.log`` beside its log:

    2026-11-29 17:10:56.354 ecs CreateService 200 12.3ms Terraform

the service (from the request's SigV4 credential scope), the operation, the status, how long
the answer took (the wait for the emulator's lock included), and the client that called.
``call`` (pure) says what a request is; the WSGI wrapper ``ApiLog`` times it and writes the
line. The file rolls over at ``MAX_BYTES`` (one older file kept), so a long-lived local
cloud does not grow it without bound.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs

__all__ = ["Call", "call", "client_of", "service_of", "ApiLog", "FILENAME", "MAX_BYTES"]

FILENAME = "api.log"
MAX_BYTES = 5 * 1024 * 1024
FORM_LIMIT = 1024 * 1024     # a query-protocol body read to find its Action (larger: not read)
PATH_SHOWN = 120

# User-Agent products, most specific first: Terraform's AWS provider also names the Go SDK,
# the AWS CLI names botocore.
_CLIENTS = ("Terraform", "aws-cli", "Boto3", "aws-sdk-go-v2", "aws-sdk-go", "aws-sdk-java", "aws-sdk-js",
            "Botocore")


class Call(NamedTuple):
    service: str
    operation: str


def service_of(environ: dict) -> str:
    """The AWS service a signed request is for: the service of its SigV4 credential scope."""
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    scope = auth.partition("Credential=")[2].partition(",")[0].split("/")
    return scope[3] if len(scope) >= 5 else ""


def call(environ: dict, form: bytes | None = None) -> Call:
    """The service and operation of a request: the JSON protocol's ``X-Amz-Target``, the query
    protocol's ``Action`` (query string, or ``form``, the request's url-encoded body), else the
    REST method and path (S3, ECR's registry API)."""
    service = service_of(environ) or "?"
    target = environ.get("HTTP_X_AMZ_TARGET") or ""
    if target:
        return Call(service, target.rpartition(".")[2] or target)
    for source in (environ.get("QUERY_STRING") or "", (form or b"").decode("latin-1")):
        action = parse_qs(source).get("Action")
        if action and action[0]:
            return Call(service, action[0][:80])
    path = environ.get("PATH_INFO") or "/"
    if len(path) > PATH_SHOWN:
        path = path[:PATH_SHOWN] + "…"
    return Call(service, f"{environ.get('REQUEST_METHOD') or '?'} {path}")


def client_of(user_agent: str) -> str:
    """Who called, from the User-Agent: the most specific known product, else its first word."""
    agent = user_agent.lower()
    for product in _CLIENTS:
        if product.lower() + "/" in agent:
            return product
    return (user_agent.split() or ["-"])[0].split("/")[0][:40]


def _is_form(environ: dict) -> bool:
    return (environ.get("CONTENT_TYPE") or "").startswith("application/x-www-form-urlencoded")


class ApiLog:
    """WSGI middleware: call the app, then log the call in one line. Meant to run outside the
    emulator's lock: it reads a url-encoded body from the client and writes the file."""

    def __init__(self, app, state_dir: Path):
        self.app = app
        # a logger of its own (not in logging's registry), writing to this state directory's file
        self.log = logging.Logger("ship.localcloud.api", logging.INFO)
        handler = logging.handlers.RotatingFileHandler(Path(state_dir) / FILENAME, maxBytes=MAX_BYTES,
                                                       backupCount=1)
        handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", "%Y-%m-%d %H:%M:%S"))
        self.log.addHandler(handler)

    def __call__(self, environ, start_response):
        started = time.monotonic()
        form = self._read_form(environ)
        status = ["-"]

        def record_status(line, headers, exc_info=None):
            status[0] = str(line).split(" ", 1)[0]
            return start_response(line, headers, exc_info) if exc_info else start_response(line, headers)

        try:
            return self.app(environ, record_status)
        finally:
            what = call(environ, form)
            self.log.info("%s %s %s %.1fms %s", what.service, what.operation, status[0],
                          (time.monotonic() - started) * 1000, client_of(environ.get("HTTP_USER_AGENT") or ""))

    @staticmethod
    def _read_form(environ) -> bytes | None:
        """A url-encoded body (the query protocol's), read and put back for the app; None otherwise."""
        if not _is_form(environ):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if not 0 < length <= FORM_LIMIT:
            return None
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        return body
