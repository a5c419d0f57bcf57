"""The project's menu for CI: `nox -l`; `nox` runs the default sessions.

Slow or machine-heavy sessions (e2e, container, integration, bench) are not in
the default run; CI runs them by name (`nox -s integration`: e2e and container
at once).

Every session installs exactly its dependency groups (pyproject.toml) at the
versions in uv.lock, with `uv sync --locked`: nothing is resolved at test time,
a stale lock fails the session, and uv's cache makes a session's install a copy
of what the first one downloaded, not a second download or build.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import nox

PYTHON = os.environ.get("NOX_PYTHON", "3.11")

nox.options.sessions = ["lint", "typecheck", "tests", "terraform", "checkov", "actionlint"]
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False


def _sync(session: nox.Session, *groups: str, bytecode: bool = False) -> None:
    """Install these dependency groups from uv.lock into the session's environment (and nothing else).

    ``bytecode``: for sessions that start Python processes by the hundred (pytest workers,
    ``inv``, local clouds, the AWS CLI), the processes write the bytecode of what they import
    (PYTHONDONTWRITEBYTECODE empty; it is set on CI machines and in containers), so each module
    is compiled once, by the first process that imports it, not by every process: otherwise
    a local cloud's or an AWS CLI call's start is 1.5-1.9 s of CPU instead of 0.6-0.8 s
    (measured on this project's CI machine). Compiling the whole environment at install
    instead (``uv sync --compile-bytecode``) took 10.8 s (17.6 s of CPU) against 1.9 s
    without, before any test could start, and compiles every one of moto's services; a local
    cloud's first start compiles the 528 modules it uses in about 1.5 s of CPU. src/, the e2e
    suite's copies of the tree and pytest's rewritten test modules are compiled once too (all
    of it is ignored by git)."""
    if session.venv_backend != "uv":
        session.install("uv>=0.13")  # nox fell back to virtualenv: uv still installs from the lock
    args = ["uv", "sync", "--locked", "--no-default-groups", *(f"--group={group}" for group in groups)]
    session.run_install(*args, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location}, silent=True,
                        external=True)
    if bytecode:
        session.env["PYTHONDONTWRITEBYTECODE"] = ""   # empty: Python writes bytecode again


def _terraform(session: nox.Session) -> str:
    tf = os.environ.get("TF_BINARY", "terraform")
    if not shutil.which(tf):
        session.error(f"{tf} not found: install Terraform >= 1.10 or set TF_BINARY")
    return tf


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """flake8 over the Python code."""
    _sync(session, "lint")
    session.run("flake8", *session.posargs)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy over src/ (settings in pyproject.toml)."""
    _sync(session, "typecheck")
    session.run("mypy", *(session.posargs or ["src"]))


# The unit tests on 4 workers: the tests session, and the integration session's "unit" run.
UNIT = ["-m", "not e2e and not container", "--numprocesses=4", "--dist=loadgroup"]


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """pytest: app, ship and the local cloud, without the end-to-end suite, on 4 workers."""
    _sync(session, "test", bytecode=True)
    # The tests mostly wait (processes starting, health checks, one-second metric datapoints): on
    # 2 cores, 4 workers pay (README; more made the CPU-bound tests miss their start limits).
    # loadgroup hands out one test at a time, except that the tests of one xdist_group (a
    # module's own local cloud) stay on one worker.
    session.run("pytest", *(session.posargs or UNIT))


@nox.session(python=PYTHON)
def terraform(session: nox.Session) -> None:
    """terraform fmt -check; init (from the committed lock files, offline) + validate + test, per root module."""
    tf = _terraform(session)
    _sync(session, "src")
    session.run(tf, "fmt", "-check", "-recursive", "-diff", "terraform", external=True)
    session.run("python", "-m", "ship.tfcheck", "validate", "test", *session.posargs)


@nox.session(python=PYTHON)
def checkov(session: nox.Session) -> None:
    """checkov over terraform/ with zero failed checks (skips are inline, listed in CHECKOV_SKIPS.md)."""
    _sync(session, "checkov")
    session.run("checkov", "--config-file", ".checkov.yaml", "--directory", "terraform", "--compact", "--quiet",
                *session.posargs)


@nox.session(python=PYTHON)
def actionlint(session: nox.Session) -> None:
    """actionlint over .github/workflows (the workflows call nox and inv, nothing else)."""
    _sync(session, "actionlint")
    session.run("actionlint", "-shellcheck=", *session.posargs)


# The end-to-end suite in shards: each shard is a pytest session of its own, with its own local
# cloud and its own shared stack (one cold deploy each), so that their stacks apply at the same
# time. Most of an e2e run is the AWS provider's fixed sleeps (~70 s per cold apply with an ALB)
# and waits on health checks, datapoints and restarts: the machine is idle meanwhile. A shard is
# a list of test files; the shard with none takes every file the others do not name, so a new
# test file runs without a change here. Longest first: they start in this order.
E2E_SHARDS: dict[str, tuple[str, ...]] = {
    "clients": ("test_third_party_clients.py",),
    "rest": (),
    "flow": ("test_flow.py",),
    "autoscaling": ("test_service_autoscaling.py",),
    "community": ("test_community_modules.py",),
    "faults": ("test_faults_terraform.py",),
    "persistence": ("test_persistence.py",),
}
# The files whose subject is not how replicas run: the API as a third-party client drives it (the
# AWS CLI), Terraform's locks and killed applies, the deploy's Terraform fingerprint. The replicas
# they start are ordinary ones, run as every other file runs them in both runtimes. They run in the
# process runtime; the container runtime's runs leave them out (in a CI run they took 510 s of the
# container runs' 1,650, the same tests a second time). Every other file runs in both runtimes.
ONE_RUNTIME = ("test_third_party_clients.py", "test_faults_terraform.py", "test_skip_terraform.py")
# Seconds between two runs' starts: each begins with its busiest part (a local cloud starting,
# an image built, Terraform planning) before it waits on the provider; spread out, those do not
# all contend for the machine's cores at once. Runs at a niceness (UNIT_NICE) start at their
# turn without waiting, and do not delay the next: they yield the cores.
STAGGER = float(os.environ.get("SHIP_E2E_STAGGER", "15"))
# At most this many runs at once (the next starts when one ends): each holds a local cloud, its
# replicas (gunicorn with a few workers each) and Terraform. On a 2-core machine, 4 at once kept
# the cores 73 % busy on average over the 921 s of `integration`'s 15 runs (vmstat every 5 s;
# 98-100 % for 5.4 of those minutes, less while the first runs start and in the tail), against
# ~39 min one after the other. With 8 at once the cores were 98-100 % busy for 7.8 minutes
# and two runs failed: booting replicas missed the local stack's 2 s health check timeout.
# The 15 runs took 1,254 s of CPU (the kernel's process accounting, before the seeds):
# Terraform 30 % (each command hashes the 707 MB provider binary against the lock file, and
# starts the provider, 0.5 s, once or more), Python 26 % (local clouds, process replicas),
# Podman 15 %, `inv` 10 %, the AWS CLI 8 %. With the seeds, the unit tests pay beside the runs
# (the integration session's "unit" run, outside this limit): the seeds' and flow's cold deploys
# leave the cores idle while the provider sleeps. In one CI run each way: the tests session
# (132 s) then 17 runs in 720 s, against 18 runs in 780 s with the unit tests among them (they
# took 276 s there); the cores were 100 % busy for most of those 780 s (vmstat every 5 s).
# Before the seeds they did not pay (459 s against 181 s alone, and the whole no shorter).
JOBS = int(os.environ.get("SHIP_E2E_JOBS", "4"))
# The shards that start from their runtime's seed (tests/e2e/seed.py: the stack deployed once and
# stopped; the shard's first deploy restores it, ~10 s) instead of a cold deploy each (~80-100 s,
# ~70 of them the provider's fixed waits). "flow" makes its own: its first test is the deploy
# from nothing, and its timing is the suite's cold figure.
SEEDED = ("clients", "rest", "autoscaling", "community", "faults", "persistence")
# The shards whose Terraform checks the AWS provider against the lock file on every command, as a
# user's does: "flow", the deploy from nothing. The seeds and the other shards run the same binary
# of the locked version unchecked (tests/e2e/conftest.py: unchecked_provider_config), which spares
# hashing the 707 MB package several times per command (`inv infra.apply` with nothing to
# change: 7.6 s of CPU checked, 5.9 s unchecked).
CHECKED_PROVIDER = ("flow",)


# The unit tests' niceness beside the e2e runs (the integration session's "unit" run): they take
# the CPU the e2e runs leave while they wait on the provider, and give it up when a run needs it,
# rather than lengthen the e2e chains that make the session's length. It is the niceness of
# the run's session (ship.procfs.lower_priority): the kernel shares the CPU between sessions first.
UNIT_NICE = int(os.environ.get("SHIP_UNIT_NICE", "10"))


class Run(NamedTuple):
    """A run: its name, its command line, its environment, the run it needs first (a seed),
    whether it takes one of the JOBS slots (the unit tests beside the e2e runs do not), and its
    session's niceness (UNIT_NICE)."""
    name: str
    argv: list[str]
    env: dict
    needs: str | None = None
    slot: bool = True
    nice: int = 0


def _seed(runtime: str, logs: Path) -> Run:
    return Run(f"seed-{runtime}", ["python", "tests/e2e/seed.py", str(logs / f"seed-{runtime}")],
               {"SHIP_LOCAL_RUNTIME": runtime, "SHIP_E2E_PROVIDER": "unchecked"})


def _e2e_runs(runtime: str, logs: Path) -> list[Run]:
    """The seed of ``runtime`` and each shard of the e2e suite in it (in the container runtime,
    without the ONE_RUNTIME files: a shard of those alone does not run there)."""
    named = [f for files in E2E_SHARDS.values() for f in files]
    left_out = ONE_RUNTIME if runtime == "container" else ()
    ignored = sorted({*named, *left_out})   # by the shard that names no file
    runs = [_seed(runtime, logs)]
    for shard, files in E2E_SHARDS.items():
        name = f"e2e-{runtime}-{shard}"
        if files and all(f in left_out for f in files):
            continue
        where = ([f"tests/e2e/{f}" for f in files if f not in left_out]
                 or ["tests/e2e", *(f"--ignore=tests/e2e/{f}" for f in ignored)])
        argv = ["pytest", "-m", "e2e", "-x", "-p", "no:cacheprovider", "--durations=10", f"--basetemp={logs / name}",
                *where]
        env = {"SHIP_LOCAL_RUNTIME": runtime, "SHIP_E2E_LOG": str(logs / f"{name}.inv.log"),
               "SHIP_E2E_PROVIDER": "checked" if shard in CHECKED_PROVIDER else "unchecked"}
        needs = None
        if shard in SEEDED:
            needs, env["SHIP_E2E_SEED"] = f"seed-{runtime}", str(logs / f"seed-{runtime}")
        runs.append(Run(name, argv, env, needs))
    return runs


def _note_build_cache(session: nox.Session, logs: Path) -> None:
    """Write down the container engine's build cache (ship.images.build_cache) before the runs."""
    session.run("python", "-c", "import sys; from ship.images import build_cache; "
                "open(sys.argv[1], 'w').write(''.join(i + '\\n' for i in sorted(build_cache())))",
                str(logs / "build-cache-before"), silent=True)


def _remove_engine_images(session: nox.Session, logs: Path) -> None:
    """The container images the container runtime's seed built (its runs leave them: they run them),
    then the build cache the runs' builds left: their untagged intermediate images, 19 in a CI run,
    kept otherwise until the disk fills (what was there before stays)."""
    repo = logs / "seed-container" / "repo"
    if repo.is_dir():
        session.run("python", "-c", "import sys; from pathlib import Path; from ship import git; "
                    "from ship.images import remove_engine_images; "
                    "remove_engine_images('hello', git.all_commits(Path(sys.argv[1])))", str(repo), silent=True)
    before = logs / "build-cache-before"
    if before.is_file():
        session.run("python", "-c", "import sys; from ship.images import remove_build_cache; "
                    "n = remove_build_cache(open(sys.argv[1]).read().split()); "
                    "print(f'build cache: {n} image(s) removed')", str(before))


def _run_at_once(session: nox.Session, runs: list[Run], logs: Path) -> None:
    """Start the runs in their order (JOBS at most at once, STAGGER seconds apart; a run that needs
    another starts once that one has passed, and does not run if it failed), each writing to its
    own log; print each log whole when its run ends (readable, not interleaved); fail the session,
    naming them, if any run failed."""
    env = dict(os.environ, **{k: v for k, v in session.env.items() if v is not None})
    env["PATH"] = os.pathsep.join([*session.bin_paths, env.get("PATH", "")])
    env["VIRTUAL_ENV"] = session.virtualenv.location
    started = time.monotonic()
    running: dict[str, tuple[subprocess.Popen, Path, float]] = {}
    failed: list[str] = []
    passed: set[str] = set()
    slots = {run.name: run.slot for run in runs}
    # nox itself ends at once on SIGTERM (a CI job's timeout or cancel): let it end through the
    # finally below, which stops the runs' process groups (Terraform's provider plugins among them)
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        pending = list(runs)
        next_start = time.monotonic()
        while pending or running:
            for run in [r for r in pending if r.needs in failed]:
                pending.remove(run)
                failed.append(run.name)
                session.log(f"[{run.name}] not run: {run.needs} failed")
            ready = [r for r in pending if r.needs is None or r.needs in passed]
            busy = sum(1 for name in running if slots[name])
            if ready and (busy < JOBS or not ready[0].slot) and (ready[0].nice or time.monotonic() >= next_start):
                pending.remove(ready[0])
                name, argv, extra = ready[0].name, ready[0].argv, ready[0].env
                log = logs / f"{name}.log"
                with open(log, "w") as out:
                    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=dict(env, **extra),
                                            start_new_session=True)  # a group of its own: stopped whole below
                if ready[0].nice:  # its session's share of the CPU, for its processes now and later
                    session.run("python", "-c", "import sys; from ship.procfs import lower_priority; "
                                "lower_priority(int(sys.argv[1]), int(sys.argv[2]))", str(proc.pid),
                                str(ready[0].nice), silent=True)
                running[name] = (proc, log, time.monotonic())
                if not ready[0].nice:  # a run at a niceness yields the cores: it neither waits nor delays
                    next_start = time.monotonic() + STAGGER
                session.log(f"[{name}] started: {' '.join(argv)}")
            time.sleep(0.5)
            for name, (proc, log, begun) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[name]
                verdict = "passed" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
                print(f"\n{'=' * 30} [{name}] {log} {'=' * 30}\n{log.read_text()}", flush=True)
                session.log(f"[{name}] {verdict} after {time.monotonic() - begun:.0f}s; "
                            f"{len(running)} still running")
                if proc.returncode != 0:
                    failed.append(name)
                else:
                    passed.add(name)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)   # stopping them: a second one must not cut it short
        try:
            _stop([proc for proc, _log, _begun in running.values()])
        finally:
            signal.signal(signal.SIGTERM, previous)
    session.log(f"{len(runs)} runs in {time.monotonic() - started:.0f}s")
    if failed:
        session.error(f"failed: {', '.join(failed)} (their logs are printed above and kept in {logs})")


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _stop(procs: list[subprocess.Popen], grace: float = 120) -> None:
    """Interrupted: SIGTERM each run (pytest's finalizers stop its local cloud and destroy what it
    made), then SIGKILL what is left of its process group (Terraform, its provider plugins)."""
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _logs(session: nox.Session) -> Path:
    logs = Path(session.create_tmp()).resolve() / "runs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    return logs


