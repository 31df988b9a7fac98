import json

from farm.registry.manifests import IndexEntry, image_index, index_platforms, platform_dict

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def test_index_lists_each_platform_in_order() -> None:
    body = image_index([IndexEntry("linux/amd64", "sha256:" + "a" * 64, DOCKER_V2, 524),
                        IndexEntry("linux/arm/v7", "sha256:" + "b" * 64, DOCKER_V2, 600)])
    doc = json.loads(body)
    assert doc["mediaType"] == "application/vnd.oci.image.index.v1+json" and doc["schemaVersion"] == 2
    assert [m["platform"] for m in doc["manifests"]] == [
        {"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "arm", "variant": "v7"}]
    assert doc["manifests"][1]["size"] == 600
    assert index_platforms(doc["mediaType"], body) == {"linux/amd64", "linux/arm/v7"}


def test_a_single_image_is_not_an_index() -> None:
    assert index_platforms(DOCKER_V2, b'{"schemaVersion":2,"config":{},"layers":[]}') is None


def test_platform_dict() -> None:
    assert platform_dict("linux/arm64") == {"os": "linux", "architecture": "arm64"}
