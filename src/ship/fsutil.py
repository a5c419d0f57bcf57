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


def write_atomically(path: Path, data: bytes, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` whole: written to a temporary of its own beside it
    (``.<name>.tmp-*``, on the same filesystem), then renamed over it, so a reader or a killed
    writer finds the old file or the new one, never part of one; two writers never share a
    temporary. ``durable``: synced to disk before and after the rename, so a crash of the
    machine keeps one of the two as well."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        try:
            dirfd = os.open(path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