def _engine_missing(session: nox.Session) -> str:
    """Why no container engine answers ("" when one does)."""
    return session.run("python", "-c", "from ship import container_cli; print(container_cli.unavailable_reason())",
                       silent=True).strip()


def _container_runs(logs: Path) -> list[Run]:
    images = ["pytest", "-m", "container", "-p", "no:cacheprovider", f"--basetemp={logs / 'images'}"]
    return [Run("images", images, {}), *_e2e_runs("container", logs)]


@nox.session(python=PYTHON, default=False)
def e2e(session: nox.Session) -> None:
    """The e2e suite, replicas as processes: its shards at once, each on a private local cloud (-- ARGS: one pytest).

    Terraform apply, replicas, rollouts, promote, rollback, destroy."""
    _sync(session, "test", bytecode=True)
    if session.posargs:
        session.run("pytest", *session.posargs)
        return
    logs = _logs(session)
    _run_at_once(session, _e2e_runs("process", logs), logs)


@nox.session(python=PYTHON, default=False)
def container(session: nox.Session) -> None:
    """The image tests, and at the same time the e2e suite's shards with replicas as containers.

    Image build, pytest and flake8 inside it, /health, non-root user, compose."""
    _sync(session, "test", bytecode=True)
    reason = _engine_missing(session)
    if reason:
        session.skip(reason)
    if session.posargs:
        session.run("pytest", *session.posargs)
        return
    logs = _logs(session)
    _note_build_cache(session, logs)
    try:
        _run_at_once(session, _container_runs(logs), logs)
    finally:
        _remove_engine_images(session, logs)


