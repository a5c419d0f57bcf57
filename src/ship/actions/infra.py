"""The environment's infrastructure: state bucket, Terraform plan/apply/destroy."""

from __future__ import annotations

import json
import time
from typing import Any

import botocore.exceptions

from ship import oplock, paths, recover, terraform
from ship.actions import Options
from ship.aws import AwsError, Session
from ship.config import Environment
from ship.errors import ShipError
from ship.queries import target_of, task_definition


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


def _identity(info: dict) -> str | None:
    """What stays the same while the local cloud remembers: the lineage of its saved state
    (kept across restarts), or the instance for a local cloud that saves nothing."""
    return info.get("lineage") or info.get("instance")


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
    if previous and previous != _identity(info):
        echo(f"note: the local cloud's state was reset since {env.name} was applied, so it has forgotten it; "
             f"the stack will be created again from scratch")
        marker.unlink()


def record_emulator_identity(env: Environment, info: dict | None) -> None:
    if info:
        marker = _marker(env)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"lineage": _identity(info)}))


def bootstrap(env: Environment, opts: Options, echo=print, session: Session | None = None) -> bool:
    """Create the state bucket (versioned, encrypted, no public access) if it is missing."""
    session = session or Session(env)
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
    if opts.dry_run:
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


def plan(env: Environment, variables: dict | None = None, echo=print) -> int:
    terraform.binary()  # before anything starts: a missing binary changes nothing
    info = ensure_local_cloud(env, echo)
    session = Session(env)
    require_state_bucket(env, session)
    # a plan rebuilds nothing, but it takes the state lock: one whose run ended with an earlier
    # local cloud is cleared for it as for an apply
    recover.after_unfinished_apply(env, session, echo, dry_run=True)
    settle_stale_lock(env, session, info, echo)
    tf = terraform.Runner(env, echo)
    tf.init()
    variables = variables or {"image": terraform_image(tf, session) or current_image(env, session)
                              or placeholder_image(env, session)}
    return tf.plan(variables)


def terraform_image(tf: terraform.Runner, session: Session) -> str | None:
    """The image of the task definition Terraform manages, so that applies never replace it.

    Terraform only creates the first task definition; rollouts register their
    own revisions. Passing Terraform its own image back keeps its plan empty."""
    arn = tf.outputs().get("task_definition_arn") if tf.state_resources() else None
    if not arn:
        return None
    try:
        return task_definition(session, arn).image()
    except ShipError:
        return None


def current_image(env: Environment, session: Session) -> str | None:
    """The image the service runs now (None when there is no service yet)."""
    raw = session.ecs.describe_service(target_of(env).cluster, target_of(env).service) if _cluster_exists(
        env, session) else None
    if not raw:
        return None
    td = task_definition(session, raw["taskDefinition"])
    container = next((lb.get("containerName") for lb in raw.get("loadBalancers", [])), None)
    return td.image(container)


def _cluster_exists(env: Environment, session: Session) -> bool:
    try:
        clusters = session.ecs.client.describe_clusters(clusters=[env.cluster_name]).get("clusters", [])
    except botocore.exceptions.ClientError:
        return False
    return any(c.get("status") == "ACTIVE" for c in clusters)


def prepare(env: Environment, opts: Options, echo=print) -> tuple[dict | None, Session]:
    """Everything Terraform needs before init: its binary, the local cloud (emulator
    environments) and the state bucket (created on the emulator, required on AWS)."""
    terraform.binary()  # before anything starts: a missing binary changes nothing
    info = ensure_local_cloud(env, echo)
    session = Session(env)
    if env.emulator:
        bootstrap(env, opts, echo, session)
    else:
        require_state_bucket(env, session)
    before_terraform(env, session, info, echo, dry_run=opts.dry_run)
    return info, session


