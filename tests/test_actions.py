"""ship.actions (roll out, watch, promote, rollback, prune) against moto in this process, with the
local cloud's emulator patches installed (ECS deployments as AWS reports them).

The AWS API path is real (boto3 -> moto -> the emulator's patches); what no API call can do here, a
data plane running the tasks, is played by `_finish`: it ends a deployment the way ECS (or the local
cloud's data plane) reports it, through the emulator's own service accessors."""

from __future__ import annotations

import pytest

from ship import config, oci
from ship.actions import Options
from ship.actions.promote import promote
from ship.actions.prune import plan_prune, prune
from ship.actions.rollback import rollback
from ship.actions.rollout import mark_steady, roll_to, watch
from ship.aws import Session
from ship.errors import ShipError
from ship.queries import current_image, image_of, target_of
from ship.localcloud import emulator
from ship.localcloud.emulator.ecs.services import iter_services

FAST = Options(timeout=5, poll=0.01)


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory):
    emulator.install(oci.BlobStore(tmp_path_factory.mktemp("blobs")))


@pytest.fixture
def env(staging_on_moto):
    return staging_on_moto


def _revision(ecs, env, image: str) -> str:
    return ecs.register_task_definition(
        family=env.service_name, containerDefinitions=[{"name": "app", "image": image, "memory": 256,
                                                        "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]


def _world(env, images=("repo:v1",)) -> tuple[Session, list[str]]:
    """A cluster and a service of ``env`` on the first of ``images``' revisions, deployment finished."""
    session = Session(env)
    ecs = session.ecs.client
    ecs.create_cluster(clusterName=env.cluster_name)
    arns = [_revision(ecs, env, image) for image in images]
    ecs.create_service(cluster=env.cluster_name, serviceName=env.service_name, taskDefinition=arns[0],
                       desiredCount=2)
    _finish(env)
    return session, arns


def _handle(env):
    [svc] = [s for s in iter_services() if s.name == env.service_name]
    return svc


def _finish(env, outcome: str = "COMPLETED") -> None:
    """End the primary deployment: COMPLETED (older deployments gone, all tasks running) or FAILED."""
    svc = _handle(env)
    primary = next(d for d in svc.deployments if d["status"] == "PRIMARY")
    if outcome == "COMPLETED":
        primary.update(rolloutState="COMPLETED", rolloutStateReason="ECS deployment completed.",
                       runningCount=svc.desired_count, pendingCount=0)
        for dep in [d for d in svc.deployments if d is not primary]:
            svc.remove_deployment(dep["id"])
        svc.set_counts(svc.desired_count, 0)
    else:
        primary.update(rolloutState="FAILED", failedTasks=3,
                       rolloutStateReason="ECS deployment circuit breaker: tasks failed to start.")


def _service(session, env) -> dict:
    return session.ecs.describe_service(env.cluster_name, env.service_name)


def test_roll_to_updates_the_service_and_watch_returns_the_steady_service(env):
    session, (v1, v2) = _world(env, ("repo:v1", "repo:v2"))
    said: list[str] = []
    started = roll_to(session, target_of(env), v2, Options(wait=False), said.append)
    dep = started.primary
    assert started.task_definition == v2 and dep.task_definition == v2 and dep.rollout_state == "IN_PROGRESS"
    assert [(d.status, d.task_definition) for d in started.deployments] == [("PRIMARY", v2), ("ACTIVE", v1)]
    assert said == [f"deploy: {env.service_name} -> {env.service_name}:2 (deployment {dep.id})"]

    _finish(env)
    steady = watch(session, target_of(env), dep.id, v2, FAST, said.append)
    assert steady.is_steady_on(dep.id)
    assert [(d.id, d.status, d.rollout_state, d.counts[:3]) for d in steady.deployments] == [
        (dep.id, "PRIMARY", "COMPLETED", (2, 2, 0))]
    assert said[1].endswith(f"new {env.service_name}:2: 2/2 running, 0 pending, COMPLETED")


def test_roll_to_dry_run_changes_nothing(env):
    session, (v1, v2) = _world(env, ("repo:v1", "repo:v2"))
    before = _service(session, env)
    said: list[str] = []
    roll_to(session, target_of(env), v2, Options(dry_run=True), said.append)
    assert said == [f"dry run: would update {env.service_name} to {env.service_name}:2"]
    assert _service(session, env) == before


def test_watch_reports_a_failed_deployment_in_one_line(env):
    session, (v1, v2) = _world(env, ("repo:v1", "repo:v2"))
    dep = roll_to(session, target_of(env), v2, Options(wait=False), lambda line: None).primary
    _finish(env, "FAILED")
    with pytest.raises(ShipError) as err:
        watch(session, target_of(env), dep.id, v2, FAST, lambda line: None)
    assert str(err.value) == (
        f"rollout of {env.service_name}:2 failed: ECS deployment circuit breaker: tasks failed to start.; "
        f"see why in the tasks' output: `inv logs --env={env.name}`")


def test_watch_gives_up_after_the_timeout_naming_what_holds_the_rollout(env):
    session, (v1, v2) = _world(env, ("repo:v1", "repo:v2"))
    dep = roll_to(session, target_of(env), v2, Options(wait=False), lambda line: None).primary
    with pytest.raises(ShipError) as err:
        watch(session, target_of(env), dep.id, v2, Options(timeout=0.05, poll=0.01), lambda line: None)
    assert str(err.value).startswith(f"rollout of {env.service_name}:2 not steady after 0s; stuck: ")


def test_rollback_returns_to_the_newest_other_steady_revision(env):
    session, (v1, v2, v3) = _world(env, ("repo:v1", "repo:v2", "repo:v3"))
    mark_steady(session, v1)
    for arn in (v2, v3):
        roll_to(session, target_of(env), arn, Options(wait=False), lambda line: None)
        _finish(env)
    mark_steady(session, v2)  # v3 runs; v2 is the newest other revision that was steady
    said: list[str] = []
    dep = rollback(env, Options(wait=False), said.append, session=session).primary
    assert said[0] == f"rolling back {env.service_name} from {env.service_name}:3 to {env.service_name}:2 (repo:v2)"
    assert (dep.task_definition, dep.status, dep.rollout_state) == (v2, "PRIMARY", "IN_PROGRESS")
    assert _service(session, env)["taskDefinition"] == v2


def test_rollback_without_a_steady_earlier_revision_is_refused_and_changes_nothing(env):
    session, (v1, v2) = _world(env, ("repo:v1", "repo:v2"))
    before = _service(session, env)
    with pytest.raises(ShipError) as err:
        rollback(env, FAST, lambda line: None, session=session)
    assert str(err.value) == (f"{env.service_name} has no earlier revision that reached a steady deployment; "
                              "nothing to roll back to")
    assert _service(session, env) == before


def test_prune_keeps_the_newest_the_running_and_the_rollback_target(env):
    session, arns = _world(env, tuple(f"repo:v{i}" for i in range(1, 7)))
    v1, v2, v3, v4, v5, v6 = arns
    roll_to(session, target_of(env), v3, Options(wait=False), lambda line: None)
    _finish(env)
    mark_steady(session, v2)  # the rollback target; v1 ran once but was never marked steady
    assert plan_prune(session, env, keep=2) == ([v2, v3, v5, v6], [v1, v4])

    said: list[str] = []
    assert prune(env, Options(dry_run=True), keep=2, echo=said.append, session=session) == [v1, v4]
    assert said == [f"dry run: would deregister {env.service_name}:1",
                    f"dry run: would deregister {env.service_name}:4",
                    f"kept 4 revisions: {', '.join(a.rsplit('/', 1)[1] for a in (v2, v3, v5, v6))}"]
    assert session.ecs.list_task_definitions(env.service_name) == arns

    assert prune(env, Options(), keep=2, echo=lambda line: None, session=session) == [v1, v4]
    assert session.ecs.list_task_definitions(env.service_name) == [v2, v3, v5, v6]
    assert session.ecs.list_task_definitions(env.service_name, status="INACTIVE") == [v1, v4]


def test_promote_refuses_one_environment_and_an_empty_source_and_changes_nothing(env):
    production = config.load("production")
    session, _ = _world(env)
    before = _service(session, env)
    with pytest.raises(ShipError) as same:
        promote(env, env, FAST, lambda line: None)
    assert str(same.value) == "promote needs two different environments (--from and --to)"
    with pytest.raises(ShipError) as empty:
        promote(production, env, FAST, lambda line: None)
    assert str(empty.value) == "nothing runs in production: deploy there first (inv release --env=production)"
    assert _service(session, env) == before


def test_current_image_and_image_of_answer_from_the_api_and_none_before_there_is_a_service(env):
    session = Session(env)
    assert current_image(env, session) is None                  # no cluster yet
    session.ecs.client.create_cluster(clusterName=env.cluster_name)
    assert current_image(env, session) is None                  # a cluster, no service
    session, arns = _world(env, images=("repo:v1", "repo:v2"))
    assert current_image(env, session) == "repo:v1"
    assert image_of(session, arns[1]) == "repo:v2"
    assert image_of(session, arns[1].rsplit(":", 1)[0] + ":99") is None   # no such revision