@nox.session(python=PYTHON, default=False)
def integration(session: nox.Session) -> None:
    """The tests, e2e and container sessions at once: unit tests, both runtimes' e2e shards, image tests.

    ONE_RUNTIME's files run in the process runtime only.

    The unit tests (as the tests session runs them) start with the seeds, outside the JOBS limit
    and at niceness UNIT_NICE: they take the CPU the e2e runs leave while those wait on the
    provider. Without a container engine, the process runtime alone (it says why)."""
    _integration(session, [])


# The default sessions but `tests` (whose unit tests integration runs): the `ci` session runs them.
CHECKS = [name for name in nox.options.sessions if name != "tests"]


@nox.session(python=PYTHON, default=False)
def ci(session: nox.Session) -> None:
    """What CI runs: integration's runs and, beside them, the default sessions but tests, at once.

    Those checks (CHECKS: lint, typecheck, terraform, checkov, actionlint) are one nox run of
    their sessions, started with the unit tests and at their niceness: the checks' minute of
    CPU is spent while the e2e runs wait on the provider, not before they start."""
    checks = Run("checks", [sys.executable, "-m", "nox", "--sessions", *CHECKS], {}, slot=False, nice=UNIT_NICE)
    _integration(session, [checks])


def _integration(session: nox.Session, side: list[Run]) -> None:
    """The integration session's runs, and the ``side`` runs (outside the JOBS limit) with the unit tests."""
    _sync(session, "test", bytecode=True)
    logs = _logs(session)
    unit = Run("unit", ["pytest", *UNIT, "-p", "no:cacheprovider"], {}, slot=False, nice=UNIT_NICE)
    runs = [*side, unit, *_e2e_runs("process", logs)]
    reason = _engine_missing(session)
    if reason:
        session.warn(f"no container engine ({reason}): the image tests and the container runtime do not run")
    else:  # the runtimes interleaved, each shard's pair together (container first, the longer): the
        # seeds, the side runs and the unit tests, the shards without a seed, then those that start
        # from one, in E2E_SHARDS's order
        others = _container_runs(logs)
        seeded = [shard for shard in E2E_SHARDS if shard in SEEDED]
        order = ["seed", *(run.name for run in side), "unit", *[shard for shard in E2E_SHARDS if shard not in SEEDED],
                 *seeded[:2], "images", *seeded[2:]]
        runs = sorted(runs + others, key=lambda run: (order.index(_kind(run.name)), run.name))
        _note_build_cache(session, logs)
    try:
        _run_at_once(session, runs, logs)
    finally:
        _remove_engine_images(session, logs)


def _kind(name: str) -> str:
    """"seed", "unit", "images", a side run's name, or the shard a run's name names."""
    return "seed" if name.startswith("seed-") else name.rsplit("-", 1)[-1]


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks (figures, not pass/fail): gunicorn throughput, the local load balancer against HAProxy."""
    session.run("bash", ".ci/bench-setup.sh", external=True)  # wrk and HAProxy from Debian
    _sync(session, "test", bytecode=True)
    session.run("python", "benchmarks/gunicorn_throughput.py", *session.posargs)
    session.run("python", "benchmarks/lb_overhead.py")
