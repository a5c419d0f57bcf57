"""The project's menu for people: `inv --list`, `inv --help TASK`.

Each task parses its flags and calls into the `ship` package, where the
logic lives. Errors meant for you end in one line saying what to do.

Defaults (timeouts, bench, logs) live in the collection's configuration under
``ship`` (``DEFAULTS``): a flag wins, then ``INVOKE_SHIP_<KEY>`` variables, then
``invoke.yaml`` (beside this file, or ``-f FILE``), then these values.
"""

from __future__ import annotations

import functools
import os
import sys

from invoke import Collection, Exit, task

ENV_HELP = "environment name from terraform/environments.yaml (local, local-prod, staging, production)"
DRY_HELP = "show what would change and change nothing"
TIMEOUT_HELP = "seconds to wait for the rollout (default: ship.rollout_timeout, 900)"

# The collection's configuration (`ns.configure`): `c.config.ship.<key>`, overridable from invoke.yaml
# (`ship: {rollout_timeout: 600}`) and the environment (`INVOKE_SHIP_ROLLOUT_TIMEOUT=600`). The numbers
# are strings on purpose: Invoke casts an INVOKE_* value to its default's type, and int("abc") would be
# a traceback; as strings they reach the task, whose check says in one line what is wrong.
DEFAULTS = {
    "rollout_timeout": "900",   # seconds a rollout may take: deploy, release, promote, rollback, redeploy
    "dev_timeout": "300",       # seconds each rollout of `inv dev` may take
    "run_timeout": "3600",      # seconds a one-off task of `inv run` may take before it is stopped
    "smoke_requests": "10",     # good answers `inv smoke` needs from / and /health
    "smoke_timeout": "60",      # seconds `inv smoke` waits for them
    "logs_since": "10m",        # how far back `inv logs` starts
    "bench_seconds": "10",      # seconds per load-generator run of `inv bench`
    "bench_connections": "16",  # its concurrent connections
}


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
        except Exception as err:
            from ship.errors import for_people

            line = for_people(err)
            if line is None:
                raise
            raise Exit(f"error: {line}", code=1) from None

    return wrapper


def _env(name: str, flag: str = "--env", lock: bool = False):
    """The environment named by ``flag``; with ``lock``, this command alone changes it until it exits."""
    from ship import config

    if not name:
        raise Exit(f"error: say which environment: {flag}=NAME ({', '.join(config.environment_names())})", code=2)
    environment = config.load(name)
    if lock:
        from ship import aws, oplock

        aws.check_credentials(environment)   # a command that cannot start leaves no lock file behind
        oplock.hold(environment.name, echo=_echo)
    return environment


def _whole(flag: str, value, default, low: int = 1, example: int = 5):
    """A whole-number flag (None: the default); a bad value is one line, exit 1."""
    if value is None or str(value).strip() == "":
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise Exit(f"error: {flag}={value!r} is not a whole number: give e.g. {flag}={example}", code=1) from None
    if number < low:
        raise Exit(f"error: {flag}={number} must be at least {low}", code=1)
    return number


def _default(c, key: str):
    """The configured default ``key`` (see DEFAULTS)."""
    return c.config.ship[key]


def _whole_default(c, key: str) -> int:
    """A configured whole-number default; a bad value is one line naming its key."""
    return _whole(f"ship.{key}", _default(c, key), None, example=int(DEFAULTS[key]))


def _opts(c, dry: bool = False, wait: bool = True, timeout=None, key: str = "rollout_timeout"):
    """The actions' options; ``--timeout`` falls back to the configured ``key``."""
    from ship.actions import Options

    seconds = _whole("--timeout", timeout, None, example=600) or _whole_default(c, key)
    return Options(dry_run=dry, wait=wait, timeout=float(seconds))


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
        from ship import container_image

        container_image.test_in_container(echo=_echo)
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
    from ship import container_image

    ref = container_image.build_local(tag=tag or None, target=target, echo=_echo)
    print(ref)


@task(help={"seconds": "seconds per load-generator run (default: ship.bench_seconds, 10)",
            "connections": "concurrent connections (default: ship.bench_connections, 16)"})
