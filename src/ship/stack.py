"""The groundwork of an environment's stack, under and around Terraform: the local cloud it
runs on (and whether that still remembers it), the state bucket, state locks that no live run
holds, and the image Terraform's own task definition keeps. The commands that run Terraform
(``ship.actions.infra``, ``ship.actions.up``) are built on these steps."""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions

from ship import applied, capacity, oplock, paths, recover, terraform
from ship.aws import AwsError, Session
from ship.config import Environment
from ship.errors import ShipError
from ship.queries import current_image, image_of


def ensure_local_cloud(env: Environment, echo=print) -> dict | None:
    """Start the local cloud for emulator environments; note an emulator that forgot its state."""
    if not env.emulator:
        return None
    from ship.aws import check_local_endpoint
    from ship.config import local_port
    from ship.localcloud import control

    check_local_endpoint(env)
    info = control.up(paths.local_cloud_dir(), port=local_port())
    _check_emulator_identity(env, info, echo)
    return info


def _marker(env: Environment):
    return paths.state_dir() / "terraform" / env.name / "emulator.json"


def identity(info: dict | None) -> str | None:
    """What stays the same while the local cloud remembers: the lineage of its saved state
    (kept across restarts), or the instance for a local cloud that saves nothing."""
    return (info or {}).get("lineage") or (info or {}).get("instance")


def _check_emulator_identity(env: Environment, info: dict, echo) -> None:
    """A stack applied to a local cloud whose state was since wiped (or set aside) is gone."""
    marker = _marker(env)
    if not marker.is_file():
        return
    try:
        previous = json.loads(marker.read_text())
    except ValueError:
        previous = {}
    previous = previous.get("lineage") or previous.get("instance")
    if previous and previous != identity(info):
        echo(f"note: the local cloud's state was reset since {env.name} was applied, so it has forgotten it; "
             f"the stack will be created again from scratch")
        marker.unlink()


def forget_emulator_identity(env: Environment) -> None:
    """The stack is gone (destroyed, or never made on this local cloud): nothing to compare with."""
    _marker(env).unlink(missing_ok=True)


def record_emulator_identity(env: Environment, info: dict | None) -> None:
    if info:
        marker = _marker(env)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"lineage": identity(info)}))


def after_apply(env: Environment, session: Session, info: dict | None, image: str, echo=print,
                full: bool = True) -> None:
    """What follows every successful apply: the local cloud it was made on is recorded; after a
    full one (not ``-target``), the service's count is set (Terraform sets desired_count at
    creation only: ship.capacity) and the apply's fingerprint recorded (ship.applied)."""
    record_emulator_identity(env, info)
    if full:
        capacity.settle(env, session, echo)
        record_applied(env, session, info, image)


def record_applied(env: Environment, session: Session, info: dict | None, image: str) -> None:
    """After a successful full apply: its fingerprint, so that a deploy with nothing changed skips Terraform."""
    state = applied.read_state(session, env)
    applied.record(env, applied.fingerprint(env, {"image": image}, state, identity(info)))


def skip_terraform(env: Environment, session: Session, info: dict | None, image: str | None,
                   state: dict | None) -> applied.Decision:
    """Whether a deploy on the local cloud may leave Terraform out (see ship.applied); never on AWS."""
    if not env.emulator:
        return applied.Decision(False, "deploys to AWS always run Terraform")
    if not image:
        return applied.Decision(False, "cannot tell the image of Terraform's task definition")
    data_dir = paths.state_dir() / "terraform" / env.name
    parts = applied.fingerprint(env, {"image": image}, state, identity(info))
    return applied.decide(applied.recorded(env), parts, unfinished=terraform.unfinished_apply(data_dir) is not None)


def ensure_state_bucket(env: Environment, session: Session, echo=print, dry_run: bool = False) -> bool:
    """Create the state bucket (versioned, encrypted, no public access) if it is missing."""
    s3 = session.s3
    bucket = env.state_bucket
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except botocore.exceptions.ClientError as err:
        code = err.response["Error"]["Code"]
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise AwsError(f"check state bucket {bucket}", err) from None
    except botocore.exceptions.EndpointConnectionError:
        raise ShipError(f"cannot reach the {env.name} endpoint to check bucket {bucket}; "
                        "for local environments run `inv local.up`") from None
    if dry_run:
        echo(f"dry run: would create state bucket {bucket}")
        return True
    try:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if env.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": env.region}
        try:
            s3.create_bucket(**kwargs)
        except botocore.exceptions.ClientError as err:
            if err.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
            if _bucket_is_ours(s3, bucket):
                return False  # created meanwhile by another command
            raise ShipError(f"state bucket name {bucket} is taken by another AWS account: choose another "
                            f"state_bucket for {env.name} in terraform/environments.yaml") from None
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True})
    except botocore.exceptions.ClientError as err:
        raise AwsError(f"create state bucket {bucket}", err) from None
    echo(f"created state bucket {bucket} (versioned, encrypted, public access blocked)")
    return True


