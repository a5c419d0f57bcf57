"""Image resolution against the emulator's ECR, and process rootfs materialisation."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ship import fsutil, oci
from ship.localcloud import emulator
from ship.localcloud.emulator import ecr

ECR_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9._/-]+?)(?:@(?P<digest>sha256:[0-9a-f]{64})|:(?P<tag>[A-Za-z0-9_.-]+))?$"
)


class ImageError(Exception):
    """The image cannot be pulled; str() is an ECS-like reason."""


@dataclass
class ResolvedImage:
    uri: str
    digest: str
    config_media_type: str
    config: dict
    layers: list[oci.Descriptor] = field(default_factory=list)
    config_digest: str = ""

    @property
    def is_process_image(self) -> bool:
        return self.config_media_type == oci.PROCESS_CONFIG_MEDIA_TYPE

    @property
    def run_config(self) -> dict:
        return self.config.get("config") or {}


def _bad_digest(uri: str) -> str | None:
    """Why the ``@digest`` part of ``uri`` is malformed, or None."""
    if "@" not in (uri or ""):
        return None
    digest = uri.rsplit("@", 1)[1]
    algorithm, _, hexpart = digest.partition(":")
    if algorithm == "sha256" and len(hexpart) == 64 and all(c in "0123456789abcdef" for c in hexpart):
        return None
    if algorithm == "sha256":
        return f"{digest!r} is not a sha256 digest of 64 lowercase hex digits ({len(hexpart)} characters given)"
    return f"{digest!r} is not a digest (sha256: followed by 64 lowercase hex digits)"


def resolve(uri: str, blobs: oci.BlobStore) -> ResolvedImage:
    bad = _bad_digest(uri)
    if bad:
        raise ImageError(f"CannotPullContainerError: invalid reference format: {uri}: {bad}")
    m = ECR_URI.match(uri or "")
    if not m:
        raise ImageError(
            f"CannotPullContainerError: pull image manifest has been retried 1 time(s): {uri}: "
            "not an ECR image reference (no registry other than the local ECR is reachable)")
    tag = m.group("tag") if not m.group("digest") else None
    if not m.group("digest") and not tag:
        tag = "latest"
    with emulator.LOCK:
        found = ecr.find_image(m.group("region"), m.group("account"), m.group("repo"),
                               tag, m.group("digest"))
    if found is None:
        raise ImageError(
            f"CannotPullContainerError: pull image manifest has been retried 1 time(s): "
            f"failed to resolve ref {uri}: not found")
    manifest, _media_type, digest = found
    try:
        config_desc, layers = oci.parse_manifest(manifest)
    except (ValueError, KeyError, TypeError) as exc:
        raise ImageError(f"CannotPullContainerError: invalid manifest for {uri}: {exc}")
    if not blobs.has(config_desc.digest):
        raise ImageError(
            f"CannotPullContainerError: config blob {config_desc.digest} of {uri} was never uploaded")
    try:
        config = json.loads(blobs.get(config_desc.digest))
    except ValueError as exc:
        raise ImageError(f"CannotPullContainerError: invalid image config of {uri}: {exc}")
    return ResolvedImage(uri, digest, config_desc.media_type, config, layers, config_digest=config_desc.digest)


class RootfsCache:
    """Process images materialised once per image under ``root/<key>``: the layers' files
    and a virtual environment with the layers' wheels installed.

    A single-layer image gets its own environment. An image of several layers (the
    dependencies' wheels, then the app's) gets a copy of a *base* environment made once
    for its lower layers (``root/.base-<key>``), then only its top layer's wheels
    installed on top, without dependencies: an edit to the app installs one wheel.

    As in the runtime image (Dockerfile: ``venv --without-pip``), the environment holds no
    installer: pip runs from outside it, from the wheel Python bundles for ensurepip, unpacked
    once under ``root/.pip-<version>`` (where its modules are compiled on first use; run from
    the wheel itself, pip compiles them on every run). Seeding pip and setuptools into each
    environment cost ~4 s of CPU, more than the install itself. Where Python bundles no pip
    wheel (some distributions keep them elsewhere), the environment is made with pip in it
    and pip runs from there."""

    def __init__(self, root: Path, blobs: oci.BlobStore, python: str = sys.executable, pip: bool = True):
        self.root = Path(root)
        self.blobs = blobs
        self.python = python
        self.pip = bundled_pip() if pip else None   # None: pip inside each environment
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock_for(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    @staticmethod
    def key(layers: list[oci.Descriptor]) -> str:
        """The directory name of an image's rootfs (the layer's hex for one layer, as before)."""
        if len(layers) == 1:
            return layers[0].digest.split(":", 1)[1]
        return hashlib.sha256(" ".join(d.digest for d in layers).encode()).hexdigest()

    def materialize(self, image: ResolvedImage) -> Path:
        layers = list(image.layers)
        if not layers:
            raise ImageError(f"CannotPullContainerError: a process image needs at least one layer ({image.uri})")
        for layer in layers:
            if not self.blobs.has(layer.digest):
                raise ImageError(
                    f"CannotPullContainerError: layer {layer.digest} of {image.uri} was never uploaded")
        if len(layers) == 1:
            return self._build(self.key(layers), layers, image, base=None)
        base = self._build(".base-" + self.key(layers[:-1])[:32], layers[:-1], image, base=None)
        return self._build(self.key(layers), layers, image, base=base)

    def _build(self, key: str, layers: list[oci.Descriptor], image: ResolvedImage, base: Path | None) -> Path:
        """``root/<key>``: ``layers`` unpacked and their wheels installed in a venv of their own
        (``base`` None), or in a copy of ``base``'s venv with only the top layer's wheels on it.
        Made once, beside its place and renamed into it (a half-made one is never complete)."""
        target = self.root / key
        with self._lock_for(key):
            if (target / ".complete").is_file():
                return target
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".build-{key.lstrip('.')[:17]}-"))
            try:
                top: list[str] = []
                for layer in layers:
                    top = self._extract(layer, tmp)
                (tmp / "app").mkdir(exist_ok=True)
                # the venv is made at its final path: venvs are not relocatable
                if target.exists():
                    shutil.rmtree(target)
                fsutil.move_into_place(tmp, target)  # tmp is beside target: a rename
                tmp = target
                if base is None:
                    self._run([self.python, "-m", "venv", *(["--without-pip"] if self.pip else []),
                               str(target / "venv")], image, target)
                    self._install(target, sorted((target / "wheels").glob("*.whl")), image, deps=True)
                else:
                    _clone_venv(base / "venv", target / "venv")
                    self._install(target, [target / name for name in top if name.endswith(".whl")], image,
                                  deps=False)
                (target / ".complete").write_text(" ".join(d.digest for d in layers))
            except OSError as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                if exc.errno == errno.ENOSPC:
                    raise ImageError(_disk_full(image, self.root, "no space left on device")) from None
                raise
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return target

    def _unpacked_pip(self, wheel: Path) -> Path:
        """``root/.pip-<version>``: the pip wheel unpacked, once (made beside, renamed into place)."""
        target = self.root / f".{wheel.name.split('-py')[0]}"
        with self._lock_for(target.name):
            if not (target / "pip" / "__main__.py").is_file():
                tmp = fsutil.temp_dir_beside(target, prefix=".unpacking-pip-")
                try:
                    with zipfile.ZipFile(wheel) as whl:
                        whl.extractall(tmp)
                    shutil.rmtree(target, ignore_errors=True)
                    fsutil.move_into_place(tmp, target)
                except BaseException:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
        return target

    def _extract(self, layer: oci.Descriptor, dest: Path) -> list[str]:
        """Unpack one layer into ``dest``; returns the names of the files it holds."""
        with tarfile.open(self.blobs.path(layer.digest), "r:gz") as tar:
            names = [m.name for m in tar.getmembers() if m.isfile()]
            tar.extractall(dest, filter="data")
        return names

    def _install(self, target: Path, wheels: list[Path], image: ResolvedImage, deps: bool) -> None:
        if not wheels:
            return
        pip = [str(self._unpacked_pip(self.pip) / "pip")] if self.pip else ["-m", "pip"]
        self._run([str(target / "venv" / "bin" / "python"), *pip, "install", "--quiet", "--isolated",
                   "--no-index", "--disable-pip-version-check", "--no-cache-dir",
                   *(["--ignore-installed", "--find-links", str(target / "wheels")] if deps else ["--no-deps"]),
                   *[str(w) for w in wheels]], image, target)

    @staticmethod
    def _run(cmd: list[str], image: ResolvedImage, where: Path) -> None:
        # Only the image's own wheels count: nothing from the local cloud's own
        # environment (PYTHONPATH, pip settings) may satisfy or redirect the install,
        # or an egg-info in a source tree would pass for the installed app.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "PIP_", "VIRTUAL_ENV", "CONDA"))}
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=600, stdin=subprocess.DEVNULL, env=env)
        if proc.returncode != 0:
            out = proc.stdout or ""
            if "No space left on device" in out or "[Errno 28]" in out or _free_bytes(where) < LOW_DISK:
                raise ImageError(_disk_full(image, where, "no space left on device"))
            last = out.strip().splitlines()[-1:] or ["no output"]
            raise ImageError(f"CannotPullContainerError: preparing {image.uri} failed: {last[0]}")


def bundled_pip() -> Path | None:
    """The pip wheel this Python bundles for ensurepip (pip runs from a wheel: ``python pip.whl/pip``)."""
    try:
        import ensurepip
    except ImportError:
        return None
    wheels = sorted(Path(ensurepip.__file__).parent.glob("_bundled/pip-*.whl"))
    return wheels[-1] if wheels else None


LOW_DISK = 64 * 1024 * 1024  # below this, a failed environment setup is put down to the disk


def _free_bytes(where: Path) -> int:
    """Free bytes on the filesystem holding ``where`` (or its nearest existing parent)."""
    for place in (Path(where), *Path(where).parents):
        try:
            return shutil.disk_usage(place).free
        except OSError:
            continue
    return LOW_DISK


def _disk_full(image: ResolvedImage, where: Path, what: str) -> str:
    free = _free_bytes(where)
    return (f"CannotPullContainerError: preparing {image.uri} failed: {what}: the disk holding {where} is full "
            f"({free // (1024 * 1024)} MiB free); free some space and the service starts the task again")


def _clone_venv(src: Path, dest: Path) -> None:
    """Copy a virtual environment to ``dest`` and point it at its new place.

    Files are hard-linked where the filesystem allows (Python replaces files, it
    does not write into them: the base stays intact); the scripts in ``bin/`` and
    ``pyvenv.cfg``, which name the environment's own path, are rewritten."""
    def link_or_copy(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dest, symlinks=True, copy_function=link_or_copy)
    old, new = str(src).encode(), str(dest).encode()
    for path in [*sorted((dest / "bin").iterdir()), dest / "pyvenv.cfg"]:
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if old not in data:
            continue
        mode = path.stat().st_mode
        path.unlink()      # never write through a hard link into the base
        path.write_bytes(data.replace(old, new))
        path.chmod(mode)