@_errors
def bench(c, seconds=None, connections=None):
    """Measure requests/s and p50/p99 of gunicorn serving / on 127.0.0.1 (writes benchmarks/results/)."""
    seconds = _whole("--seconds", seconds, None) or _whole_default(c, "bench_seconds")
    connections = _whole("--connections", connections, None) or _whole_default(c, "bench_connections")
    c.run(f"{sys.executable} benchmarks/gunicorn_throughput.py --seconds {seconds} --connections {connections}",
          echo=True)


# -- shipping ------------------------------------------------------------------

@task(help={"env": ENV_HELP, "tag": "deploy this image tag (already in the registry) instead of the whole job",
            "digest": "deploy this image digest (sha256:...) instead of a tag", "dry": DRY_HELP,
            "timeout": TIMEOUT_HELP,
            "verbose": "print Terraform's full output too (it always goes to .ship/logs/terraform-<env>.log)"})
@_errors
def deploy(c, env="", tag="", digest="", dry=False, timeout=None, verbose=False):
    """Bring an environment up and serving (local cloud, state, Terraform, image, rollout); or deploy --tag."""
    opts = _opts(c, dry, timeout=timeout)
    environment = _env(env, lock=True)
    if tag or digest:
        from ship.actions.deploy import deploy_image, resolve
        from ship.aws import Session

        session = Session(environment)
        ref = resolve(session, environment, tag or None, digest or None)
        deploy_image(environment, ref, opts, echo=_echo, session=session)
        return
    from ship.actions.up import up

    up(environment, opts, verbose=verbose)


@task(help={"env": ENV_HELP, "timeout": "seconds to wait for each rollout (default: ship.dev_timeout, 300)",
            "verbose": "print Terraform's full output too"})
@_errors
def dev(c, env="", timeout=None, verbose=False):
    """Deploy, then watch the source tree and roll out each saved change (build once, pinned by digest)."""
    from ship.actions.dev import dev as run

    opts = _opts(c, timeout=timeout, key="dev_timeout")
    run(_env(env, lock=True), opts, verbose=verbose)


@task(help={"env": ENV_HELP, "dry": DRY_HELP, "timeout": TIMEOUT_HELP})
@_errors
def release(c, env="", dry=False, timeout=None):
    """Build the current commit once, push it under its immutable tag, roll it out."""
    from ship.actions.release import release as run

    opts = _opts(c, dry, timeout=timeout)
    run(_env(env, lock=True), opts, echo=_echo)


@task(name="promote", help={"from_": "environment whose running image is promoted",
                            "to": "environment that will run the very same digest", "dry": DRY_HELP,
                            "expect_digest": "refuse unless --from runs exactly this digest (sha256:...)",
                            "timeout": TIMEOUT_HELP})
@_errors
def promote_(c, from_="", to="", dry=False, expect_digest="", timeout=None):
    """Retag the image running in --from into --to's registry (same digest, no rebuild) and deploy it."""
    from ship.actions.promote import promote

    opts = _opts(c, dry, timeout=timeout)
    source = _env(from_, "--from")
    promote(source, _env(to, "--to", lock=True), opts, echo=_echo, expect_digest=expect_digest or None)


@task(name="run", help={"env": ENV_HELP,
                        "timeout": "seconds to wait for the task to finish (then it is stopped; "
                                   "default: ship.run_timeout, 3600)"})
@_errors
def run_(c, env="", timeout=None):
    """Run a one-off command (after --) with the environment's task definition; exits with its exit code."""
    from ship.actions.run import command_line, run

    limit = _whole("--timeout", timeout, None, example=600) or _whole_default(c, "run_timeout")
    code = run(_env(env), command_line(c.remainder), echo=_echo, timeout=float(limit))
    if code:
        raise Exit(code=code)


@task(help={"env": ENV_HELP, "requests": "good answers needed from / and /health (default: ship.smoke_requests, 10)"})
@_errors
def smoke(c, env="", requests=None):
    """Smoke-test the service through its load balancer URL."""
    from ship.actions.smoke import smoke as run

    count = _whole("--requests", requests, None) or _whole_default(c, "smoke_requests")
    run(_env(env), requests=count, timeout=float(_whole_default(c, "smoke_timeout")), echo=_echo)


