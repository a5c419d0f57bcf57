"""moto's version and the imports of its internals, kept together so tests can check them (moto is
imported where it is used: ``share_botocore_loader`` must run before it is)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator, NamedTuple

MOTO_MIN = (5, 2, 5)
MOTO_MAX_EXCLUSIVE = (5, 3)


def moto_version() -> tuple[int, ...]:
    import moto

    parts = []
    for piece in moto.__version__.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_version() -> None:
    import moto

    from ship.errors import ShipError

    v = moto_version()
    if not (MOTO_MIN <= v < MOTO_MAX_EXCLUSIVE):
        raise ShipError(
            f"the local cloud needs moto >= 5.2.5 and < 5.3 (found {moto.__version__}); "
            "install the project's dev dependencies"
        )


def share_botocore_loader() -> None:
    """Every botocore session of this process gets the same loader (sharing one is what
    botocore's ``register_component('data_loader', ...)`` is for), so each service's model is
    parsed once per process. moto makes boto3 sessions of its own as it builds backends and,
    at the import of its EC2 models, one for each of three partitions, and a session's own
    loader parses its models again: EC2's alone is 5 MB of JSON. Call before moto's models
    are imported."""
    import functools

    import botocore.loaders
    import botocore.session

    if not hasattr(botocore.session.create_loader, "cache_info"):
        botocore.session.create_loader = functools.lru_cache(maxsize=None)(botocore.loaders.create_loader)


def list_moto_modules_once() -> None:
    """moto's ``list_of_moto_modules()`` lists its package directory (~180 entries, a stat
    each) every time it is called, and moto's server calls it for every request, to see
    whether the Host header names a service; the directory does not change while the local
    cloud runs: it is listed once."""
    import functools

    import moto.backends

    found = moto.backends.list_of_moto_modules
    if not hasattr(found, "cache_info"):
        listing = functools.lru_cache(maxsize=None)(lambda: tuple(found()))
        listing()       # listed here, at start, not on the first request
        moto.backends.list_of_moto_modules = listing


def method_names_once() -> None:
    """moto looks up an operation by listing its response class's methods (``inspect.getmembers``
    over the class and its bases) on every request; the local cloud's classes are complete once
    ``emulator.install`` has patched them, so each class's list is made once. Call after install."""
    import functools

    import moto.core.responses

    found = moto.core.responses.method_names_from_class
    if not hasattr(found, "cache_info"):
        moto.core.responses.method_names_from_class = functools.lru_cache(maxsize=None)(found)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Internals(NamedTuple):
    """The moto modules the patches touch (indexable: ``internals()[2]`` is elbv2's models)."""

    ecs_models: Any
    ecs_responses: Any
    elbv2_models: Any
    ecr_models: Any
    logs_models: Any
    ecs_exceptions: Any


def internals() -> Internals:
    from moto.ecr import models as ecr_models
    from moto.ecs import exceptions as ecs_exceptions
    from moto.ecs import models as ecs_models
    from moto.ecs import responses as ecs_responses
    from moto.elbv2 import models as elbv2_models
    from moto.logs import models as logs_models

    return Internals(ecs_models, ecs_responses, elbv2_models, ecr_models, logs_models, ecs_exceptions)


def backends(backend_dict) -> Iterator[tuple[str, str, Any]]:
    """(account, region, backend) for every backend moto has created."""
    for account, per_region in list(dict.items(backend_dict)):
        for region, backend in list(dict.items(per_region)):
            yield account, region, backend
