"""One ship command at a time changes an environment: an OS lock per environment.

Two `inv deploy --env=local` started together would otherwise both create the
state bucket, both `terraform init` the same data directory, and the second
would time out on Terraform's state lock while the first applies. With this
lock the second waits (saying for whom) and then finds the work done, as if
the two had run one after the other.

The lock is ``flock`` on ``<state>/locks/<env>.lock``, held by the command's
process until it exits (the kernel releases it however the process ends).
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
from pathlib import Path

from ship import paths
from ship.errors import ShipError

_HELD: dict[str, int] = {}


def lock_path(env_name: str) -> Path:
    return paths.state_dir() / "locks" / f"{env_name}.lock"


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise ShipError(f"the state directory {paths.state_dir()} is not writable ({exc.strerror}): make it "
                            "writable or point SHIP_STATE_DIR at a writable directory") from None
        raise


def holder_note(env_name: str) -> str:
    """What the command holding the lock wrote about itself ("pid 12 (inv deploy --env=local)")."""
    try:
        return lock_path(env_name).read_text().strip() or "another ship command"
    except OSError:
        return "another ship command"


def hold(env_name: str, echo=print) -> None:
    """Take ``env_name``'s lock for the rest of this process, waiting for whoever holds it."""
    if env_name in _HELD:
        return
    path = lock_path(env_name)
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        echo(f"waiting for {holder_note(env_name)} to finish with {env_name}")
        fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} ({' '.join([Path(sys.argv[0]).name] + sys.argv[1:])[:120]})\n".encode())
    _HELD[env_name] = fd


def held_elsewhere(env_name: str) -> bool:
    """True when another process holds ``env_name``'s lock (it is working on it now)."""
    if env_name in _HELD:
        return False
    path = lock_path(env_name)
    if not path.is_file():
        return False
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def release(env_name: str) -> None:
    fd = _HELD.pop(env_name, None)
    if fd is not None:
        os.close(fd)
