"""Container images from the Dockerfile: build once per commit, test inside, push to ECR.

Talks to "a Docker-compatible engine" through ``ship.container_cli`` (Docker where it
answers, else Podman's CLI). Builds install offline from what the host puts in
``build/`` (``ship.wheelhouse``: the wheels uv.lock pins, checked against its
hashes inside the build, and this repository's own wheels); BASE_IMAGE picks the base (default: the
Dockerfile's official python image; SHIP_BASE_IMAGE overrides it, e.g. the
local base that .ci/podman-setup.sh makes).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from ship import artifact, container_cli, git, oci, paths, wheelhouse
from ship.errors import ShipError

IMAGE_NAME = "hello"


def _build_args(tag: str) -> dict:
    args = {"APP_VERSION": tag}
    base = os.environ.get("SHIP_BASE_IMAGE")
    if not base:
        eng = container_cli.detect()
        if eng is not None and eng.image_exists(container_cli.LOCAL_BASE_IMAGE):
            base = container_cli.LOCAL_BASE_IMAGE
    if base:
        args["BASE_IMAGE"] = base
    return args


def wheelhouses(source: Path, test: bool = False) -> None:
    """build/wheelhouse, build/dist (and build/wheelhouse-test for the test target) for an offline build."""
    commit_epoch = int(time.time())
    try:
        commit_epoch = git.head(source).timestamp
    except ShipError:
        pass
    wheelhouse.for_dockerfile(source, commit_epoch, test=test)


def build_local(tag: str | None = None, target: str = "runtime", echo=print) -> str:
    """``inv build``: build the working tree, tagged hello:<commit tag>."""
    eng = container_cli.require()
    root = paths.project_root()
    commit = git.head(root)
    tag = tag or commit.tag
    wheelhouses(root, test=target == "test")
    ref = f"{IMAGE_NAME}:{tag}" if target == "runtime" else f"{IMAGE_NAME}:{tag}-{target}"
    started = time.monotonic()
    image_id = eng.build(root, ref, target=target, build_args=_build_args(tag),
                         on_output=lambda line: echo(f"  {line}") if line.startswith(("STEP", "#")) else None)
    echo(f"built {ref} ({image_id[:19]}…) with {eng.name} in {time.monotonic() - started:.1f}s")
    return ref


def test_in_container(echo=print) -> None:
    """Build the test target and run pytest and flake8 inside it (entrypoint overrides)."""
    eng = container_cli.require()
    ref = build_local(target="test", echo=echo)
    pytest_args = ["-m", "not e2e and not container", "-q", "-p", "no:cacheprovider"]
    for entrypoint, args in (("flake8", []), ("pytest", pytest_args)):
        echo(f"$ {eng.name} run --rm --entrypoint {entrypoint} {ref} {' '.join(args)}")
        result = subprocess.run(eng.run_args(ref, args, remove=True, entrypoint=entrypoint))
        if result.returncode != 0:
            raise ShipError(f"{entrypoint} failed inside {ref} (exit {result.returncode})")


def build_image(source: Path, commit: git.Commit, tag: str | None = None) -> artifact.Image:
    """Build the runtime image of an exported tree and read it back as registry blobs."""
    eng = container_cli.require()
    wheelhouses(source)
    tag = tag or commit.tag
    ref = f"{IMAGE_NAME}:{tag}"
    eng.build(source, ref, target="runtime", build_args=_build_args(tag))
    with tempfile.TemporaryDirectory(prefix="ship-oci-") as tmp:
        archive = Path(tmp) / "image.tar"
        eng.save(ref, archive, fmt="oci-archive")
        return _read_oci_archive(archive, tag, ref)


def _read_oci_archive(archive: Path, tag: str, local_ref: str) -> artifact.Image:
    import tarfile

    blobs: dict[str, bytes] = {}
    with tarfile.open(archive) as tar:
        def member(name: str) -> bytes:
            found = tar.extractfile(name)
            if found is None:
                raise ShipError(f"{archive}: {name} is not a file in the OCI archive the engine saved")
            return found.read()

        index = json.loads(member("index.json"))
        manifest_desc = index["manifests"][0]

        def blob(digest: str) -> bytes:
            return member("blobs/" + digest.replace(":", "/"))

        manifest = blob(manifest_desc["digest"])
        config, layers = oci.parse_manifest(manifest)
        for desc in [config, *layers]:
            blobs[desc.digest] = blob(desc.digest)
    media_type = json.loads(manifest).get("mediaType") or manifest_desc.get("mediaType") or \
        oci.OCI_MANIFEST_MEDIA_TYPE
    return artifact.Image(tag=tag, kind="container", manifest=manifest, media_type=media_type, blobs=blobs,
                          local_ref=local_ref)


def push(image: artifact.Image, registry, env, session):
    """On the emulator: the registry API (layer uploads + PutImage). On AWS: docker push after an ECR login."""
    if env.emulator:
        return registry.push_manifest(image.manifest, image.media_type, image.tag, image.blobs)
    eng = container_cli.require()
    auth = session.ecr.authorization()
    user, _, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    endpoint = auth["proxyEndpoint"]
    login = subprocess.run(eng.argv("login", "--username", user, "--password-stdin", endpoint), input=password,
                           capture_output=True, text=True)
    if login.returncode != 0:
        raise ShipError(f"{eng.name} login to {endpoint} failed: {login.stderr.strip()}")
    remote = f"{registry.repository_uri()}:{image.tag}"
    eng.tag(image.local_ref, remote)
    pushed = subprocess.run(eng.argv("push", remote), capture_output=True, text=True)
    if pushed.returncode != 0:
        raise ShipError(f"{eng.name} push {remote} failed: {pushed.stderr.strip().splitlines()[-1:]}")
    return registry.find(tag=image.tag)
