"""The project's menu for people: `inv --list`, `inv --help TASK`.

Each task parses its flags and calls into the `ship` package, where the
logic lives. Errors meant for you end in one line saying what to do.
"""

from __future__ import annotations

import functools
import os
import sys

from invoke import Collection, Exit, task

ENV_HELP = "environment name from terraform/environments.yaml (local, local-prod, staging, production)"
DRY_HELP = "show what would change and change nothing"


def _errors(fn):
    """Turn ship's one-line errors into `invoke.Exit` (no traceback)."""

    @functools.wraps(fn)
    def wrapper(c, *args, **kwargs):
        from ship.errors import ShipError

        try:
            return fn(c, *args, **kwargs)
        except ShipError as err:
            raise Exit(f"error: {err}", code=1) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper


def _env(name: str):
    from ship import config

    if not name:
        raise Exit(f"error: say which environment: --env=NAME ({', '.join(config.environment_names())})", code=2)
    return config.load(name)


def _opts(dry: bool = False, wait: bool = True, timeout: float = 900.0):
    from ship.actions import Options

    return Options(dry_run=dry, wait=wait, timeout=float(timeout))


def _echo(line: str) -> None:
    print(line, flush=True)


# -- development ---------------------------------------------------------------

@task(help={"in_container": "build the image's test target and run pytest and flake8 inside it",
            "e2e": "include the end-to-end tests (local cloud + Terraform; slow)",
            "pytest_args": "extra arguments for pytest, e.g. '-k health -x'"})
@_errors
def test(c, in_container=False, e2e=False, pytest_args=""):
    """Run flake8 and pytest on this machine (or inside the image with --in-container)."""
    if in_container:
        from ship import containers

        containers.test_in_container(echo=_echo)
        return
    c.run(f"{sys.executable} -m flake8", echo=True, pty=False)
    marker = "" if e2e else "-m 'not e2e and not container'"
    c.run(f"{sys.executable} -m pytest {marker} {pytest_args}".strip(), echo=True, pty=False)


@task
def lint(c):
    """Run flake8 over src/, tests/, tasks.py and noxfile.py."""
    c.run(f"{sys.executable} -m flake8", echo=True)


@task(help={"tag": "image tag (default: the commit's short sha, plus -dirty for an uncommitted tree)",
            "target": "Dockerfile target to build (runtime or test)"})
@_errors
def build(c, tag="", target="runtime"):
    """Build the container image and tag it with the git commit."""
    from ship import containers

    ref = containers.build_local(tag=tag or None, target=target, echo=_echo)
    print(ref)


@task(help={"seconds": "seconds per load-generator run", "connections": "concurrent connections"})
@_errors
def bench(c, seconds=10, connections=16):
    """Measure requests/s and p50/p99 of gunicorn serving / on 127.0.0.1 (writes benchmarks/results/)."""
    c.run(f"{sys.executable} benchmarks/gunicorn_throughput.py --seconds {int(seconds)} "
          f"--connections {int(connections)}", echo=True)


# -- shipping ------------------------------------------------------------------

@task(help={"env": ENV_HELP, "tag": "deploy this image tag (already in the registry) instead of the whole job",
            "digest": "deploy this image digest (sha256:...) instead of a tag", "dry": DRY_HELP,
            "timeout": "seconds to wait for the rollout",
            "verbose": "print Terraform's full output too (it always goes to .ship/logs/terraform-<env>.log)"})
@_errors
def deploy(c, env="", tag="", digest="", dry=False, timeout=900, verbose=False):
    """Bring an environment up and serving (local cloud, state, Terraform, image, rollout); or deploy --tag."""
    environment = _env(env)
    if tag or digest:
        from ship.actions.deploy import deploy_image, resolve
        from ship.aws import Session

        session = Session(environment)
        ref = resolve(session, environment, tag or None, digest or None)
        deploy_image(environment, ref, _opts(dry, timeout=timeout), echo=_echo, session=session)
        return
    from ship.actions.up import up

    up(environment, _opts(dry, timeout=timeout), verbose=verbose)


@task(help={"env": ENV_HELP, "timeout": "seconds to wait for each rollout",
            "verbose": "print Terraform's full output too"})
