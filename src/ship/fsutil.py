"""Putting finished files and directories in place without crossing filesystems.

``os.replace`` is atomic only within one filesystem and fails with EXDEV
("Invalid cross-device link") across two, which is common when /tmp is a
tmpfs. So temporary files are made beside their destination
(``temp_dir_beside``), and ``move_into_place`` still copies (to a temporary
beside the destination, then renames) when given a source elsewhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path


def temp_dir_beside(target: Path, prefix: str = "") -> Path:
    """A new empty directory next to ``target`` (so on its filesystem)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=prefix or f".{target.name}.tmp-"))


def move_into_place(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` (replacing a file, or an empty directory); copy when on another filesystem."""
    src, dst = Path(src), Path(dst)
    try:
        os.replace(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    staged = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name}.copy-"))
    try:
        if src.is_dir():
            staged.rmdir()
            shutil.copytree(src, staged, symlinks=True)
        else:
            staged.rmdir()
            shutil.copy2(src, staged)
        os.replace(staged, dst)
    except BaseException:
        if staged.is_dir():
            shutil.rmtree(staged, ignore_errors=True)
        else:
            staged.unlink(missing_ok=True)
        raise
    if src.is_dir():
        shutil.rmtree(src, ignore_errors=True)
    else:
        src.unlink(missing_ok=True)
