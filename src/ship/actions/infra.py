"""``inv infra.plan|apply|destroy|unlock``, ``inv bootstrap`` and ``inv destroy``: Terraform on an
environment's stack, on the groundwork ``ship.stack`` lays (local cloud, state bucket, locks)."""

from __future__ import annotations

import time

import botocore.exceptions

from ship import paths, recover, terraform
from ship.actions import Options
from ship.aws import Session
from ship.config import Environment
from ship.errors import ShipError
from ship.stack import (after_apply, before_terraform, ensure_local_cloud, ensure_state_bucket,
                        forget_emulator_identity, image_for_terraform, placeholder_image, require_state_bucket,
                        settle_stale_lock, terraform_image, terraform_outputs)


def bootstrap(env: Environment, opts: Options, echo=print) -> bool:
    """``inv bootstrap``: the state bucket, on a running local cloud for emulator environments;
    whether it was created."""
    ensure_local_cloud(env, echo)
    return ensure_state_bucket(env, Session(env), echo, dry_run=opts.dry_run)


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
    variables = variables or {"image": image_for_terraform(tf, env, session)}
    return tf.plan(variables)


def prepare(env: Environment, opts: Options, echo=print) -> tuple[dict | None, Session]:
    """Everything Terraform needs before init: its binary, the local cloud (emulator
    environments) and the state bucket (created on the emulator, required on AWS)."""
    terraform.binary()  # before anything starts: a missing binary changes nothing
    info = ensure_local_cloud(env, echo)
    session = Session(env)
    if env.emulator:
        ensure_state_bucket(env, session, echo, dry_run=opts.dry_run)
    else:
        require_state_bucket(env, session)
    before_terraform(env, session, info, echo, dry_run=opts.dry_run)
    return info, session


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
    image = image or image_for_terraform(tf, env, session)
    if opts.dry_run:
        tf.plan({"image": image})
        return {}
    tf.apply({"image": image}, targets=targets)
    after_apply(env, session, info, image, echo, full=not targets)
    echo(f"terraform apply for {env.name} took {time.monotonic() - started:.1f}s")
    return terraform_outputs(tf, session) if not targets else {}


def destroy(env: Environment, opts: Options, echo=print) -> None:
    from ship.localcloud import control, persistence

    terraform.binary()
    info = control.status(paths.local_cloud_dir(), port=_port()) if env.emulator else None
    if env.emulator and info is None:
        if not persistence.snapshot_path(paths.local_cloud_dir()).is_file():
            echo(f"the local cloud is not running and holds no saved state, so nothing of {env.name} exists; "
                 "nothing to destroy")
            forget_emulator_identity(env)
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
        forget_emulator_identity(env)
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
    forget_emulator_identity(env)
    echo(f"destroyed {env.name}")


def _port() -> int:
    from ship.config import local_port

    return local_port()
