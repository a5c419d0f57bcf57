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
"""

from __future__ import annotations

import threading

LOCK = threading.RLock()


def patches() -> list[str]:
    """What the emulator changes in moto, one line each."""
    from ship.localcloud.emulator import autoscaling, ecr, ecs, elbv2, logs

    return [*ecs.PATCHES, *elbv2.PATCHES, *ecr.PATCHES, *logs.PATCHES, *autoscaling.PATCHES]


def install(blob_store) -> None:
    """Apply every patch (idempotent). Call before serving requests."""
    from ship.localcloud.emulator import autoscaling, compat, ecr, ecs, elbv2, logs

    compat.check_version()
    ecs.install()
    elbv2.install()
    ecr.install(blob_store)
    logs.install()
    autoscaling.install()
