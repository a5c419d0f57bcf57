"""Task definitions: registeredAt/registeredBy/deregisteredAt, and INACTIVE revisions
refused where AWS refuses them.

DeregisterTaskDefinition: "You can't use an INACTIVE task definition to run new
tasks or create new services, and you can't update an existing service to
reference an INACTIVE task definition. However, there may be up to a 10-minute
window following deregistration where these restrictions have not yet taken
effect." (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html)
The window is an allowance, never a promise, so the emulator refuses at once
(``INACTIVE_GRACE_SECONDS``): what passes here passes on AWS. The error is
AWS's: ``InvalidParameterException: TaskDefinition is inactive``.
"""

from __future__ import annotations

from ship.localcloud.emulator.compat import internals as _moto, utcnow

INACTIVE_GRACE_SECONDS = 0.0


def caller_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


def require_active(backend, task_definition: str):
    """The task definition ``task_definition`` names, refusing an INACTIVE one."""
    td = backend.describe_task_definition(task_definition)
    if getattr(td, "status", "ACTIVE") == "INACTIVE":
        since = getattr(td, "deregistered_at", None)
        if since is None or (utcnow() - since).total_seconds() >= INACTIVE_GRACE_SECONDS:
            raise _moto().ecs_exceptions.InvalidParameterException("TaskDefinition is inactive")
    return td


def install() -> None:
    Backend = _moto().ecs_models.EC2ContainerServiceBackend
    if getattr(Backend.register_task_definition, "_ship", False):
        return
    orig_register = Backend.register_task_definition
    orig_deregister = Backend.deregister_task_definition

    def register_task_definition(self, family, container_definitions, *args, **kwargs):
        td = orig_register(self, family, container_definitions, *args, **kwargs)
        td.registered_at = utcnow()
        td.registered_by = caller_arn(self.account_id)
        return td

    def deregister_task_definition(self, task_definition_str):
        td = orig_deregister(self, task_definition_str)
        if getattr(td, "deregistered_at", None) is None:
            td.deregistered_at = utcnow()
        return td

    setattr(register_task_definition, "_ship", True)
    Backend.register_task_definition = register_task_definition
    Backend.deregister_task_definition = deregister_task_definition
