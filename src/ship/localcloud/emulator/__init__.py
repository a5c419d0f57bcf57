"""The emulator: moto, hosted in-process, patched where it does not behave like AWS.

Every touch of moto's internals lives in this package, one module per AWS
service (``ecs``, ``elbv2``, ``ecr``, ``logs``); ``compat`` pins the moto
versions the patches were written for. The data plane reads and changes the
emulator's state only through these modules.

Concurrency: moto serves API requests on threads while the data plane changes
the same objects. ``LOCK`` serialises both: the WSGI wrapper holds it for each
request and the data plane holds it for each state step. Never hold it while
waiting on I/O.

State kept beside moto: what an emulator module keeps outside moto's objects
is a *store*, declared here with ``keep`` (a dataclass instance) or
``register_store`` (any value with a getter and a setter). ``state.capture``
saves every store together with moto's backends in one snapshot, and
``state.install`` puts them back when the local cloud starts again, so a store
must be picklable: dataclasses of plain values, no locks, threads, sockets or
open files, and wall-clock times (``time.time()``, datetimes), never
``time.monotonic()``, for anything that must mean the same after a restart.
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


_STORES: dict[str, Store] = {}


def register_store(name: str, get: Callable[[], Any], put: Callable[[Any], None]) -> None:
    """Declare a store (at import time of the module that owns it). ``name`` is unique and
    stable across versions: it is the store's key in saved snapshots."""
    _STORES[name] = Store(name, get, put)


def keep(name: str, value: T) -> T:
    """Declare a dataclass instance as a store and return it. On restore its fields are
    replaced in place, so every reference to it stays valid::

        STATE = emulator.keep("elbv2", Elbv2State())
    """
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise TypeError(f"store {name!r}: keep() takes a dataclass instance, not {type(value).__name__}")

    def put(restored) -> None:
        for f in dataclasses.fields(value):
            setattr(value, f.name, getattr(restored, f.name, getattr(value, f.name)))

    register_store(name, lambda: value, put)
    return value


def stores() -> list[Store]:
    """Every store of every emulator module (each module of this package is imported, so a
    module's stores are found without being listed anywhere)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return [_STORES[name] for name in sorted(_STORES)]


def patches() -> list[str]:
    """What the emulator changes in moto, one line each."""
    from ship.localcloud.emulator import ecr, ecs, elbv2

    return [*ecs.PATCHES, *elbv2.PATCHES, *ecr.PATCHES]


def warm_up(region: str) -> None:
    """Create the backends the first requests would otherwise wait for (moto builds them
    lazily, under its own lock): IAM in every partition (each request looks its access key
    up in all of them; each loads ~1,600 AWS-managed policies) and EC2 in ``region``
    (~1,300 default AMIs). Meant for a thread of its own once the local cloud serves."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.iam.models import iam_backends
    from moto.utilities.utils import PARTITION_NAMES

    for partition in PARTITION_NAMES:
        iam_backends[DEFAULT_ACCOUNT_ID][partition]
    ec2_backends[DEFAULT_ACCOUNT_ID][region]


def install(blob_store) -> None:
    """Apply every patch (idempotent). Call before serving requests."""
    from ship.localcloud.emulator import compat, ecr, ecs, elbv2

    compat.check_version()
    ecs.install()
    elbv2.install()
    ecr.install(blob_store)
