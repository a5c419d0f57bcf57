"""ECR in the emulator: layer bytes kept in a BlobStore, image digests from manifest bytes, image sizes."""

from __future__ import annotations

import hashlib
import json

from ship.localcloud.emulator.compat import internals as _moto

PATCHES = [
    "ecr: complete_layer_upload keeps the uploaded bytes in a BlobStore; a digest mismatch is rejected",
    "ecr: put_image without imageDigest uses sha256 of the manifest bytes (as ECR), not of layer digests",
    "ecr: imageSizeInBytes is the sum of the layers' sizes (an index: its largest image), as ECR reports, "
    "not the config blob's size",
]

# What the local cloud acts on (emulator/coverage.py): the layer bytes are kept, and the data plane
# runs the images it finds here.
ACTED_ON = {"InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload", "PutImage", "BatchGetImage",
            "GetDownloadUrlForLayer", "DescribeImages"}


def image_size(manifest: dict, child_size=lambda digest: None) -> int | None:
    """ECR's imageSizeInBytes of a manifest: the sum of its layers' (compressed) sizes; for a manifest
    list or OCI index, the largest of its images that are in the repository (ECR API reference,
    ImageDetail.imageSizeInBytes). None when the manifest says no sizes (schema 1)."""
    if isinstance(manifest.get("layers"), list):
        return sum(int(layer.get("size") or 0) for layer in manifest["layers"])
    if isinstance(manifest.get("manifests"), list):
        sizes = [child_size(m.get("digest")) for m in manifest["manifests"]]
        sizes = [n for n in sizes if n is not None]
        return max(sizes) if sizes else None
    return None


_BLOBS = None


def install(blob_store) -> None:
    global _BLOBS
    ecr_models = _moto()[3]
    Backend = ecr_models.ECRBackend
    _BLOBS = blob_store
    if getattr(Backend, "_ship_patched", False):
        return
    orig_complete = Backend.complete_layer_upload
    orig_put_image = Backend.put_image

    def complete_layer_upload(self, repository_name, upload_id, layer_digests, registry_id=None):
        repository = self._get_repository(repository_name, registry_id)
        upload = repository.uploads.get(upload_id)
        data = bytes(upload.layer_parts) if upload is not None else None
        if data is not None and layer_digests:
            actual = "sha256:" + hashlib.sha256(data).hexdigest()
            if actual not in layer_digests:
                raise ecr_models.InvalidParameterException(
                    f"Invalid parameter at 'layerDigests': layer digest {layer_digests[0]} "
                    f"does not match the uploaded content ({actual})")
        result = orig_complete(self, repository_name, upload_id, layer_digests, registry_id)
        if data is not None and _BLOBS is not None:
            _BLOBS.put(data)
        return result

    def put_image(self, repository_name, image_manifest, image_tag, image_manifest_mediatype=None,
                  digest=None):
        if not digest and isinstance(image_manifest, str):
            digest = "sha256:" + hashlib.sha256(image_manifest.encode()).hexdigest()
        return orig_put_image(self, repository_name, image_manifest, image_tag,
                              image_manifest_mediatype, digest)

    def get_download_url_for_layer(response):
        # ECR answers with a short-lived URL to the layer's bytes; ours points
        # at the local cloud's own blob endpoint (/_ship/blobs/...).
        repository_name = response._get_param("repositoryName")
        digest = response._get_param("layerDigest")
        repository = response.ecr_backend._get_repository(repository_name, response._get_param("registryId"))
        if digest not in repository.layers or _BLOBS is None or not _BLOBS.has(digest):
            from moto.core.exceptions import ServiceException

            class LayersNotFoundException(ServiceException):
                code = "LayersNotFoundException"

            raise LayersNotFoundException(f"The layer with digest '{digest}' does not exist in the repository "
                                          f"with name '{repository_name}'")
        host = response.headers.get("Host") or "127.0.0.1:4566"
        url = f"http://{host}/_ship/blobs/{digest.replace(':', '/')}"
        return json.dumps({"downloadUrl": url, "layerDigest": digest})

    def get_image_size_in_bytes(self):
        try:
            manifest = json.loads(self.image_manifest)
        except (TypeError, ValueError):
            return None
        return image_size(manifest, lambda digest: _child_size(self, digest))

    Backend.complete_layer_upload = complete_layer_upload
    Backend.put_image = put_image
    ecr_models.Image.get_image_size_in_bytes = get_image_size_in_bytes
    _moto_ecr_responses().ECRResponse.get_download_url_for_layer = get_download_url_for_layer
    Backend._ship_patched = True


def _child_size(image, digest: str | None) -> int | None:
    """The size of another image of the same repository (an index's entry), found by digest."""
    ecr_models = _moto()[3]
    per_region = dict.get(ecr_models.ecr_backends, image.registry_id) or {}
    for backend in list(dict.values(per_region)):
        repo = backend.repositories.get(image.repository_name)
        for other in (repo.images if repo is not None else []):
            if other is not image and other.get_image_digest() == digest:
                try:
                    return image_size(json.loads(other.image_manifest))
                except (TypeError, ValueError):
                    return None
    return None


def _moto_ecr_responses():
    import moto.ecr.responses

    return moto.ecr.responses


def find_image(region: str, account: str, repository: str, tag: str | None, digest: str | None):
    """(manifest text, manifest media type, image digest) or None."""
    ecr_models = _moto()[3]
    per_region = dict.get(ecr_models.ecr_backends, account)
    if per_region is None:
        return None
    backend = dict.get(per_region, region)
    if backend is None or repository not in backend.repositories:
        return None
    for image in backend.repositories[repository].images:
        if digest and image.get_image_digest() != digest:
            continue
        if tag and tag not in image.image_tags:
            continue
        return image.image_manifest, image.image_manifest_media_type, image.get_image_digest()
    return None
