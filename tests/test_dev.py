"""The dev loop's watcher: which files count, what changed, and waiting until an editor
has finished saving."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ship.actions import dev


@pytest.mark.parametrize("name, skip", [
    ("views.py", False), ("Dockerfile", False), ("views.pyc", True), (".#views.py", True),
    ("views.py~", True), (".views.py.swp", True), ("4913", True), ("hello_ship.egg-info", True),
    ("__init__.py", False), (".hidden", True),
])
def test_editor_droppings_and_build_output_are_not_source(name, skip):
    assert dev.ignored(name) is skip


def _tree(root):
    (root / "src" / "hello" / "__pycache__").mkdir(parents=True)
    (root / "src" / "hello" / "views.py").write_text("a")
    (root / "src" / "hello" / "__pycache__" / "views.cpython-311.pyc").write_text("x")
    (root / "pyproject.toml").write_text("[project]")
    (root / "README.md").write_text("not an input of the image")


def test_snapshot_covers_the_inputs_of_the_image_only(tmp_path):
    _tree(tmp_path)
    assert sorted(dev.snapshot(tmp_path)) == ["pyproject.toml", "src/hello/views.py"]


def test_changes_are_files_added_removed_or_modified():
    before = {"a": (1, 1), "b": (1, 1), "c": (1, 1)}
    after = {"a": (1, 1), "b": (2, 1), "d": (1, 1)}
    assert dev.changes(before, after) == ["b", "c", "d"]


def test_a_change_counts_once_the_tree_is_quiet(tmp_path):
    _tree(tmp_path)
    last = dev.snapshot(tmp_path)
    stop = threading.Event()
    result = {}

    def watch():
        result["found"] = dev.wait_for_change(tmp_path, last, stop, poll=0.05, settle=0.3)

    t = threading.Thread(target=watch)
    t.start()
    views = tmp_path / "src" / "hello" / "views.py"
    for i in range(4):                      # an editor saving in several steps
        views.write_text("b" * (i + 2))
        os.utime(views, ns=(time.time_ns(), time.time_ns()))
        time.sleep(0.1)
    (tmp_path / "src" / "hello" / "new.py").write_text("c")
    t.join(timeout=10)
    files, snap = result["found"]
    assert files == ["src/hello/new.py", "src/hello/views.py"]
    assert snap == dev.snapshot(tmp_path)


def test_the_watch_ends_when_told(tmp_path):
    _tree(tmp_path)
    stop = threading.Event()
    stop.set()
    assert dev.wait_for_change(tmp_path, dev.snapshot(tmp_path), stop, poll=0.01) is None
