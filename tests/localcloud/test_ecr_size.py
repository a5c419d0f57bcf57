"""ECR imageSizeInBytes is the sum of the layers' sizes, as ECR reports it (ECR API reference,
ImageDetail: "the size, in bytes, of the image in the repository"; compressed layers; for a manifest
list, the largest image in it)."""

from __future__ import annotations

import json

import boto3
import pytest
from conftest import build_process_image, push_image
from moto import mock_aws

from ship import oci
from ship.localcloud import emulator
from ship.localcloud.emulator.ecr import image_size


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory):
    emulator.install(oci.BlobStore(tmp_path_factory.mktemp("blobs")))


@pytest.mark.parametrize("manifest, children, expected", [
    ({"config": {"size": 321}, "layers": [{"size": 1000}, {"size": 234}]}, {}, 1234),
    ({"config": {"size": 321}, "layers": []}, {}, 0),
    ({"layers": [{"size": 7}, {}]}, {}, 7),
    ({"manifests": [{"digest": "sha256:a"}, {"digest": "sha256:b"}, {"digest": "sha256:gone"}]},
     {"sha256:a": 10, "sha256:b": 30}, 30),
    ({"manifests": [{"digest": "sha256:gone"}]}, {}, None),
    ({"schemaVersion": 1, "fsLayers": [{"blobSum": "sha256:x"}]}, {}, None),
])
def test_image_size(manifest, children, expected):
    assert image_size(manifest, children.get) == expected


@pytest.fixture
def ecr(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        client = boto3.client("ecr", region_name="us-east-1")
        client.create_repository(repositoryName="app")
        yield client


def test_describe_images_reports_the_sum_of_the_layers(ecr):
    config, layer = build_process_image("v1")
    push_image(ecr, "app", "v1", config, layer)
    (detail,) = ecr.describe_images(repositoryName="app")["imageDetails"]
    assert detail["imageSizeInBytes"] == len(layer) > len(config)


def test_an_index_reports_its_largest_image_and_a_retag_the_same_size(ecr):
    small, big = build_process_image("small"), build_process_image("big" * 2000)
    uris = [push_image(ecr, "app", tag, *img) for tag, img in (("small", small), ("big", big))]
    index = oci.canonical_json({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                "manifests": [{"mediaType": oci.OCI_MANIFEST_MEDIA_TYPE,
                                               "digest": uri.split("@")[1], "size": 1} for uri in uris]})
    ecr.put_image(repositoryName="app", imageManifest=index.decode(), imageTag="multi",
                  imageManifestMediaType="application/vnd.oci.image.index.v1+json")
    sizes = {d["imageTags"][0]: d.get("imageSizeInBytes") for d in ecr.describe_images(repositoryName="app")[
        "imageDetails"]}
    assert sizes["multi"] == sizes["big"] == len(big[1]) > sizes["small"] == len(small[1])
    got = ecr.batch_get_image(repositoryName="app", imageIds=[{"imageTag": "big"}])["images"][0]
    ecr.put_image(repositoryName="app", imageManifest=got["imageManifest"], imageTag="big-again",
                  imageManifestMediaType=json.loads(got["imageManifest"])["mediaType"])
    again = ecr.describe_images(repositoryName="app", imageIds=[{"imageTag": "big-again"}])["imageDetails"][0]
    assert again["imageSizeInBytes"] == sizes["big"]
