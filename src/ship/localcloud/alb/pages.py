"""Responses the balancer writes itself: error pages, fixed responses, redirects (pure)."""

from __future__ import annotations

from email.utils import formatdate

__all__ = ["REASONS", "error_page", "fixed_response", "redirect_response"]

REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    301: "Moved Permanently", 302: "Found",
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Time-out", 413: "Request Entity Too Large",
    417: "Expectation Failed", 418: "I'm a teapot", 429: "Too Many Requests", 463: "",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Temporarily Unavailable", 504: "Gateway Time-out", 505: "HTTP Version Not Supported",
}


def _head(status: int, content_type: str, length: int, keep_alive: bool, extra: tuple = ()) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, '')}",
        "Server: awselb/2.0",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Type: {content_type}",
        f"Content-Length: {length}",
        *extra,
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
        "", "",
    ]
    return "\r\n".join(lines).encode("latin-1")


def _html(status: int) -> bytes:
    title = f"{status} {REASONS.get(status, '')}".rstrip()
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n").encode()


def error_page(status: int, keep_alive: bool) -> bytes:
    """The page an ALB answers with when it answers itself (awselb/2.0)."""
    body = _html(status)
    return _head(status, "text/html", len(body), keep_alive) + body


def fixed_response(status: int, content_type: str, body: str, keep_alive: bool, head_only: bool) -> bytes:
    """A listener rule's fixed-response action."""
    data = body.encode()
    return _head(status, content_type or "text/plain", len(data), keep_alive) + (b"" if head_only else data)


def redirect_response(status: int, location: bytes, keep_alive: bool, head_only: bool) -> bytes:
    """A listener rule's redirect action (301 or 302)."""
    body = _html(status)
    extra = ("Location: " + location.decode("latin-1"),)
    return _head(status, "text/html", len(body), keep_alive, extra) + (b"" if head_only else body)
