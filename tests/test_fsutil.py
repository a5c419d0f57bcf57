"""Replacing a file whole: what a reader or a killed writer can find."""

from __future__ import annotations

import os

import pytest

from ship import fsutil


@pytest.mark.parametrize("durable", [False, True])
def test_a_file_is_replaced_whole_and_no_temporary_is_left(tmp_path, durable):
    path = tmp_path / "record.json"
    fsutil.write_atomically(path, b"old", durable=durable)
    fsutil.write_atomically(path, b"new", durable=durable)
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    path.write_bytes(b"old")

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        fsutil.write_atomically(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_two_writers_never_share_a_temporary(tmp_path, monkeypatch):
    """Each write has a temporary of its own: a second writer cannot rename the first one's half."""
    path = tmp_path / "record.json"
    seen = []
    real_replace = os.replace

    def record(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", record)
    fsutil.write_atomically(path, b"one")
    fsutil.write_atomically(path, b"two")
    assert len(set(seen)) == 2 and all(name.startswith(".record.json.tmp-") for name in seen)
