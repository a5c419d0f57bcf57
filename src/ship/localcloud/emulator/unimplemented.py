"""Fail fast on what the emulator does not implement.

moto raises ``NotImplementedError`` for an operation it lacks (and Flask answers
a 404 page for a REST path it has no route for); served as is, both become an
HTML "500 Internal Server Error" or 404 page. SDKs take a 500 for a transient
server fault and retry it: the AWS provider for Terraform retries 25 times with
backoff, about 48 minutes, before it gives up.

Here every such request answers at once with an AWS-shaped error in the
service's own protocol, naming the service and the operation, and is logged:

* JSON protocols (awsJson, rest-json, rpc-v2-cbor): HTTP 400
  ``UnknownOperationException``, the code AWS's JSON services answer for an
  operation they do not know.
* XML protocols (query, ec2, rest-xml): HTTP 501 ``NotImplemented``, the code
  and status S3 answers for functionality it does not implement.

Neither is retried: botocore retries 500/502/503/504 and throttling codes
(botocore/retries/standard.py, data/_retry.json), the AWS SDK for Go v2 the
same status codes (aws/retry: DefaultRetryableHTTPStatusCodes).

The pure part (``protocol_of``, ``operation_of``, ``error_response``) decides;
``app_factory`` wraps moto's Flask app factory so each service app answers so.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Callable, Mapping
from xml.sax.saxutils import escape

log = logging.getLogger("ship.localcloud.unimplemented")

JSON_CODE = "UnknownOperationException"
XML_CODE = "NotImplemented"
JSON_STATUS = 400
XML_STATUS = 501
ELBV2_VERSION = "2015-12-01"

# moto backend names that are not botocore service names
_BACKEND_TO_BOTOCORE = {"awslambda": "lambda", "applicationautoscaling": "application-autoscaling"}
# SigV4 signing names that are not botocore service names
_SIGNING_TO_BOTOCORE = {"elasticloadbalancing": "elbv2", "monitoring": "cloudwatch", "email": "ses",
                        "states": "stepfunctions", "execute-api": "apigateway"}


@dataclass(frozen=True)
class Unimplemented:
    """What a client asked for that the local cloud cannot do."""

    service: str        # botocore service name (e.g. "application-autoscaling"), or the signing name
    operation: str      # e.g. "ListTagsForResource", or "<METHOD> <path>" when no operation matched
    protocol: str       # json, rest-json, smithy-rpc-v2-cbor, query, ec2, rest-xml
    detail: str = ""

    @property
    def message(self) -> str:
        text = f"the local cloud (ship-localcloud) does not implement {self.service} {self.operation}"
        return f"{text} ({self.detail})" if self.detail else text


# -- pure decisions ------------------------------------------------------------------------------------------

def signing_scope(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(region, signing name) from a SigV4 Authorization header."""
    auth = headers.get("Authorization") or ""
    match = re.search(r"Credential=[^/,\s]+/\d{8}/([^/]+)/([^/]+)/aws4_request", auth)
    return (match.group(1), match.group(2)) if match else (None, None)


def service_name(backend: str | None, headers: Mapping[str, str], known: Callable[[str], bool],
                 version: str | None = None) -> str:
    """The botocore name of the service a request is for (``known(name)`` says whether botocore has it)."""
    _, signing = signing_scope(headers)
    candidates = []
    if backend == "elb" and version == ELBV2_VERSION:  # moto serves both load balancer APIs from one app
        candidates.append("elbv2")
    if backend:
        candidates += [_BACKEND_TO_BOTOCORE.get(backend, backend)]
    if signing:
        candidates += [_SIGNING_TO_BOTOCORE.get(signing, signing), signing]
    for name in candidates:
        if known(name):
            return name
    return signing or backend or "unknown-service"


def protocol_of(headers: Mapping[str, str], model_protocol: str | None, form: bool) -> str:
    """The protocol the client speaks, which is the one its error must come back in."""
    content_type = (headers.get("Content-Type") or "").lower()
    if (headers.get("smithy-protocol") or "").lower() == "rpc-v2-cbor" or content_type == "application/cbor":
        return "smithy-rpc-v2-cbor"
    if headers.get("X-Amz-Target") or content_type.startswith("application/x-amz-json"):
        return "json"
    if form or content_type.startswith("application/x-www-form-urlencoded"):
        return "ec2" if model_protocol == "ec2" else "query"
    return model_protocol or "rest-json"