@task(help={"env": ENV_HELP, "dry": DRY_HELP, "timeout": TIMEOUT_HELP})
@_errors
def rollback(c, env="", dry=False, timeout=None):
    """Return to the last revision that reached a steady, completed deployment."""
    from ship.actions.rollback import rollback as run

    opts = _opts(c, dry, timeout=timeout)
    run(_env(env, lock=True), opts, echo=_echo)


@task(help={"env": ENV_HELP, "dry": DRY_HELP, "timeout": TIMEOUT_HELP})
@_errors
def redeploy(c, env="", dry=False, timeout=None):
    """Force a new deployment of the revision the service runs now."""
    from ship.actions.rollback import redeploy as run

    opts = _opts(c, dry, timeout=timeout)
    run(_env(env, lock=True), opts, echo=_echo)


@task(help={"env": ENV_HELP, "keep": "revisions to keep besides the running one and the rollback target "
                                     "(default: task_definitions_to_keep from the YAML)", "dry": DRY_HELP})
@_errors
def prune(c, env="", keep=None, dry=False):
    """Deregister old task definition revisions (never the running one or the rollback target)."""
    from ship.actions.prune import prune as run

    count = _whole("--keep", keep, None)
    run(_env(env, lock=True), _opts(c, dry), keep=count, echo=_echo)


@task(help={"env": ENV_HELP, "json": "print JSON instead of tables"})
@_errors
def status(c, env="", json=False):
    """Show the service, deployments, tasks, target health and URL."""
    from ship.actions.status import collect, render

    print(render(collect(_env(env)), as_json=json))


@task(help={"env": ENV_HELP, "follow": "keep printing new events",
            "since": "how far back to start (30s, 10m, 2h; default: ship.logs_since, 10m)",
            "filter": "only events matching this CloudWatch Logs filter pattern, e.g. "
                      "'{ $.status >= 500 }', '?ERROR ?WARN', '[ip, ..., status = 404, bytes]'"})
@_errors
def logs(c, env="", follow=False, since="", filter=""):
    """Print the service's logs from CloudWatch Logs (--filter PATTERN: only the matching events)."""
    from ship.actions.logs import tail

    tail(_env(env), since=since or str(_default(c, "logs_since")), follow=follow, echo=_echo, pattern=filter)


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
    from ship.actions.infra import bootstrap as run

    environment = _env(env, lock=True)
    if not run(environment, _opts(c, dry), echo=_echo):
        print(f"state bucket {environment.state_bucket} already exists")


@task(help={"env": ENV_HELP, "dry": DRY_HELP})
@_errors
def destroy(c, env="", dry=False):
    """Destroy everything Terraform created for the environment."""
    from ship.actions.infra import destroy as run

    run(_env(env, lock=True), _opts(c, dry), echo=_echo)


# -- infra.* -------------------------------------------------------------------

@task(name="plan", help={"env": ENV_HELP})
@_errors
def infra_plan(c, env=""):
    """Show what Terraform would change."""
    from ship.actions.infra import plan

    plan(_env(env, lock=True), echo=_echo)


@task(name="apply", help={"env": ENV_HELP, "dry": DRY_HELP})
@_errors
def infra_apply(c, env="", dry=False):
    """Apply Terraform (infrastructure only; images are rolled out by deploy/release)."""
    from ship.actions.infra import apply

    outputs = apply(_env(env, lock=True), _opts(c, dry), echo=_echo)
    for key in sorted(outputs):
        print(f"{key} = {outputs[key]}")


@task(name="destroy", help={"env": ENV_HELP, "dry": DRY_HELP})
@_errors
def infra_destroy(c, env="", dry=False):
    """Destroy the environment's infrastructure (same as `inv destroy`)."""
    destroy(c, env=env, dry=dry)


@task(name="unlock", help={"env": ENV_HELP, "dry": "show the lock and clear nothing",
                           "yes": "do not ask (for scripts): only when no Terraform runs for the environment"})
