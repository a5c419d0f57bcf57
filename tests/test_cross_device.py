"""Temporary files live beside their destination: nothing is renamed across filesystems
(a tmpfs /tmp used to crash a first deploy with 'Invalid cross-device link')."""

from __future__ import annotations

import os
import subprocess
import textwrap
import zipfile
from pathlib import Path

import pytest

from ship import fsutil, wheelhouse

SHM = Path("/dev/shm")


@pytest.fixture
def other_fs_tmp(tmp_path, monkeypatch):
    """TMPDIR on another filesystem than tmp_path (a tmpfs), as on machines with a tmpfs /tmp."""
    if not SHM.is_dir() or os.stat(SHM).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's temporary directory")
    place = SHM / f"ship-test-{os.getpid()}-{tmp_path.name}"
    place.mkdir()
    monkeypatch.setenv("TMPDIR", str(place))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    try:
        yield place
    finally:
        import shutil

        shutil.rmtree(place, ignore_errors=True)


def _wheel(path: Path) -> Path:
    wheel = path / "tinydep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("tinydep/__init__.py", "")
        z.writestr("tinydep-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n")
        z.writestr("tinydep-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: t\nRoot-Is-Purelib: true\n"
                                                  "Tag: py3-none-any\n")
        z.writestr("tinydep-1.0.dist-info/RECORD", "")
    return wheel


def test_first_dependency_build_with_tmp_on_another_filesystem(tmp_path, other_fs_tmp, monkeypatch):
    cache = tmp_path / "cache"  # does not exist yet: a first deploy on this machine
    monkeypatch.setenv("SHIP_CACHE_DIR", str(cache))
    source = tmp_path / "src"
    source.mkdir()
    (source / "pyproject.toml").write_text(textwrap.dedent(f"""
        [project]
        name = "demo"
        version = "1"
        requires-python = ">=3.11"
        dependencies = ["tinydep @ {_wheel(tmp_path).as_uri()}"]
        """))
    subprocess.run([wheelhouse.uv_bin(), "lock", "--offline", "--project", str(source)], check=True,
                   capture_output=True)
    scope = wheelhouse.Scope("demo", ("--no-dev",), (), hashes=False)
    target = wheelhouse.dependency_wheels(source, scope)
    assert target.parent == cache / "wheels"
    assert (target / ".complete").is_file() and [p.name for p in target.glob("*.whl")] == [
        "tinydep-1.0-py3-none-any.whl"]
    assert list(other_fs_tmp.iterdir()) == []  # nothing was staged on the other filesystem
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary left beside it
    assert wheelhouse.dependency_wheels(source, scope) == target  # cached


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_move_into_place_copies_across_filesystems(tmp_path, other_fs_tmp, kind):
    src = other_fs_tmp / "made-elsewhere"
    if kind == "dir":
        (src / "sub").mkdir(parents=True)
        (src / "sub" / "f").write_text("data")
    else:
        src.write_text("data")
    dst = tmp_path / "in-place"
    fsutil.move_into_place(src, dst)
    assert not src.exists()
    assert (dst / "sub" / "f" if kind == "dir" else dst).read_text() == "data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in-place"]


def test_temp_dir_beside_is_on_the_destinations_filesystem(tmp_path, other_fs_tmp):
    target = tmp_path / "a" / "b"
    tmp = fsutil.temp_dir_beside(target)
    assert tmp.parent == target.parent and os.stat(tmp).st_dev == os.stat(tmp_path).st_dev