@_errors
def dev(c, env="", timeout=300, verbose=False):
    """Deploy, then watch the source tree and roll out each saved change (build once, pinned by digest)."""
    from ship.actions.dev import dev as run

    run(_env(env), _opts(timeout=timeout), verbose=verbose)


@task(help={"env": ENV_HELP, "dry": DRY_HELP, "timeout": "seconds to wait for the rollout"})
@_errors
def release(c, env="", dry=False, timeout=900):
    """Build the current commit once, push it under its immutable tag, roll it out."""
    from ship.actions.release import release as run

    run(_env(env), _opts(dry, timeout=timeout), echo=_echo)


@task(name="promote", help={"from_": "environment whose running image is promoted",
                            "to": "environment that will run the very same digest", "dry": DRY_HELP,
                            "expect_digest": "refuse unless --from runs exactly this digest (sha256:...)",
                            "timeout": "seconds to wait for the rollout"})
@_errors
def promote_(c, from_="", to="", dry=False, expect_digest="", timeout=900):
    """Retag the image running in --from into --to's registry (same digest, no rebuild) and deploy it."""
    from ship.actions.promote import promote

    promote(_env(from_), _env(to), _opts(dry, timeout=timeout), echo=_echo, expect_digest=expect_digest or None)


@task(help={"env": ENV_HELP, "requests": "good answers needed from / and /health"})
@_errors
def smoke(c, env="", requests=10):
    """Smoke-test the service through its load balancer URL."""
    from ship.actions.smoke import smoke as run

    run(_env(env), requests=int(requests), echo=_echo)


@task(help={"env": ENV_HELP, "dry": DRY_HELP, "timeout": "seconds to wait for the rollout"})
@_errors
def rollback(c, env="", dry=False, timeout=900):
    """Return to the last revision that reached a steady, completed deployment."""
    from ship.actions.rollback import rollback as run

    run(_env(env), _opts(dry, timeout=timeout), echo=_echo)


@task(help={"env": ENV_HELP, "dry": DRY_HELP, "timeout": "seconds to wait for the rollout"})
@_errors
def redeploy(c, env="", dry=False, timeout=900):
    """Force a new deployment of the revision the service runs now."""
    from ship.actions.rollback import redeploy as run

    run(_env(env), _opts(dry, timeout=timeout), echo=_echo)


@task(help={"env": ENV_HELP, "keep": "revisions to keep besides the running one and the rollback target "
                                     "(default: task_definitions_to_keep from the YAML)", "dry": DRY_HELP})
@_errors
def prune(c, env="", keep=-1, dry=False):
    """Deregister old task definition revisions (never the running one or the rollback target)."""
    from ship.actions.prune import prune as run

    run(_env(env), _opts(dry), keep=None if int(keep) < 0 else int(keep), echo=_echo)


@task(help={"env": ENV_HELP, "json": "print JSON instead of tables"})
@_errors
def status(c, env="", json=False):
    """Show the service, deployments, tasks, target health and URL."""
    from ship.actions.status import collect, render

    print(render(collect(_env(env)), as_json=json))


@task(help={"env": ENV_HELP, "follow": "keep printing new events", "since": "how far back to start (30s, 10m, 2h)"})
@_errors
def logs(c, env="", follow=False, since="10m"):
    """Print the service's logs from CloudWatch Logs."""
    from ship.actions.logs import tail

    tail(_env(env), since=since, follow=follow, echo=_echo)


@task(help={"env": ENV_HELP})
@_errors
def images(c, env=""):
    """List the images in the environment's ECR repository."""
    from ship.aws import Session
    from ship.registry import Registry

    environment = _env(env)
    for img in Registry(Session(environment), environment.repository_name).images():
        print(f"{img['imageDigest']}  {','.join(img.get('imageTags', [])) or '-'}  {img.get('imagePushedAt', '')}")


@task(help={"env": ENV_HELP, "dry": DRY_HELP})
@_errors
def bootstrap(c, env="", dry=False):
    """Create the environment's Terraform state bucket if it is missing."""
    from ship.actions.infra import bootstrap as run, ensure_local_cloud

    environment = _env(env)
    ensure_local_cloud(environment, _echo)
    if not run(environment, _opts(dry), echo=_echo):
        print(f"state bucket {environment.state_bucket} already exists")