@_errors
def infra_unlock(c, env="", dry=False, yes=False):
    """Clear a stale Terraform state lock (a killed run's), after showing it and asking."""
    from ship.actions.infra import unlock

    def confirm(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise Exit("error: confirm with --yes (no terminal to ask on)", code=1)
        return input(question).strip().lower() in ("y", "yes")

    unlock(_env(env, lock=True), _opts(c, dry), echo=_echo, confirm=confirm)


# -- local.* -------------------------------------------------------------------

def _local_dir():
    from ship import paths

    return paths.local_cloud_dir()


@task(name="up", help={"port": "port for the emulator (default 4566 or SHIP_LOCAL_PORT)",
                       "exit-with": "stop the local cloud and its tasks when process PID exits (e.g. $$, a "
                                    "script's pid; default SHIP_LOCAL_EXIT_WITH)"})
@_errors
def local_up(c, port=None, exit_with=None):
    """Start the local cloud (emulator + data plane) in the background."""
    from ship import config
    from ship.localcloud import apilog, control

    port = _whole("--port", port, None, example=4566) or config.local_port()
    if port > 65535:
        raise Exit(f"error: --port={port} is not a port: give one between 1 and 65535", code=1)
    pid = _whole("--exit-with", exit_with, None, example="$$")
    info = control.up(_local_dir(), port=port, exit_with=pid)
    print(f"local cloud up on http://127.0.0.1:{info.get('port', port)} "
          f"(pid {info.get('pid')}, log {_local_dir() / control.LOGFILE}, API calls {_local_dir() / apilog.FILENAME})")
    if info.get("state_message"):
        print(info["state_message"])


@task(name="down", help={"reset": "also forget everything the local cloud holds (same as local.reset)"})
@_errors
def local_down(c, reset=False):
    """Stop the local cloud and every task it started (its state is kept for the next start)."""
    from ship.localcloud import control

    if reset:
        stopped, removed = control.reset(_local_dir())
    else:
        stopped, removed = control.down(_local_dir()), None
    print("local cloud stopped" if stopped else "local cloud was not running")
    if removed is not None:
        _forgotten(removed)


@task(name="reset")
@_errors
def local_reset(c):
    """Stop the local cloud and forget its state: every stack, image, log and Terraform state on it."""
    from ship.localcloud import control

    stopped, removed = control.reset(_local_dir())
    if stopped:
        print("local cloud stopped")
    _forgotten(removed)


def _forgotten(removed: list[str]) -> None:
    print(f"local cloud state forgotten ({', '.join(removed)})" if removed else "local cloud held no state")


@task(name="status")
@_errors
def local_status(c):
    """Show whether the local cloud runs, its listener port mapping and load balancer URLs."""
    from ship import config
    from ship.localcloud import apilog, control

    port = config.local_port()
    info = control.status(_local_dir(), port=port)
    if not info:
        raise Exit("local cloud is not running: start it with `inv local.up`", code=1)
    print(f"local cloud: pid {info.get('pid')} on http://127.0.0.1:{port} "
          f"(instance {info.get('instance')}, runtime {info.get('runtime')})")
    for kind, how in (info.get("limits") or {}).items():
        print(f"  task limits ({kind}): {how}")
    if info.get("exit_with"):
        print(f"  exits with pid {info['exit_with']}")
    print(f"  log {_local_dir() / control.LOGFILE}; one line per API call in {_local_dir() / apilog.FILENAME}")
    for line in control.listener_lines(control.listeners(_local_dir(), port=port), port):
        print(f"  {line}")


ns = Collection(test, lint, build, bench, deploy, dev, release, promote_, rollback, redeploy, prune, status, logs,
                smoke, images, bootstrap, destroy, run_)
ns.add_collection(Collection("infra", infra_plan, infra_apply, infra_destroy, infra_unlock))
ns.add_collection(Collection("local", local_up, local_down, local_reset, local_status))
ns.configure({"run": {"echo": False}, "ship": DEFAULTS})

if "SHIP_PROJECT_DIR" not in os.environ:
    os.environ["SHIP_PROJECT_DIR"] = os.path.dirname(os.path.abspath(__file__))