def _bucket_is_ours(s3, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except botocore.exceptions.ClientError:
        return False


def require_state_bucket(env: Environment, session: Session) -> None:
    try:
        session.s3.head_bucket(Bucket=env.state_bucket)
    except botocore.exceptions.ClientError:
        raise ShipError(f"state bucket {env.state_bucket} does not exist: run `inv bootstrap --env={env.name}`") \
            from None


def placeholder_image(env: Environment, session: Session) -> str:
    """The image for Terraform's first task definition when nothing was pushed yet."""
    account = session.account_id()
    return f"{account}.dkr.ecr.{env.region}.amazonaws.com/{env.repository_name}:bootstrap"


def terraform_image(tf: terraform.Runner, session: Session) -> str | None:
    """The image of the task definition Terraform manages, so that applies never replace it.

    Terraform only creates the first task definition; rollouts register their
    own revisions. Passing Terraform its own image back keeps its plan empty.

    Read from Terraform's state object in the bucket (its ``resources`` and the output
    ``task_definition_arn``): one S3 call, where ``terraform state list`` and ``terraform
    output`` cost 0.6 s of CPU or more each (every Terraform command reads the provider
    package, 707 MB for hashicorp/aws 5.100, to check it against the lock file) and ran
    before every apply and plan. Terraform answers when the object cannot be read or parsed."""
    found, arn = _state_output(tf.env, session, "task_definition_arn")
    if not found:
        arn = tf.outputs().get("task_definition_arn") if tf.state_resources() else None
    return image_of(session, arn) if arn else None


def outputs_of(state: dict | None) -> dict:
    """Terraform's outputs from its state object (the state format's ``outputs.<name>.value``)."""
    try:
        return {k: v["value"] for k, v in (state or {}).get("outputs", {}).items()}
    except (KeyError, TypeError, AttributeError):
        return {}


def terraform_outputs(tf: terraform.Runner, session: Session) -> dict:
    """Terraform's outputs, read from its state object in the bucket: one S3 call instead of
    ``terraform output`` (0.6 s of CPU or more: every Terraform command checks the provider
    package against the lock file). Terraform answers when the object holds none."""
    return outputs_of(applied.read_state(session, tf.env)) or tf.outputs()


def _state_output(env: Environment, session: Session, name: str) -> tuple[bool, Any]:
    """(True, the output ``name`` of the state object, None when it has no resources or no such
    output; no object yet counts as no resources), or (False, None) when the state could not be read."""
    found, state = applied.fetch_state(session, env)
    if state is None:
        return found, None
    try:
        resources, outputs = state["resources"], state.get("outputs") or {}
        if not isinstance(resources, list) or not isinstance(outputs, dict):
            return False, None
        value = outputs.get(name, {}).get("value") if resources else None
    except (TypeError, KeyError, AttributeError):
        return False, None
    return True, value


def image_for_terraform(tf: terraform.Runner, env: Environment, session: Session) -> str:
    """The ``image`` variable of a plan or apply: the image of Terraform's own task
    definition, else the one the service runs, else the placeholder of a first apply."""
    return terraform_image(tf, session) or current_image(env, session) or placeholder_image(env, session)


def before_terraform(env: Environment, session: Session, info: dict | None, echo=print,
                     dry_run: bool = False, empty: bool = False) -> None:
    """What must be settled before Terraform runs: an apply that did not finish (its leftovers
    rebuilt on the emulator, a note on AWS) and a state lock that no live run holds. A local
    cloud that has just started from nothing (``empty``) holds no lock to look for."""
    recover.after_unfinished_apply(env, session, echo, dry_run=dry_run)
    if not empty:
        settle_stale_lock(env, session, info, echo, dry_run=dry_run)


def settle_stale_lock(env: Environment, session: Session, info: dict | None, echo=print,
                      dry_run: bool = False) -> None:
    """On the emulator, a state lock that no live command holds is stale. One taken before the
    local cloud last started belongs to a run that ended with the local cloud that served it
    (its saved state kept the lock): it is cleared, in one line. Any other is named now, with its
    id, instead of letting Terraform wait a minute for it. (On AWS another machine may hold it.)"""
    if not env.emulator:
        return
    lock = recover.state_lock(env, session)
    data_dir = paths.state_dir() / "terraform" / env.name
    if lock is None or oplock.held_elsewhere(env.name) or terraform.live_terraform(data_dir):
        return
    if taken_before_restart(lock, info):
        if dry_run:
            raise ShipError(f"the state of {env.name} is locked ({terraform.describe_lock(lock)}) by a run that "
                            "ended when the local cloud stopped; a run without --dry clears it")
        recover.clear_lock(env, session)
        echo(f"cleared the state lock of {env.name} ({terraform.describe_lock(lock)}): its run ended when the local "
             "cloud that served it stopped")
        return
    raise ShipError(f"the state of {env.name} is locked ({terraform.describe_lock(lock)}) but no command works on "
                    f"{env.name} now: a killed run left it; clear it with `inv infra.unlock --env={env.name}`")


def taken_before_restart(lock: dict, info: dict | None) -> bool:
    """Whether ``lock`` was taken before the running local cloud started (so against an earlier one)."""
    created = terraform.lock_created(lock)
    started = (info or {}).get("started_at")
    return created is not None and isinstance(started, (int, float)) and created < started
