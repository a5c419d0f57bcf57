"""A full disk while a task's environment is set up is reported as a full disk (an ECS-like
CannotPullContainerError naming the disk), not as ensurepip's exit status.

The disk is a real 2 MiB tmpfs, mounted in a private user+mount namespace (`unshare -Urm`)
so the test needs no privileges and leaves no mount behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import HERE, SRC

SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path[:0] = [{src!r}, {here!r}]
    from pathlib import Path
    from conftest import build_process_image
    from ship import oci
    from ship.localcloud.runtime.images import ImageError, ResolvedImage, RootfsCache

    blobs = oci.BlobStore(Path({blobs!r}))
    config, layer = build_process_image("v1")
    blobs.put(config)
    layer_digest = blobs.put(layer)
    image = ResolvedImage("123456789012.dkr.ecr.us-east-1.amazonaws.com/demo:v1", "sha256:" + "0" * 64,
                          oci.PROCESS_CONFIG_MEDIA_TYPE, json.loads(config),
                          [oci.Descriptor(oci.PROCESS_LAYER_MEDIA_TYPE, layer_digest, len(layer))])
    try:
        RootfsCache(Path({root!r}), blobs).materialize(image)
        print(json.dumps({{"ok": True}}))
    except ImageError as err:
        print(json.dumps({{"ok": False, "reason": str(err)}}))
    """)


def _unshare_works() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-Urm", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs unprivileged user namespaces (unshare -Urm)")
def test_full_disk_during_environment_setup_says_so(tmp_path):
    root, blobs = tmp_path / "rootfs", tmp_path / "blobs"
    root.mkdir()
    script = SCRIPT.format(src=str(SRC), here=str(HERE), blobs=str(blobs), root=str(root))
    result = subprocess.run(
        ["unshare", "-Urm", "sh", "-c", 'mount -t tmpfs -o size=2m tmpfs "$1" && shift && exec "$@"', "sh",
         str(root), sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["ok"] is False
    reason = outcome["reason"]
    assert reason.startswith("CannotPullContainerError: preparing 123456789012.dkr.ecr.us-east-1.amazonaws.com/"
                             "demo:v1 failed: no space left on device: the disk holding ")
    assert "MiB free); free some space" in reason and "ensurepip" not in reason
    assert list(root.iterdir()) == []  # the namespace's tmpfs is gone; nothing was written to the real disk
