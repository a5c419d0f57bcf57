"""Process images of several layers: a base environment made once for the lower layers,
and each image's own top layer installed on a copy of it."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile

import pytest
from conftest import _wheel

from ship import oci
from ship.localcloud.runtime.images import ResolvedImage, RootfsCache, bundled_pip


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _image(blobs: oci.BlobStore, layers: list[bytes]) -> ResolvedImage:
    config = oci.canonical_json({"config": {"Cmd": ["python", "-m", "app"]}})
    descs = [oci.Descriptor(oci.PROCESS_LAYER_MEDIA_TYPE, blobs.put(data), len(data)) for data in layers]
    cdesc = oci.Descriptor(oci.PROCESS_CONFIG_MEDIA_TYPE, blobs.put(config), len(config))
    manifest = oci.build_manifest(cdesc, descs)
    return ResolvedImage("uri", oci.sha256_digest(manifest), cdesc.media_type, json.loads(config), descs,
                         cdesc.digest)


def _run(root, code: str) -> str:
    return subprocess.run([str(root / "venv" / "bin" / "python"), "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()


# pip from the wheel Python bundles (the environment holds no installer, as in the runtime
# image), and where Python bundles none, pip inside each environment
PIP = pytest.mark.parametrize("pip", [True, False], ids=["bundled-pip", "pip-inside"])


def _has_pip(root) -> bool:
    return subprocess.run([str(root / "venv" / "bin" / "python"), "-c", "import pip"],
                          capture_output=True).returncode == 0


def test_python_bundles_a_pip_wheel_here():
    assert bundled_pip() is not None and bundled_pip().name.startswith("pip-")


@PIP
def test_each_app_layer_is_installed_on_a_copy_of_one_base(tmp_path, pip):
    blobs = oci.BlobStore(tmp_path / "blobs")
    name, data = _wheel("libdep", "1.0", {"libdep/__init__.py": b"WHO = 'dep'\n"})
    deps = _layer({f"wheels/{name}": data})
    apps = []
    for version in ("1", "2"):
        main = b"import libdep, app; print(libdep.WHO, app.VERSION)\n"
        name, data = _wheel("app", version, {"app/__init__.py": f"VERSION = {version!r}\n".encode(),
                                             "app/__main__.py": main})
        apps.append(_layer({f"wheels/{name}": data, "app/conf.py": version.encode()}))
    cache = RootfsCache(tmp_path / "rootfs", blobs, pip=pip)
    first = cache.materialize(_image(blobs, [deps, apps[0]]))
    second = cache.materialize(_image(blobs, [deps, apps[1]]))

    assert first != second
    assert _run(first, "import runpy; runpy.run_module('app', run_name='__main__')") == "dep 1"
    assert _run(second, "import runpy; runpy.run_module('app', run_name='__main__')") == "dep 2"
    assert (second / "app" / "conf.py").read_text() == "2"
    # one base environment, made once, never changed by the images installed on its copies
    bases = sorted(p.name for p in (tmp_path / "rootfs").iterdir() if p.name.startswith(".base-"))
    assert len(bases) == 1
    base = tmp_path / "rootfs" / bases[0]
    assert subprocess.run([str(base / "venv" / "bin" / "python"), "-c", "import app"],
                          capture_output=True).returncode != 0
    # the copies are environments of their own: their scripts and config name their own path
    assert str(base) not in (second / "venv" / "pyvenv.cfg").read_text()
    for script in (second / "venv" / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            assert str(base) not in script.read_text(errors="replace"), script
    assert cache.materialize(_image(blobs, [deps, apps[1]])) == second     # done once
    assert _has_pip(second) is (not pip) and _has_pip(base) is (not pip)
    # pip from outside: the bundled wheel unpacked once, its modules compiled by the first run
    outside = sorted(p.name for p in (tmp_path / "rootfs").glob(".pip-*"))
    assert outside == (["." + bundled_pip().name.split("-py")[0]] if pip else [])
    if pip:
        assert list((tmp_path / "rootfs" / outside[0] / "pip" / "__pycache__").glob("*.pyc"))


@PIP
def test_a_single_layer_image_gets_its_own_environment(tmp_path, pip):
    blobs = oci.BlobStore(tmp_path / "blobs")
    name, data = _wheel("solo", "1.0", {"solo/__init__.py": b"X = 1\n"})
    image = _image(blobs, [_layer({f"wheels/{name}": data})])
    root = RootfsCache(tmp_path / "rootfs", blobs, pip=pip).materialize(image)
    assert root.name == image.layers[0].digest.split(":")[1]
    assert _run(root, "import solo; print(solo.X)") == "1"
    assert not [p for p in (tmp_path / "rootfs").iterdir() if p.name.startswith(".base-")]
    assert _has_pip(root) is (not pip)
