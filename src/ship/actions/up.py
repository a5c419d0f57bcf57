"""The main job: an environment from nothing (or from any state) to serving.

Start the local cloud for emulator environments, create the state bucket,
apply Terraform, build and push the commit's image once, roll it out, wait
until the service is steady and its URL answers, then print the URL last.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from ship import terraform
from ship.actions import Options
from ship.actions.deploy import deploy_image
from ship.actions.infra import current_image, prepare, record_emulator_identity, terraform_image
from ship.actions.release import build_and_push
from ship.actions.status import service_url
from ship.config import Environment
from ship.errors import ShipError


def wait_for_url(url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    import json

                    return json.loads(resp.read() or b"{}")
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as err:
            last = f"HTTP {err.code}"
        except OSError as err:
            last = str(err)
        time.sleep(1)
    raise ShipError(f"{url} did not answer 200 within {timeout:.0f}s (last: {last})")


def up(env: Environment, opts: Options, echo=print) -> str | None:
    started = time.monotonic()
    info, session = prepare(env, opts, echo)
    tf = terraform.Runner(env, echo)
    echo(f"terraform init ({env.name})")
    tf.init()
    if opts.dry_run:
        tf.plan({"image": terraform_image(tf, session) or current_image(env, session) or "(built at apply)"})
        return None
    if session.ecr.describe_repository(env.repository_name) is None:
        echo(f"creating the image repository {env.repository_name} first")
        tf.apply({"image": "pending"}, targets=["module.ecr"])
    ref = build_and_push(env, session, echo, allow_dirty=env.emulator)
    image = terraform_image(tf, session) or ref.uri
    echo(f"terraform apply ({env.name})")
    tf.apply({"image": image})
    record_emulator_identity(env, info)
    outputs = tf.outputs()
    deploy_image(env, ref, opts, echo, session)
    from ship.actions.rollout import current_service, target_of

    url = service_url(env, session, current_service(session, target_of(env)).target_group_arns)
    if url:
        body = wait_for_url(url + "/")
        echo(f"{url}/ answered: version {body.get('version')} from {body.get('instance')}")
    for key in sorted(outputs):
        echo(f"{key} = {outputs[key]}")
    echo(f"{env.name} is serving after {time.monotonic() - started:.1f}s")
    if url:
        echo(url)
    return url
