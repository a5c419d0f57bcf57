"""What ship reads of Terraform's state from the state object in the bucket (against moto in this
process) instead of starting Terraform: the image of Terraform's own task definition
(stack.terraform_image) and the outputs (stack.terraform_outputs); Terraform answers only when
the object cannot be read."""

from __future__ import annotations

import json

import pytest

from ship.aws import Session
from ship.stack import terraform_image, terraform_outputs


class Terraform:
    """Stands in for terraform.Runner: what `terraform state list` and `terraform output` would say."""

    def __init__(self, env, resources=(), outputs=None):
        self.env, self.resources, self.outputs_ = env, list(resources), outputs or {}
        self.asked: list[str] = []

    def state_resources(self):
        self.asked.append("state list")
        return self.resources

    def outputs(self):
        self.asked.append("output")
        return self.outputs_


@pytest.fixture
def env(staging_on_moto):
    return staging_on_moto


def _bucket(session: Session, env) -> None:
    where = {} if env.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": env.region}}
    session.s3.create_bucket(Bucket=env.state_bucket, **where)


def _task_definition(session: Session, env, image: str) -> str:
    return session.ecs.client.register_task_definition(
        family=env.service_name, containerDefinitions=[{"name": "app", "image": image, "memory": 256}],
    )["taskDefinition"]["taskDefinitionArn"]


def _state(session: Session, env, body) -> None:
    session.s3.put_object(Bucket=env.state_bucket, Key=env.state_key,
                          Body=body if isinstance(body, bytes) else json.dumps(body).encode())


def _tf_state(resources: list, outputs: dict) -> dict:
    """The shape of Terraform's state format, version 4."""
    return {"version": 4, "terraform_version": "1.11.4", "serial": 3, "lineage": "l",
            "outputs": {k: {"value": v, "type": "string"} for k, v in outputs.items()}, "resources": resources,
            "check_results": None}


RESOURCE = {"mode": "managed", "type": "aws_ecs_task_definition", "name": "app", "provider": "p", "instances": []}


def test_the_image_comes_from_the_state_object_without_terraform(env):
    session = Session(env)
    _bucket(session, env)
    arn = _task_definition(session, env, "repo:terraform")
    _task_definition(session, env, "repo:rolled-out")   # a later revision, as rollouts register
    _state(session, env, _tf_state([RESOURCE], {"task_definition_arn": arn, "url": "http://x"}))
    tf = Terraform(env)
    assert terraform_image(tf, session) == "repo:terraform"
    assert tf.asked == []


@pytest.mark.parametrize("state", [None, _tf_state([], {}), _tf_state([], {"task_definition_arn": "left"}),
                                   _tf_state([RESOURCE], {})],
                         ids=["no state object yet", "destroyed", "no resources", "no such output"])
def test_no_image_when_the_state_holds_none_and_terraform_is_not_asked(env, state):
    session = Session(env)
    _bucket(session, env)
    if state is not None:
        _state(session, env, state)
    tf = Terraform(env, resources=["aws_ecs_task_definition.app"], outputs={"task_definition_arn": "wrong"})
    assert terraform_image(tf, session) is None
    assert tf.asked == []


@pytest.mark.parametrize("body", [b"not json", b"[]", json.dumps({"version": 4}).encode(),
                                  json.dumps({"resources": {}, "outputs": {}}).encode(), None],
                         ids=["not json", "not an object", "no resources", "resources not a list", "no bucket"])
def test_terraform_answers_when_the_state_object_cannot_be_read(env, body):
    session = Session(env)
    if body is not None:
        _bucket(session, env)
        _state(session, env, body)
    arn = _task_definition(session, env, "repo:from-terraform")
    tf = Terraform(env, resources=["aws_ecs_task_definition.app"], outputs={"task_definition_arn": arn})
    assert terraform_image(tf, session) == "repo:from-terraform"
    assert tf.asked == ["state list", "output"]


def test_outputs_come_from_the_state_object_without_terraform(env):
    session = Session(env)
    _bucket(session, env)
    _state(session, env, _tf_state([RESOURCE], {"url": "http://lb", "task_definition_arn": "arn:td:1"}))
    tf = Terraform(env, outputs={"url": "wrong"})
    assert terraform_outputs(tf, session) == {"url": "http://lb", "task_definition_arn": "arn:td:1"}
    assert tf.asked == []


@pytest.mark.parametrize("body", [None, b"not json", json.dumps(_tf_state([], {})).encode()],
                         ids=["no state object", "not json", "no outputs"])
def test_terraform_gives_the_outputs_the_state_object_does_not_hold(env, body):
    session = Session(env)
    _bucket(session, env)
    if body is not None:
        _state(session, env, body)
    tf = Terraform(env, outputs={"url": "http://from-terraform"})
    assert terraform_outputs(tf, session) == {"url": "http://from-terraform"}
    assert tf.asked == ["output"]
