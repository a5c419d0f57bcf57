"""Building the application image once per commit.

With a container engine the image is built from the Dockerfile (see
``ship.container_image``). Without one, ship builds a *process image* with the
same shape as a container image (see ``ship.oci``): two layers, the wheels
of the app's dependencies at the versions and hashes of uv.lock first (see
``ship.wheelhouse``; nothing of ship's own), then the app (its wheel and the
working directory), and a config whose Cmd, WorkingDir, ExposedPorts and Env
are read from the Dockerfile's final stage, so both kinds of image start the
app the same way. The build is reproducible: the same commit gives the same
bytes and so the same digest. As in a Dockerfile that installs its locked
requirements before copying the app, an edit to the app changes only the
second layer: the first is neither rebuilt, nor pushed again, nor installed
again by the local cloud.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shlex
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ship import git, oci, wheelhouse
from ship.errors import ShipError
from ship.fsutil import write_atomically


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


DEPENDENCY_LAYER = "layer.tar.gz"
DEPENDENCY_EPOCH = 315532800   # 1980-01-01: the dependency layer does not depend on the commit


def dependency_layer(deps: Path) -> bytes:
    """The layer of the locked dependency wheels in ``deps`` (``wheelhouse.dependency_wheels``),
    made once per lock and kept beside them."""
    cached = deps / DEPENDENCY_LAYER
    if cached.is_file():
        return cached.read_bytes()
    data = _layer(None, sorted(deps.glob("*.whl")), DEPENDENCY_EPOCH)
    write_atomically(cached, data)
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
    deps = wheelhouse.dependency_wheels(source, wheelhouse.APP)
    deps_layer = dependency_layer(deps)
    with tempfile.TemporaryDirectory(prefix="ship-wheel-") as tmp:
        wheel = wheelhouse.build_wheel(source, "hello", Path(tmp), commit.timestamp)
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