@task(help={"env": ENV_HELP, "dry": DRY_HELP})
@_errors
def destroy(c, env="", dry=False):
    """Destroy everything Terraform created for the environment."""
    from ship.actions.infra import destroy as run

    run(_env(env), _opts(dry), echo=_echo)


# -- infra.* -------------------------------------------------------------------

@task(name="plan", help={"env": ENV_HELP})
@_errors
def infra_plan(c, env=""):
    """Show what Terraform would change."""
    from ship.actions.infra import plan

    plan(_env(env), echo=_echo)


@task(name="apply", help={"env": ENV_HELP, "dry": DRY_HELP})
@_errors
def infra_apply(c, env="", dry=False):
    """Apply Terraform (infrastructure only; images are rolled out by deploy/release)."""
    from ship.actions.infra import apply

    outputs = apply(_env(env), _opts(dry), echo=_echo)
    for key in sorted(outputs):
        print(f"{key} = {outputs[key]}")


@task(name="destroy", help={"env": ENV_HELP, "dry": DRY_HELP})
@_errors
def infra_destroy(c, env="", dry=False):
    """Destroy the environment's infrastructure (same as `inv destroy`)."""
    destroy(c, env=env, dry=dry)


# -- local.* -------------------------------------------------------------------

def _local_dir():
    from ship import paths

    return paths.local_cloud_dir()


@task(name="up", help={"port": "port for the emulator (default 4566 or SHIP_LOCAL_PORT)"})
@_errors
def local_up(c, port=0):
    """Start the local cloud (emulator + data plane) in the background."""
    from ship import config
    from ship.localcloud import control

    info = control.up(_local_dir(), port=int(port) or config.local_port())
    print(f"local cloud up on http://127.0.0.1:{info.get('port', port or config.local_port())} "
          f"(pid {info.get('pid')}, log {_local_dir() / 'localcloud.log'})")
    if info.get("state_message"):
        print(info["state_message"])


@task(name="down", help={"reset": "also forget everything the local cloud holds (same as local.reset)"})
@_errors
def local_down(c, reset=False):
    """Stop the local cloud and every task it started (its state is kept for the next start)."""
    from ship.localcloud import control

    stopped = control.down(_local_dir())
    print("local cloud stopped" if stopped else "local cloud was not running")
    if reset:
        _wipe()


@task(name="reset")
@_errors
def local_reset(c):
    """Stop the local cloud and forget its state: every stack, image, log and Terraform state on it."""
    from ship.localcloud import control

    if control.down(_local_dir()):
        print("local cloud stopped")
    _wipe()


def _wipe():
    from ship.localcloud import persistence

    removed = persistence.wipe(_local_dir())
    print(f"local cloud state forgotten ({', '.join(removed)})" if removed else "local cloud held no state")


@task(name="status")
@_errors
def local_status(c):
    """Show whether the local cloud runs, and its listener port mapping."""
    from ship import config
    from ship.localcloud import control

    info = control.status(_local_dir(), port=config.local_port())
    if not info:
        raise Exit("local cloud is not running: start it with `inv local.up`", code=1)
    print(f"local cloud: pid {info.get('pid')} on http://127.0.0.1:{config.local_port()} "
          f"(instance {info.get('instance')}, runtime {info.get('runtime')})")
    for m in control.listeners(_local_dir(), port=config.local_port()):
        print(f"  {m.get('load_balancer_name')}:{m.get('port')} -> {m.get('url')}")


ns = Collection(test, lint, build, bench, deploy, dev, release, promote_, rollback, redeploy, prune, status, logs,
                smoke, images, bootstrap, destroy)
ns.add_collection(Collection("infra", infra_plan, infra_apply, infra_destroy))
ns.add_collection(Collection("local", local_up, local_down, local_reset, local_status))
ns.configure({"run": {"echo": False}})

if "SHIP_PROJECT_DIR" not in os.environ:
    os.environ["SHIP_PROJECT_DIR"] = os.path.dirname(os.path.abspath(__file__))
