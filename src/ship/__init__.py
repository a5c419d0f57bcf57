"""ship: the deployment engine behind tasks.py.

Layers, from the bottom: thin AWS client wrappers (``ship.aws``), domain
types (``ship.domain``), actions (``ship.actions``) and the local cloud
(``ship.localcloud``) that makes an emulator behave like ECS Fargate + ALB.
"""

__all__ = ["ShipError"]

from ship.errors import ShipError  # noqa: E402