def operation_of(headers: Mapping[str, str], params: Mapping[str, str], path: str,
                 rest_match: Callable[[], str | None] | None = None, method: str = "") -> str:
    """The operation's name: X-Amz-Target, the query Action, a REST route of the model, else METHOD path."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.split(".")[-1]
    if params.get("Action"):
        return params["Action"]
    m = re.match(r"^/service/[^/]+/operation/([A-Za-z0-9]+)$", path)  # rpc-v2-cbor
    if m:
        return m.group(1)
    if rest_match is not None:
        name = rest_match()
        if name:
            return name
    return f"{method} {path}".strip()


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    return _cbor_head(3, len(data)) + data


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError("too long")


def cbor_map(fields: Mapping[str, str]) -> bytes:
    """A CBOR map of text to text (RFC 8949), all rpc-v2-cbor error bodies need."""
    out = _cbor_head(5, len(fields))
    for key, value in fields.items():
        out += _cbor_text(key) + _cbor_text(value)
    return out


def error_response(u: Unimplemented, request_id: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the error, shaped as the service's protocol answers errors."""
    rid = request_id or str(uuid.uuid4())
    msg = u.message
    headers = {"x-amzn-RequestId": rid}
    if u.protocol in ("json", "rest-json"):
        headers.update({"x-amzn-ErrorType": JSON_CODE,
                        "Content-Type": "application/x-amz-json-1.1" if u.protocol == "json" else "application/json"})
        body = json.dumps({"__type": JSON_CODE, "message": msg}).encode()
        return JSON_STATUS, headers, body
    if u.protocol == "smithy-rpc-v2-cbor":
        headers.update({"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"})
        return JSON_STATUS, headers, cbor_map({"__type": JSON_CODE, "message": msg})
    headers["Content-Type"] = "text/xml"
    code, text = XML_CODE, escape(msg)
    xml: str
    if u.protocol == "ec2":
        xml = (f"<Response><Errors><Error><Code>{code}</Code><Message>{text}</Message></Error></Errors>"
               f"<RequestID>{rid}</RequestID></Response>")
    elif u.protocol == "rest-xml" and u.service == "s3":
        xml = f"<Error><Code>{code}</Code><Message>{text}</Message><RequestId>{rid}</RequestId></Error>"
    else:
        xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{text}</Message></Error>"
               f"<RequestId>{rid}</RequestId></ErrorResponse>")
    return XML_STATUS, headers, ('<?xml version="1.0" encoding="UTF-8"?>\n' + xml).encode()


# -- the shell: Flask error handlers on moto's per-service apps -------------------------------------------------

def _known(name: str) -> bool:
    return _model(name) is not None


def _model(name: str):
    from moto.core.utils import get_service_model

    try:
        return get_service_model(name)
    except Exception:  # botocore's UnknownServiceError / DataNotFoundError
        return None


def _describe(backend: str | None, detail: str) -> Unimplemented:
    from flask import request

    headers: dict[str, str] = dict(request.headers.items())
    params = dict(request.args.items())
    form = (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded")
    if form:
        params.update(request.form.items())
    service = service_name(backend, headers, _known, params.get("Version"))
    model = _model(service)
    model_protocol = model.protocol if model is not None else None

    def rest_match() -> str | None:
        if model is None or model_protocol not in ("rest-json", "rest-xml"):
            return None
        from moto.core.routing import get_service_router

        try:
            operation, _ = get_service_router(service).match(request)  # type: ignore[arg-type]  # a Flask request
            return operation.name
        except Exception:
            return None

    operation = operation_of(headers, params, request.path, rest_match, request.method)
    return Unimplemented(service, operation, protocol_of(headers, model_protocol, form), detail)


def _answer(backend: str | None, detail: str):
    from flask import Response

    u = _describe(backend, detail)
    status, headers, body = error_response(u)
    log.warning("unimplemented: %s %s (%s) -> %s %s", u.service, u.operation, detail or "no route",
                status, JSON_CODE if status == JSON_STATUS else XML_CODE)
    return Response(body, status=status, headers=headers)


def install_handlers(app, backend: str | None) -> None:
    """Make one of moto's Flask apps answer the unimplemented as AWS would."""
    from werkzeug.exceptions import NotFound

    def on_not_implemented(exc: NotImplementedError):
        return _answer(backend, str(exc))

    def on_not_found(exc: NotFound):
        from flask import request

        if request.url_rule is not None:  # a route matched: a real 404 raised by a handler
            return exc
        return _answer(backend, "")

    app.register_error_handler(NotImplementedError, on_not_implemented)
    app.register_error_handler(NotFound, on_not_found)


def _unknown_service_app():
    """For requests whose service moto has no backend for at all: every path fails fast."""
    from flask import Flask

    app = Flask("ship-unimplemented")

    def everything(path=""):
        raise NotImplementedError("no emulator for this service")

    for rule in ("/", "/<path:path>"):
        app.add_url_rule(rule, endpoint=f"unknown{rule}", view_func=everything,
                         methods=["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"])
    return app


def app_factory(create_backend_app):
    """Wrap moto's ``create_backend_app`` (DomainDispatcherApplication's factory)."""

    def create(service):
        app = _unknown_service_app() if service is None else create_backend_app(service)
        install_handlers(app, service)
        return app

    return create
