"""Wheels for images, from uv.lock: the app's (and the tool's) locked dependencies and their own wheels.

The lock decides every version (and, for the app, every hash): ``uv export``
turns it into a requirements list for one distribution, pip fetches exactly
those files once per list into the user cache (``paths.cache_dir()``), shared by
process images, container builds and every test session. The distributions of
this repository are built with ``uv build`` from the source tree being shipped.

An image holds the app alone: ``APP`` is the hello distribution and its
dependencies, nothing of ship's.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ship import fsutil, paths
from ship.errors import ShipError


@dataclass(frozen=True)
class Scope:
    """What goes into an image: a distribution set of the workspace and how strictly it is checked."""

    name: str
    export_args: tuple[str, ...]
    packages: tuple[str, ...]  # this repository's distributions, built from the source tree
    hashes: bool  # every file checked against uv.lock's hashes (False: one dependency ships only an sdist)


# The runtime image and process images: the app and its dependencies.
APP = Scope("app", ("--package", "hello", "--no-dev"), ("hello",), hashes=True)
# The Dockerfile's test target: both distributions and the test group (python-terraform is sdist-only).
TEST = Scope("test", ("--no-default-groups", "--group", "test"), ("hello", "ship"), hashes=False)


def uv_bin() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        found = shutil.which("uv")
        if found:
            return found
        raise ShipError("uv is not installed: run `uv sync` (or `pip install uv`) in the project's environment")
    return find_uv_bin()


def _run(argv: list[str], what: str, env: dict | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
    if result.returncode != 0:
        lines = [ln.strip() for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith(("ERROR", "error"))]
        raise ShipError(f"{what} failed: {(errors or lines or ['no output'])[-1]}")
    return result.stdout


def requirements(source: Path, scope: Scope) -> str:
    """The locked requirements of ``scope`` (third-party only), as pip reads them."""
    if not (source / "uv.lock").is_file():
        raise ShipError(f"{source / 'uv.lock'} is missing: run `uv lock` and commit uv.lock")
    argv = [uv_bin(), "export", "--frozen", "--no-emit-workspace", "--no-header", "--no-annotate",
            "--format", "requirements.txt", "--project", str(source), *scope.export_args]
    if not scope.hashes:
        argv.append("--no-hashes")
    return _run(argv, f"uv export ({scope.name})")


def dependency_wheels(source: Path, scope: Scope = APP) -> Path:
    """A folder with one wheel per locked requirement of ``scope``, fetched once per lock and cached."""
    reqs = requirements(source, scope)
    machine = f"{sys.implementation.cache_tag}-{platform.machine()}"
    key = hashlib.sha256(f"{machine}\n{reqs}".encode()).hexdigest()[:16]
    target = paths.cache_dir() / "wheels" / f"{scope.name}-{key}"
    if (target / ".complete").is_file():
        return target
    tmp = fsutil.temp_dir_beside(target, prefix=f".{scope.name}-")  # same filesystem: the rename cannot fail EXDEV
    try:
        (tmp / "requirements.txt").write_text(reqs)
        argv = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp),
                "-r", str(tmp / "requirements.txt")]
        if scope.hashes:
            argv.insert(4, "--require-hashes")
        _run(argv, f"pip wheel ({scope.name} dependencies)")
        (tmp / ".complete").write_text(reqs)
        if (target / ".complete").is_file():
            return target  # another build finished first: keep it, drop ours
        if target.exists():
            shutil.rmtree(target)  # an interrupted build's remains
        try:
            fsutil.move_into_place(tmp, target)
        except OSError:
            if not (target / ".complete").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def build_wheel(source: Path, package: str, out: Path, epoch: int) -> Path:
    """Build ``distributions/<package>`` of ``source`` into ``out``; the same tree and epoch give the same bytes."""
    project = source / "distributions" / package
    # setuptools' scratch folder would carry files deleted from src/ into the wheel.
    shutil.rmtree(project / "build", ignore_errors=True)
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), PYTHONHASHSEED="0")
    _run([uv_bin(), "build", "--wheel", "--quiet", "--python", sys.executable, "--out-dir", str(out), str(project)],
         f"uv build ({package})", env=env)
    wheels = sorted(out.glob(f"{package}-*.whl"))
    if not wheels:
        raise ShipError(f"building {package} from {project} produced no wheel")
    return wheels[-1]


def locked_version(source: Path, name: str) -> str:
    """The version uv.lock pins for the distribution ``name``."""
    import tomllib

    lock = tomllib.loads((source / "uv.lock").read_text())
    versions = {pkg.get("version") for pkg in lock.get("package", []) if pkg.get("name") == name}
    if len(versions) != 1:
        raise ShipError(f"uv.lock pins {name} {len(versions)} times; expected once")
    return versions.pop()


def uv_wheel(source: Path) -> Path:
    """The wheel of the uv that uv.lock pins: the Dockerfile's builder installs it to read the lock."""
    pin = f"uv=={locked_version(source, 'uv')}"
    cache = paths.cache_dir() / "wheels" / pin
    found = sorted(cache.glob("uv-*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
              "--dest", str(cache), pin], f"pip download {pin}")
        found = sorted(cache.glob("uv-*.whl"))
    if not found:
        raise ShipError(f"pip download {pin} brought no wheel for this platform")
    return found[-1]


def for_dockerfile(source: Path, epoch: int, test: bool = False) -> None:
    """What the Dockerfile installs offline: build/wheelhouse (the app's locked dependencies and the
    uv that reads the lock inside the build), build/wheelhouse-test (test target only) and build/dist
    (this repository's own wheels, built from ``source``)."""
    build = source / "build"
    _fill(build / "wheelhouse", [*dependency_wheels(source, APP).glob("*.whl"), uv_wheel(source)])
    if test:
        _fill(build / "wheelhouse-test", list(dependency_wheels(source, TEST).glob("*.whl")))
    dist = build / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir(parents=True)
    for package in (TEST if test else APP).packages:
        build_wheel(source, package, dist, epoch)


def _fill(dest: Path, wheels: list[Path]) -> None:
    """Make ``dest`` hold exactly ``wheels`` (files already there stay, so the build cache stays warm)."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {w.name: w for w in wheels}
    for stale in dest.glob("*.whl"):
        if stale.name not in wanted:
            stale.unlink()
    for name, wheel in wanted.items():
        if not (dest / name).exists():
            shutil.copy2(wheel, dest / name)
