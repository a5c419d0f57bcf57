"""The image format shared by the builder, the registry push and the local cloud.

An image is what a registry stores: a manifest naming one config blob and one
or more layer blobs, each addressed by the sha256 of its bytes. The image's
digest is the sha256 of the manifest bytes, as in ECR and every OCI registry.

Two kinds of image exist here:

* container images (built by a container engine; Docker/OCI media types);
* process images, for machines without a container engine. Their config uses
  ``PROCESS_CONFIG_MEDIA_TYPE`` and carries the same ``config`` section as an
  OCI image config (Cmd, Env, WorkingDir, ExposedPorts, User); their layers
  are gzipped tars holding ``wheels/`` (the dependencies' wheels in the first,
  the application's in the last) and ``app/`` (the working directory). The
  local cloud installs those wheels offline into an environment per image (the
  lower layers' once, as a base it copies) and runs Cmd there.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ship.fsutil import write_atomically

OCI_MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
PROCESS_CONFIG_MEDIA_TYPE = "application/vnd.ship.process.config.v1+json"
PROCESS_LAYER_MEDIA_TYPE = "application/vnd.ship.process.layer.v1.tar+gzip"


def sha256_digest(data: bytes) -> str:
    """Return ``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj) -> bytes:
    """Stable bytes for a JSON document: same object, same digest."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @classmethod
    def from_json(cls, obj: dict) -> "Descriptor":
        return cls(obj["mediaType"], obj["digest"], int(obj["size"]))


def build_manifest(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """Manifest bytes for an OCI image made of ``config`` and ``layers``."""
    return canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": config.to_json(),
            "layers": [layer.to_json() for layer in layers],
        }
    )


def parse_manifest(manifest: str | bytes) -> tuple[Descriptor, list[Descriptor]]:
    obj = json.loads(manifest)
    return Descriptor.from_json(obj["config"]), [Descriptor.from_json(x) for x in obj.get("layers", [])]


class BlobStore:
    """Content-addressed files under ``root/sha256/<hex>``; writes are atomic."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256" or len(hexpart) != 64:
            raise ValueError(f"not a sha256 digest: {digest!r}")
        return self.root / "sha256" / hexpart

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, data: bytes) -> str:
        digest = sha256_digest(data)
        target = self.path(digest)
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, data)
        return digest

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()
