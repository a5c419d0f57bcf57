"""``inv dev --env=E``: deploy, then roll out every saved change of the source tree.

The loop Tilt, Skaffold and ``docker compose watch`` give, on the same path as
``inv deploy``: each change is built once into an image pinned by its digest
(tagged ``<commit>-dirty-<content digest>``), pushed, unpacked by the local
cloud ahead of its tasks, and rolled out by ECS's own rolling deployment
behind the load balancer (new tasks healthy before old ones drain: no failed
request). Each rollout ends in one verdict line. Changes saved while a rollout
runs are rolled out together right after it. A change that breaks the app is
rolled back by the circuit breaker; the loop reports it and keeps watching.

What is watched: the inputs of the image (``src/``, the workspace's
``pyproject.toml``, ``distributions/`` and ``uv.lock``, ``gunicorn.conf.py``,
``Dockerfile``). Infrastructure (``terraform/``) is applied by ``inv deploy``,
not by this loop.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

from ship import paths
from ship.actions import Options
from ship.actions.deploy import deploy_image
from ship.actions.up import up
from ship.aws import Session
from ship.config import Environment
from ship.domain import family_revision
from ship.errors import ShipError
from ship.images import build, prepare_image, push
from ship.progress import Progress
from ship.queries import current_service, target_of

WATCHED = ("src", "pyproject.toml", "distributions", "uv.lock", "gunicorn.conf.py", "Dockerfile")
POLL = 0.3          # seconds between looks at the tree
SETTLE = 0.3        # a change counts once the tree was quiet this long (editors save in steps)
_IGNORED_DIRS = ("__pycache__", ".git", ".mypy_cache", ".pytest_cache")
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx", ".tmp", "~")

Snapshot = dict[str, tuple[int, int]]


def ignored(name: str) -> bool:
    """Editor droppings and build output, not source."""
    return (name.startswith((".#", ".")) or name.endswith(_IGNORED_SUFFIXES) or name.endswith(".egg-info")
            or name == "4913")    # vim's probe file


def snapshot(root: Path, watched=WATCHED) -> Snapshot:
    """(mtime, size) of every watched file, by path relative to ``root``."""
    out: Snapshot = {}
    for entry in watched:
        top = root / entry
        if top.is_file():
            st = top.stat()
            out[entry] = (st.st_mtime_ns, st.st_size)
            continue
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in _IGNORED_DIRS and not ignored(d)]
            for name in files:
                if ignored(name):
                    continue
                path = Path(folder) / name
                try:
                    st = path.stat()
                except OSError:
                    continue
                out[str(path.relative_to(root))] = (st.st_mtime_ns, st.st_size)
    return out


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """Files added, removed or modified between two snapshots, sorted."""
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))


def wait_for_change(root: Path, last: Snapshot, stop: threading.Event, poll: float = POLL,
                    settle: float = SETTLE, look: Callable[[Path], Snapshot] = snapshot
                    ) -> tuple[list[str], Snapshot] | None:
    """Block until the tree differs from ``last`` and has been quiet for ``settle`` seconds;
    returns (changed files, new snapshot), or None when ``stop`` is set."""
    while not stop.wait(poll):
        now = look(root)
        if now == last:
            continue
        while not stop.wait(settle):
            later = look(root)
            if later == now:
                return changes(last, now), now
            now = later
    return None


def rollout_change(env: Environment, session: Session, opts: Options, files: list[str],
                   out=None) -> str:
    """Build, push, prepare and roll out the tree as it is; returns the verdict line."""
    started = time.monotonic()
    what = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    clock = time.strftime("%H:%M:%S")
    with Progress(out) as progress:
        say = progress.say
        try:
            built = build(env, session, say, allow_dirty=True)
            running = current_service(session, target_of(env))
            ref = push(env, session, built, say)
            prepare_image(ref, say)
            svc = deploy_image(env, ref, opts, say, session)
        except ShipError as err:
            now_on = _running(session, env)
            return (f"{clock} FAILED after {time.monotonic() - started:.1f}s ({what}): {err}"
                    + (f"; {now_on} keeps serving" if now_on and now_on not in str(err) else ""))
        seconds = time.monotonic() - started
        if svc.task_definition == running.task_definition:
            return f"{clock} no change to the image ({what}): {built.tag} already serves"
        return (f"{clock} serving {built.tag} ({family_revision(svc.task_definition)}) "
                f"{seconds:.1f}s after the change to {what}")


def _running(session: Session, env: Environment) -> str:
    try:
        return family_revision(current_service(session, target_of(env)).task_definition)
    except ShipError:
        return ""


def dev(env: Environment, opts: Options, verbose: bool = False, stop: threading.Event | None = None,
        root: Path | None = None, out=None) -> None:
    """Deploy once, then watch and roll out until ``stop`` is set (or Ctrl-C)."""
    if not env.emulator:
        raise ShipError(f"inv dev works on emulator environments (local, local-prod), not {env.name}: "
                        "an AWS environment gets released commits (inv release)")
    root = root or paths.project_root()
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.default_int_handler)    # stopped like Ctrl-C
    session = Session(env)     # the command's one session: the deploy and every rollout after it
    url = up(env, opts, verbose=verbose, progress=Progress(out) if out is not None else None, session=session)
    last = snapshot(root)
    _say(out, f"watching {', '.join(w for w in WATCHED if (root / w).exists())} for changes; "
              f"{url or env.name} serves each one after its rollout (Ctrl-C to stop)")
    while not stop.is_set():
        found = wait_for_change(root, last, stop)
        if found is None:
            return
        files, last = found
        _say(out, rollout_change(env, session, opts, files, out))


def _say(out, text: str) -> None:
    print(text, file=out, flush=True)
