"""The image registry (ECR): push, resolve, retag.

Process images are pushed with ECR's own push API (layer uploads, then
PutImage), exactly as a registry client does; container images go through
``docker push`` after an ECR login on AWS, and through the same API on the
emulator. Promotion is a retag: BatchGetImage, then PutImage of the
identical manifest under a new tag, so the digest stays the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ship import oci
from ship.aws import AwsError, Session
from ship.errors import ShipError

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class ImageRef:
    """An image in one repository, pinned by digest."""

    registry: str  # <account>.dkr.ecr.<region>.amazonaws.com
    repository: str
    digest: str
    tags: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"


def registry_host(repository_uri: str) -> str:
    return repository_uri.split("/", 1)[0]


def parse_image_uri(uri: str) -> tuple[str, str, str | None, str | None]:
    """(registry, repository, tag, digest) of an image URI."""
    digest = tag = None
    rest = uri
    if "@" in rest:
        rest, digest = rest.split("@", 1)
    registry, _, repo = rest.partition("/")
    if ":" in repo:
        repo, tag = repo.rsplit(":", 1)
    return registry, repo, tag, digest


class Registry:
    def __init__(self, session: Session, repository: str):
        self.session = session
        self.repository = repository

    @property
    def ecr(self):
        return self.session.ecr

    def repository_uri(self) -> str:
        repo = self.ecr.describe_repository(self.repository)
        if repo is None:
            raise ShipError(f"ECR repository {self.repository} does not exist: "
                            f"run `inv deploy --env={self.session.env.name}` (or infra.apply) first")
        return repo["repositoryUri"]

    def find(self, tag: str | None = None, digest: str | None = None) -> ImageRef:
        """The image with ``tag`` or ``digest``; a one-line error when there is none."""
        if digest and not DIGEST_RE.match(digest):
            raise ShipError(f"{digest!r} is not an image digest (expected sha256:<64 hex digits>)")
        if tag and not TAG_RE.match(tag):
            raise ShipError(f"{tag!r} is not a valid image tag")
        image_id = {"imageDigest": digest} if digest else {"imageTag": tag}
        try:
            details = self.ecr.describe_images(self.repository, [image_id])
        except AwsError as err:
            if err.code in ("ImageNotFoundException", "RepositoryNotFoundException"):
                what = f"tag {tag}" if tag else f"digest {digest}"
                raise ShipError(f"no image with {what} in {self.repository}: "
                                f"list them with `inv images --env={self.session.env.name}`") from None
            raise
        if not details:
            raise ShipError(f"no image {image_id} in {self.repository}")
        d = details[0]
        return ImageRef(registry_host(self.repository_uri()), self.repository, d["imageDigest"],
                        tuple(d.get("imageTags", [])))

    def images(self) -> list[dict]:
        return sorted(self.ecr.describe_images(self.repository), key=lambda d: str(d.get("imagePushedAt", "")),
                      reverse=True)

    def tag_exists(self, tag: str) -> ImageRef | None:
        try:
            return self.find(tag=tag)
        except ShipError:
            return None

    def push_manifest(self, manifest: bytes, media_type: str, tag: str, blobs: dict[str, bytes]) -> ImageRef:
        """Upload the blobs the registry lacks, then put the manifest under ``tag``."""
        config, layers = oci.parse_manifest(manifest)
        needed = [config.digest] + [layer.digest for layer in layers]
        have = self.ecr.layer_availability(self.repository, needed)
        for digest in needed:
            if digest in have:
                continue
            data = blobs.get(digest)
            if data is None:
                raise ShipError(f"blob {digest} is neither in {self.repository} nor in the local build")
            stored = self.ecr.upload_blob(self.repository, data)
            if stored != digest:
                raise ShipError(f"registry stored {stored} for blob {digest}")
        digest = oci.sha256_digest(manifest)
        existing = self.tag_exists(tag)
        if existing:
            if existing.digest != digest:
                raise ShipError(f"tag {tag} already names {existing.digest} in {self.repository}; "
                                "tags are immutable: commit and release a new one")
            return existing
        image = self.ecr.put_image(self.repository, manifest.decode(), media_type, tag, digest)
        return ImageRef(registry_host(self.repository_uri()), self.repository, image["imageId"]["imageDigest"],
                        (tag,))

    def copy_from(self, source: "Registry", ref: ImageRef, tag: str) -> ImageRef:
        """Put the identical manifest of ``ref`` (in ``source``) here under ``tag`` (no pull, no rebuild)."""
        image = source.ecr.batch_get_image(source.repository, {"imageDigest": ref.digest})
        if image is None:
            raise ShipError(f"{ref.uri} vanished from {source.repository}")
        manifest = image["imageManifest"]
        media_type = image.get("imageManifestMediaType") or oci.OCI_MANIFEST_MEDIA_TYPE
        if source.repository != self.repository or source.session is not self.session:
            # Another repository: its blobs must be there too (cross-repository mount).
            self._copy_blobs(source, manifest.encode())
        existing = self.tag_exists(tag)
        if existing and existing.digest == ref.digest:
            return existing
        if existing:
            raise ShipError(f"tag {tag} already names {existing.digest} in {self.repository}; "
                            "tags are immutable, so promotion cannot overwrite it")
        put = self.ecr.put_image(self.repository, manifest, media_type, tag, ref.digest)
        return ImageRef(registry_host(self.repository_uri()), self.repository, put["imageId"]["imageDigest"],
                        (tag,))

    def _copy_blobs(self, source: "Registry", manifest: bytes) -> None:
        config, layers = oci.parse_manifest(manifest)
        needed = [config.digest] + [layer.digest for layer in layers]
        missing = [d for d in needed if d not in self.ecr.layer_availability(self.repository, needed)]
        if not missing:
            return
        # ECR has no cross-repository mount in its API: copy each missing blob
        # registry to registry (GetDownloadUrlForLayer, then a layer upload).
        # The bytes are the same, so the manifest and its digest are too.
        for digest in missing:
            data = source.ecr.download_blob(source.repository, digest)
            stored = self.ecr.upload_blob(self.repository, data)
            if stored != digest:
                raise ShipError(f"copying blob {digest} to {self.repository} stored {stored}")
