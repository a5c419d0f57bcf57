"""moto's version and the imports of its internals, kept together so tests can check them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator, NamedTuple

import moto

MOTO_MIN = (5, 2, 5)
MOTO_MAX_EXCLUSIVE = (5, 3)


def moto_version() -> tuple[int, ...]:
    parts = []
    for piece in moto.__version__.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def check_version() -> None:
    from ship.errors import ShipError

    v = moto_version()
    if not (MOTO_MIN <= v < MOTO_MAX_EXCLUSIVE):
        raise ShipError(
            f"the local cloud needs moto >= 5.2.5 and < 5.3 (found {moto.__version__}); "
            "install the project's dev dependencies"
        )


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
