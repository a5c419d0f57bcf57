"""Building the application image once per commit.

With a container engine the image is built from the Dockerfile (see
``ship.containers``). Without one, ship builds a *process image* with the
same shape as a container image (see ``ship.oci``): two layers, the wheels
of the app's dependencies first and then the app (its wheel and the working
directory), and a config whose Cmd, WorkingDir, ExposedPorts and Env are read
from the Dockerfile's final stage, so both kinds of image start the app the
same way. The build is reproducible: the same commit gives the same bytes and
so the same digest. As in a Dockerfile that installs its requirements before
copying the app, an edit to the app changes only the second layer: the first
is neither rebuilt, nor pushed again, nor installed again by the local cloud.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ship import git, oci, paths
from ship.errors import ShipError


@dataclass
class Image:
    """An image ready to push: manifest, its digest, and the blobs it names."""

    tag: str
    kind: str  # "process" or "container"
    manifest: bytes
    media_type: str
    blobs: dict[str, bytes] = field(default_factory=dict, repr=False)
    local_ref: str = ""  # container images: the engine's image id

    @property
    def digest(self) -> str:
        return oci.sha256_digest(self.manifest)


@dataclass(frozen=True)
class RuntimeSpec:
    cmd: list[str]
    workdir: str
    ports: list[int]
    env: dict[str, str]
    user: str


def runtime_spec(dockerfile: Path) -> RuntimeSpec:
    """CMD, WORKDIR, EXPOSE, ENV and USER of the Dockerfile's final stage."""
    try:
        text = dockerfile.read_text()
    except FileNotFoundError:
        raise ShipError(f"{dockerfile} is missing: the image's command comes from it") from None
    text = re.sub(r"\\\n", " ", text)
    stage: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stage = []
        stage.append(line)
    cmd, workdir, ports, env, user = None, "/", [], {}, "root"
    for line in stage:
        word, _, rest = line.partition(" ")
        word, rest = word.upper(), rest.strip()
        if word == "CMD":
            try:
                cmd = json.loads(rest)
            except ValueError:
                raise ShipError(f"{dockerfile}: CMD must be exec form (a JSON list) so SIGTERM reaches the app")
        elif word == "WORKDIR":
            workdir = rest
        elif word == "EXPOSE":
            ports += [int(p.split("/")[0]) for p in rest.split()]
        elif word == "USER":
            user = rest
        elif word == "ENV":
            for part in shlex.split(rest):
                if "=" in part:
                    key, _, value = part.partition("=")
                    if "$" not in value:
                        env[key] = value
    if not cmd:
        raise ShipError(f"{dockerfile}: the final stage has no CMD")
    return RuntimeSpec(cmd=cmd, workdir=workdir, ports=ports, env=env, user=user)


def _pip(*args: str, env: dict | None = None) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        lines = [ln for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")]
        raise ShipError(f"pip {args[0]} failed: {(errors or lines or ['no output'])[-1].strip()}")


def runtime_requirements(source: Path) -> list[str]:
    data = tomllib.loads((source / "pyproject.toml").read_text())
    return sorted(data["project"].get("dependencies", []))


def dependency_wheels(source: Path) -> Path:
    """Wheels of the app's runtime dependencies, built once per dependency set and cached."""
    reqs = runtime_requirements(source)
    key = hashlib.sha256("\n".join(reqs + [sys.version.split()[0]]).encode()).hexdigest()[:16]
    target = paths.state_dir() / "wheelhouse" / f"deps-{key}"
    if (target / ".complete").is_file():
        return target
    tmp = Path(tempfile.mkdtemp(prefix="deps-", dir=target.parent if target.parent.exists() else None))
    try:
        _pip("wheel", "--quiet", "--wheel-dir", str(tmp), *reqs)
        (tmp / ".complete").write_text("\n".join(reqs) + "\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def app_wheel(source: Path, out: Path, epoch: int) -> Path:
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch), PYTHONHASHSEED="0")
    _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", str(out), str(source), env=env)
    wheels = sorted(out.glob("*.whl"))
    if not wheels:
        raise ShipError(f"building the app wheel from {source} produced nothing")
    return wheels[-1]


DEPENDENCY_LAYER = "layer.tar.gz"
DEPENDENCY_EPOCH = 315532800   # 1980-01-01: the dependency layer does not depend on the commit


def dependency_layer(deps: Path) -> bytes:
    """The layer of the dependency wheels in ``deps``, made once per dependency set."""
    cached = deps / DEPENDENCY_LAYER
    if cached.is_file():
        return cached.read_bytes()
    data = _layer(None, sorted(deps.glob("*.whl")), DEPENDENCY_EPOCH)
    fd, tmp = tempfile.mkstemp(dir=deps, prefix=".layer-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, cached)
    return data


def _layer(source: Path | None, wheels: list[Path], epoch: int) -> bytes:
    """A reproducible tar.gz: app/ (the working directory, from ``source``) and wheels/."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            def add(name: str, data: bytes, mode: int = 0o644):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), epoch, mode
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))

            for conf in sorted(source.glob("gunicorn.conf.py")) if source else []:
                add(f"app/{conf.name}", conf.read_bytes())
            for wheel in sorted(wheels, key=lambda p: p.name):
                add(f"wheels/{wheel.name}", wheel.read_bytes())
    return buf.getvalue()


def build_process_image(source: Path, commit: git.Commit, tag: str | None = None) -> Image:
    """Build the process image of ``source`` (an exported tree of ``commit``)."""
    tag = tag or commit.tag
    spec = runtime_spec(source / "Dockerfile")
    deps = dependency_wheels(source)
    deps_layer = dependency_layer(deps)
    with tempfile.TemporaryDirectory(prefix="ship-wheel-") as tmp:
        wheel = app_wheel(source, Path(tmp), commit.timestamp)
        app_layer = _layer(source, [wheel], commit.timestamp)
    env = {**spec.env, "APP_VERSION": tag}
    config = oci.canonical_json({
        "architecture": "any",
        "os": "process",
        "config": {
            "Cmd": spec.cmd,
            "WorkingDir": spec.workdir,
            "ExposedPorts": {f"{p}/tcp": {} for p in spec.ports},
            "Env": [f"{k}={v}" for k, v in sorted(env.items())],
            "User": spec.user,
            "Labels": {"org.opencontainers.image.revision": commit.sha,
                       "org.opencontainers.image.version": tag},
        },
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
    })
    config_desc = oci.Descriptor(oci.PROCESS_CONFIG_MEDIA_TYPE, oci.sha256_digest(config), len(config))
    layers = [oci.Descriptor(oci.PROCESS_LAYER_MEDIA_TYPE, oci.sha256_digest(data), len(data))
              for data in (deps_layer, app_layer)]
    manifest = oci.build_manifest(config_desc, layers)
    blobs = {config_desc.digest: config, layers[0].digest: deps_layer, layers[1].digest: app_layer}
    return Image(tag=tag, kind="process", manifest=manifest, media_type=oci.OCI_MANIFEST_MEDIA_TYPE, blobs=blobs)


def export_commit(root: Path, dest: Path) -> git.Commit:
    commit = git.head(root)
    git.export(root, dest)
    return commit
