"""The emulator: moto, hosted in-process, patched where it does not behave like AWS.

Every touch of moto's internals lives in this package, one module per AWS
service (``ecs``, ``elbv2``, ``ecr``, ``logs``, ``autoscaling``; ``unimplemented`` answers what
none of them implements); ``compat`` pins the moto
versions the patches were written for. The data plane reads and changes the
emulator's state only through these modules.

Concurrency: moto serves API requests on threads while the data plane changes
the same objects. ``LOCK`` serialises both: the WSGI wrapper holds it for each
request and the data plane holds it for each state step. Never hold it while
waiting on I/O.

State kept beside moto: what an emulator module keeps outside moto's objects
is a *store*, declared with ``keep`` (a dataclass instance) or ``register_store``
(any value with a getter and a setter) when its module is imported.
``state.capture`` saves every store together with moto's backends in one
snapshot, and ``state.install`` puts them back when the local cloud starts
again, so a store must be picklable: dataclasses of plain values, no locks,
threads, sockets or open files, and wall-clock times (``time.time()``,
datetimes), never ``time.monotonic()``, for anything that must mean the same
after a restart.

Every store has a ``version``: bump it when the shape of what its module puts
into a snapshot changes (the store's fields, or objects of its own that the
module keeps inside moto's, such as ecs's ``LocalTask``), so that a snapshot
saved before is set aside rather than loaded into code that misreads it.
(tests/localcloud/test_saved_state.py fails when a shape changes and its
version does not.) Changes that keep the shape (code, patches, new modules)
need no bump: a snapshot outlives them.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

LOCK = threading.RLock()

T = TypeVar("T")


@dataclass(frozen=True)
class Store:
    """State of one emulator module kept beside moto, saved and restored with it."""

    name: str
    get: Callable[[], Any]          # the store's value now (pickled with moto's backends)
    put: Callable[[Any], None]      # replace it with a restored value
    version: int = 1                # the shape of what the store saves (see the module's docstring)
    check: Callable[[Any], None] | None = None   # raises when a restored value cannot be put back


_STORES: dict[str, Store] = {}
_DISCOVERED = False


def register_store(name: str, get: Callable[[], Any], put: Callable[[Any], None], version: int = 1,
                   check: Callable[[Any], None] | None = None) -> None:
    """Declare a store (at import time of the module that owns it). ``name`` is unique and
    stable across versions: it is the store's key in saved snapshots."""
    _STORES[name] = Store(name, get, put, version, check)


def keep(name: str, value: T, version: int = 1) -> T:
    """Declare a dataclass instance as a store and return it. On restore its fields are
    replaced in place, so every reference to it stays valid::

        STORE = emulator.keep("elbv2", ElbStore())
    """
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"store {name!r}: keep() takes a dataclass instance, not {type(value).__name__}")

    def check(restored) -> None:
        if type(restored) is not type(value):
            raise TypeError(f"store {name!r}: a saved {type(restored).__name__} is not a {type(value).__name__}")

    def put(restored) -> None:
        for f in dataclasses.fields(value):
            setattr(value, f.name, getattr(restored, f.name, getattr(value, f.name)))

    register_store(name, lambda: value, put, version, check)
    return value


def stores() -> list[Store]:
    """Every store of every emulator module (each module of this package and of its
    subpackages is imported, so a module's stores are found without being listed anywhere)."""
    global _DISCOVERED
    if not _DISCOVERED:            # once: a snapshot is taken under LOCK, with no file system walk
        import importlib
        import pkgutil

        for info in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
            importlib.import_module(info.name)
        _DISCOVERED = True
    return [_STORES[name] for name in sorted(_STORES)]


def patches() -> list[str]:
    """What the emulator changes in moto, one line each."""
    from ship.localcloud.emulator import autoscaling, ecr, ecs, elbv2, iam, logs

    return [*ecs.PATCHES, *elbv2.PATCHES, *ecr.PATCHES, *logs.PATCHES, *autoscaling.PATCHES, *iam.PATCHES]


def warm_up(region: str) -> None:
    """Create the backends the first requests would otherwise wait for (moto builds them
    lazily, under its own lock): IAM in ``region``'s partition (it loads ~1,300 AWS-managed
    policies; the others are made when a request names them: ``iam.account_of``) and EC2 in
    ``region`` (~1,300 default AMIs). Meant for a thread of its own once the local cloud serves."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    iam_backends[DEFAULT_ACCOUNT_ID][get_partition(region)]
    ec2_backends[DEFAULT_ACCOUNT_ID][region]


def install(blob_store) -> None:
    """Apply every patch (idempotent). Call before serving requests."""
    from ship.localcloud.emulator import autoscaling, compat, ecr, ecs, elbv2, iam, logs

    compat.check_version()
    iam.install()
    ecs.install()
    elbv2.install()
    ecr.install(blob_store)
    logs.install()
    autoscaling.install()
