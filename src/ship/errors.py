"""Errors meant for a person: one line that says what is wrong and what to do."""

from typing import Any


class ShipError(Exception):
    """A failure the user can act on. ``str(err)`` is a single actionable line."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def for_people(err: BaseException) -> str | None:
    """One line for a failure that escaped as a library exception, or None (a real bug: show it).

    The last line of defence behind the ShipErrors the actions raise: missing
    credentials, a read-only or full disk."""
    import errno

    boto: Any
    try:
        import botocore.exceptions as boto
    except ImportError:  # pragma: no cover - botocore is a dependency
        boto = None
    if boto is not None and isinstance(err, boto.NoCredentialsError):
        return ("no AWS credentials found: configure them (`aws configure`, AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY; in CI the GitHub OIDC role) and retry")
    if boto is not None and isinstance(err, (boto.EndpointConnectionError, boto.ConnectTimeoutError)):
        return f"{err}; for local environments start the local cloud (inv local.up)"
    if isinstance(err, OSError) and err.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
        where = f" {err.filename}" if err.filename else ""
        what = {errno.ENOSPC: "the disk is full"}.get(err.errno, "it is not writable")
        return (f"cannot write{where}: {what} ({err.strerror}); free space or make it writable "
                "(SHIP_STATE_DIR moves ship's state)")
    return None
