"""What the emulator keeps about ECS beside moto's own objects: typed, picklable.

``STORE`` is saved and restored with moto's backends. Nothing here holds a
lock, a thread, a socket or a file; times are wall-clock epoch seconds.

``PROCESS`` is not state: it names this run of the local cloud. Every task
created here carries it, so a task restored from a saved state (another
``PROCESS``) is known never to have been started by this data plane.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ship.localcloud import emulator

PROCESS = uuid.uuid4().hex


@dataclass
class ServiceState:
    """The scheduler's memory of one service between its steps."""

    steady: bool = False
    fail_streak: int = 0
    next_launch_at: float = 0.0
    last_completed_task_definition: str | None = None
    last_completed_deployment: str | None = None


@dataclass
class EcsStore:
    services: dict[str, ServiceState] = field(default_factory=dict)   # by service ARN

    def service(self, arn: str) -> ServiceState:
        state = self.services.get(arn)
        if state is None:
            state = self.services[arn] = ServiceState()
        return state

    def forget_service(self, arn: str) -> None:
        self.services.pop(arn, None)


STORE = emulator.keep("ecs", EcsStore(), version=1)   # covers LocalTask (ecs.tasks) too
