"""Domain types: task definitions that can copy themselves with a new image,
and deployments that know whether they have finished or failed."""

from __future__ import annotations

from dataclasses import dataclass

from ship.errors import ShipError

# Keys of a described task definition that RegisterTaskDefinition accepts again.
_REGISTER_KEYS = (
    "family", "taskRoleArn", "executionRoleArn", "networkMode", "containerDefinitions", "volumes",
    "placementConstraints", "requiresCompatibilities", "cpu", "memory", "pidMode", "ipcMode",
    "proxyConfiguration", "inferenceAccelerators", "ephemeralStorage", "runtimePlatform", "enableFaultInjection",
)
STEADY_TAG = "ship:steady-at"


@dataclass(frozen=True)
class TaskDefinition:
    raw: dict
    tags: tuple = ()

    @classmethod
    def from_describe(cls, resp: dict) -> "TaskDefinition":
        return cls(resp["taskDefinition"], tuple((t["key"], t["value"]) for t in resp.get("tags", [])))

    @property
    def arn(self) -> str:
        return self.raw["taskDefinitionArn"]

    @property
    def family(self) -> str:
        return self.raw["family"]

    @property
    def revision(self) -> int:
        return int(self.raw["revision"])

    @property
    def label(self) -> str:
        return f"{self.family}:{self.revision}"

    def container(self, name: str | None = None) -> dict:
        containers = self.raw["containerDefinitions"]
        if name:
            for c in containers:
                if c["name"] == name:
                    return c
            raise ShipError(f"task definition {self.label} has no container {name!r}")
        essential = [c for c in containers if c.get("essential", True)]
        if len(essential) != 1:
            raise ShipError(f"task definition {self.label} has {len(essential)} essential containers; "
                            "name the one to update")
        return essential[0]

    def image(self, container: str | None = None) -> str:
        return self.container(container)["image"]

    def register_kwargs(self, image: str, container: str | None = None) -> dict:
        """RegisterTaskDefinition arguments: this revision with only ``image`` changed."""
        target = self.container(container)["name"]
        kwargs = {k: self.raw[k] for k in _REGISTER_KEYS if self.raw.get(k) not in (None, [], {})}
        kwargs["containerDefinitions"] = [dict(c, image=image) if c["name"] == target else c
                                          for c in self.raw["containerDefinitions"]]
        tags = [{"key": k, "value": v} for k, v in self.tags if not k.startswith("ship:") and not k.startswith("aws:")]
        if tags:
            kwargs["tags"] = tags
        return kwargs

    @property
    def steady_at(self) -> str | None:
        return dict(self.tags).get(STEADY_TAG)


@dataclass(frozen=True)
class Deployment:
    raw: dict

    @property
    def id(self) -> str:
        return self.raw["id"]

    @property
    def status(self) -> str:
        return self.raw.get("status", "")

    @property
    def task_definition(self) -> str:
        return self.raw.get("taskDefinition", "")

    @property
    def rollout_state(self) -> str:
        return self.raw.get("rolloutState", "")

    @property
    def reason(self) -> str:
        return self.raw.get("rolloutStateReason", "")

    @property
    def failed(self) -> bool:
        return self.rollout_state == "FAILED"

    @property
    def counts(self) -> tuple[int, int, int, int]:
        r = self.raw
        return r.get("desiredCount", 0), r.get("runningCount", 0), r.get("pendingCount", 0), r.get("failedTasks", 0)


@dataclass(frozen=True)
class Service:
    raw: dict

    @property
    def name(self) -> str:
        return self.raw["serviceName"]

    @property
    def task_definition(self) -> str:
        return self.raw["taskDefinition"]

    @property
    def deployments(self) -> list[Deployment]:
        return [Deployment(d) for d in self.raw.get("deployments", [])]

    def deployment(self, deployment_id: str) -> Deployment | None:
        for d in self.deployments:
            if d.id == deployment_id:
                return d
        return None

    @property
    def primary(self) -> Deployment | None:
        for d in self.deployments:
            if d.status == "PRIMARY":
                return d
        return None

    @property
    def desired(self) -> int:
        return self.raw.get("desiredCount", 0)

    @property
    def running(self) -> int:
        return self.raw.get("runningCount", 0)

    @property
    def pending(self) -> int:
        return self.raw.get("pendingCount", 0)

    @property
    def target_group_arns(self) -> list[str]:
        return [lb["targetGroupArn"] for lb in self.raw.get("loadBalancers", []) if lb.get("targetGroupArn")]

    @property
    def container_name(self) -> str | None:
        for lb in self.raw.get("loadBalancers", []):
            if lb.get("containerName"):
                return lb["containerName"]
        return None

    def is_steady_on(self, deployment_id: str) -> bool:
        """ECS's own notion: one deployment, COMPLETED, all desired tasks running."""
        deps = self.deployments
        return (len(deps) == 1 and deps[0].id == deployment_id and deps[0].rollout_state == "COMPLETED"
                and self.running == self.desired and self.pending == 0)


def family_revision(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]