def before_terraform(env: Environment, session: Session, info: dict | None, echo=print,
                     dry_run: bool = False) -> None:
    """What must be settled before Terraform runs: an apply that did not finish (its leftovers
    rebuilt on the emulator, a note on AWS) and a state lock that no live run holds."""
    recover.after_unfinished_apply(env, session, echo, dry_run=dry_run)
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


def unlock(env: Environment, opts: Options, echo=print, confirm=None) -> bool:
    """Clear a stale state lock with `terraform force-unlock`, after showing it and asking."""
    terraform.binary()
    ensure_local_cloud(env, echo)
    session = Session(env)
    require_state_bucket(env, session)
    lock = recover.state_lock(env, session)
    if lock is None:
        echo(f"the state of {env.name} is not locked; nothing to do")
        return False
    data_dir = paths.state_dir() / "terraform" / env.name
    live = terraform.live_terraform(data_dir)
    if live:
        raise ShipError(f"Terraform (pid {live[0]}) is working on {env.name} now and holds the lock; wait for it")
    echo(f"the state of {env.name} is locked: {terraform.describe_lock(lock)}")
    if opts.dry_run:
        echo(f"dry run: would clear lock {lock.get('ID')}")
        return False
    if confirm is not None and not confirm(f"clear it? only if no Terraform runs for {env.name} anywhere [y/N] "):
        echo("left as it is")
        return False
    tf = terraform.Runner(env, echo)
    tf.init()
    tf.force_unlock(str(lock.get("ID")))
    echo(f"cleared lock {lock.get('ID')} of {env.name}")
    return True


def apply(env: Environment, opts: Options, image: str | None = None, echo=print, targets=None) -> dict:
    info, session = prepare(env, opts, echo)
    tf = terraform.Runner(env, echo)
    started = time.monotonic()
    tf.init()
    image = image or terraform_image(tf, session) or current_image(env, session) or placeholder_image(env, session)
    if opts.dry_run:
        tf.plan({"image": image})
        return {}
    tf.apply({"image": image}, targets=targets)
    record_emulator_identity(env, info)
    echo(f"terraform apply for {env.name} took {time.monotonic() - started:.1f}s")
    return tf.outputs() if not targets else {}


def destroy(env: Environment, opts: Options, echo=print) -> None:
    from ship.localcloud import control, persistence

    terraform.binary()
    info = control.status(paths.local_cloud_dir(), port=_port()) if env.emulator else None
    if env.emulator and info is None:
        if not persistence.snapshot_path(paths.local_cloud_dir()).is_file():
            echo(f"the local cloud is not running and holds no saved state, so nothing of {env.name} exists; "
                 "nothing to destroy")
            _marker(env).unlink(missing_ok=True)
            return
        info = ensure_local_cloud(env, echo)     # it remembers: what it holds is destroyed like anything else
    session = Session(env)
    try:
        session.s3.head_bucket(Bucket=env.state_bucket)
    except botocore.exceptions.ClientError:
        echo(f"state bucket {env.state_bucket} does not exist, so nothing of {env.name} is recorded; "
             "nothing to destroy")
        return
    data_dir = paths.state_dir() / "terraform" / env.name
    if env.emulator and terraform.unfinished_apply(data_dir) is not None and not opts.dry_run \
            and not terraform.live_terraform(data_dir):
        removed = recover.sweep(env, session)  # the state misses what the unfinished apply made
        terraform.journal_end(data_dir)
        _marker(env).unlink(missing_ok=True)
        echo(f"destroyed {env.name} ({removed} resources; its last apply had not finished, so they were found "
             "by name and tag rather than from the state)")
        return
    settle_stale_lock(env, session, info, echo, dry_run=opts.dry_run)
    tf = terraform.Runner(env, echo)
    tf.init()
    image = terraform_image(tf, session) or placeholder_image(env, session)
    if opts.dry_run:
        tf.plan({"image": image}, destroy=True)
        return
    tf.destroy({"image": image})
    _marker(env).unlink(missing_ok=True)
    echo(f"destroyed {env.name}")


def _port() -> int:
    from ship.config import local_port

    return local_port()
