"""Garden's vectors for image ids (core/test/unit/src/plugins/container/helpers.ts), BuildKit
cache and output flags (core/test/unit/src/plugins/kubernetes/container/build/buildkit.ts,
getBuildkitImageFlags) and the provider schema rule that `context` is required
(core/src/plugins/kubernetes/config.ts). Our test code; Garden's data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from farm.errors import ConfigError
from farm.garden import GitInfo, load_project
from farm.images import ImageId, cache_refs, image_outputs, parse_image_id
from tests.conformance.garden import BUILDKIT, CONTAINER_HELPERS, K8S_CONFIG, vector
from workers.builders.buildkit_cache import image_flags

H = "containerHelpers > "
INFO = GitInfo(branch="main", commit_hash="0" * 40)


@pytest.mark.parametrize("image_id,parsed", [
    vector(CONTAINER_HELPERS, H + "parseImageId > should correctly parse a simple id", "image:tag",
           ImageId(None, None, "image", "tag")),
    vector(CONTAINER_HELPERS, H + "parseImageId > should correctly parse an id with a namespace", "namespace/image:tag",
           ImageId(None, "namespace", "image", "tag")),
    vector(CONTAINER_HELPERS, H + "parseImageId > should correctly parse an id with a host and namespace",
           "my-host.com/namespace/image:tag", ImageId("my-host.com", "namespace", "image", "tag")),
    vector(CONTAINER_HELPERS, H + "parseImageId > should correctly parse an id with a host with a port, and namespace",
           "localhost:5000/namespace/image:tag", ImageId("localhost:5000", "namespace", "image", "tag")),
    vector(CONTAINER_HELPERS, H + "parseImageId > should correctly parse an id with a host and multi-level namespace",
           "my-host.com/a/b/c/d/image:tag", ImageId("my-host.com", "a/b/c/d", "image", "tag")),
])
def test_parse_image_id(image_id: str, parsed: ImageId) -> None:
    assert parse_image_id(image_id) == parsed


@pytest.mark.parametrize("image_id", [
    vector(CONTAINER_HELPERS, H + "parseImageId > should throw on an empty name", ""),
    vector(CONTAINER_HELPERS, H + "unparseImageId > should throw on an empty name", ""),
])
def test_empty_image_id_is_refused(image_id: str) -> None:
    with pytest.raises(ConfigError, match="Invalid container image tag"):
        parse_image_id(image_id)


@pytest.mark.parametrize("parsed,expected", [
    vector(CONTAINER_HELPERS, H + "unparseImageId > should correctly compose a simple id",
           ImageId(None, None, "image", "tag"), "image:tag"),
    vector(CONTAINER_HELPERS, H + "unparseImageId > should correctly compose an id with a namespace",
           ImageId(None, "namespace", "image", "tag"), "namespace/image:tag"),
    vector(CONTAINER_HELPERS, H + "unparseImageId > should correctly compose an id with a host and namespace",
           ImageId("my-host.com", "namespace", "image", "tag"), "my-host.com/namespace/image:tag"),
    vector(CONTAINER_HELPERS, H + "unparseImageId > should ignore the namespace when host but no namespace is specified",
           ImageId("my-host.com", None, "image", "tag"), "my-host.com/image:tag"),
    vector(CONTAINER_HELPERS, H + "unparseImageId > should correctly compose an id with a host and multi-level "
           "namespace", ImageId("my-host.com", "a/b/c/d", "image", "tag"), "my-host.com/a/b/c/d/image:tag"),
])
def test_unparse_image_id(parsed: ImageId, expected: str) -> None:
    assert f"{parsed.name()}:{parsed.tag}" == expected


def write_project(tmp: Path, provider: dict[str, Any], spec: dict[str, Any] | None = None) -> Any:
    (tmp / "name").mkdir(parents=True, exist_ok=True)
    (tmp / "project.garden.yml").write_text(json.dumps(
        {"apiVersion": "garden.io/v1", "kind": "Project", "name": "p", "environments": [{"name": "dev"}],
         "providers": [{"name": "kubernetes", **provider}]}))
    (tmp / "name" / "garden.yml").write_text(json.dumps({"kind": "Build", "type": "container", "name": "name",
                                                         "spec": spec or {}}))
    return load_project(tmp, git=INFO)


@pytest.mark.parametrize("local_id,expected", [
    vector(CONTAINER_HELPERS, H + "getLocalImageId > should return configured image name if set, with the version as "
           "the tag", "some/image:1.1", "some/image:1234"),
    vector(CONTAINER_HELPERS, H + "getLocalImageId > should return build name if image is not specified, with the "
           "version as the tag", None, "name:1234"),
])
def test_local_image_id(tmp_path: Path, local_id: str | None, expected: str) -> None:
    p = write_project(tmp_path, {"context": "c"}, {"localId": local_id} if local_id else {})
    assert image_outputs(p.builds["name"], p.provider, "1234").local_image_id == expected


@pytest.mark.parametrize("local_id,expected", [
    vector(CONTAINER_HELPERS, H + "getLocalImageName > should return explicit image name with no version if specified",
           "some/image:1.1", "some/image"),
    vector(CONTAINER_HELPERS, H + "getLocalImageName > should return build name if no image name is specified", None,
           "name"),
])
def test_local_image_name(tmp_path: Path, local_id: str | None, expected: str) -> None:
    p = write_project(tmp_path, {"context": "c"}, {"localId": local_id} if local_id else {})
    assert image_outputs(p.builds["name"], p.provider, "1234").local_image_name == expected


DEFAULT_CACHE = [{"type": "registry", "mode": "auto", "tag": "_buildcache", "export": True}]
F = "buildkit build > getBuildkitImageFlags() > "


def flags(tmp: Path, registry: str, cache: list[dict[str, Any]]) -> list[str]:
    p = write_project(tmp, {"context": "c", "buildMode": "cluster-buildkit",
                            "deploymentRegistry": {"hostname": registry, "namespace": "namespace", "insecure": False},
                            "clusterBuildkit": {"cache": cache}})
    build = p.builds["name"]
    image_id = image_outputs(build, p.provider, "v-xxxxxx").deployment_image_id
    return image_flags(cache_refs(build, p.provider), deployment_image_id=image_id)


def inline(r: str) -> list[str]:
    return ["--export-cache", "type=inline", "--output",
            f'type=image,"name={r}/namespace/name:v-xxxxxx,{r}/namespace/name:_buildcache",push=true',
            "--import-cache", f"type=registry,ref={r}/namespace/name:_buildcache"]


def maximal(r: str, mode: str = "max", manifest: str = "") -> list[str]:
    return ["--output", f'type=image,"name={r}/namespace/name:v-xxxxxx",push=true',
            "--import-cache", f"type=registry,ref={r}/namespace/name:_buildcache",
            "--export-cache", f"{manifest}type=registry,ref={r}/namespace/name:_buildcache,mode={mode}"]


def _cache(mode: str) -> list[dict[str, Any]]:
    return [{"type": "registry", "mode": mode, "tag": "_buildcache", "export": True}]


SEPARATE = [{"type": "registry", "registry": {"hostname": "pkg.dev/cacheRegistry", "namespace": "namespace",
                                              "insecure": False}, "mode": "auto", "tag": "_buildcache", "export": True}]
COMPLEX = [{"type": "registry", "registry": {"hostname": "pkg.dev/someBigTeamCacheRegistry", "namespace": "namespace",
                                             "insecure": False}, "mode": "auto", "tag": t, "export": e}
           for t, e in (("_buildcache-featureBranch", True), ("_buildcache-main", False))]


@pytest.mark.parametrize("registry,cache,expected", [
    *[vector(BUILDKIT, F + f"returns type=inline cache flags with default config with registry {r}", r, DEFAULT_CACHE,
             inline(r)) for r in ("gcr.io", "anyOtherRegistry", "127.0.0.1")],
    *[vector(BUILDKIT, F + f"returns mode=max cache flags with image-manifest=true for registry {r}", r, DEFAULT_CACHE,
             maximal(r, manifest="image-manifest=true,"))
      for r in ("aws_account_id.dkr.ecr.region.amazonaws.com", "keks.dkr.ecr.bla.amazonaws.com")],
    *[vector(BUILDKIT, F + f"returns mode=max cache flags with default config with registry {r}", r, DEFAULT_CACHE,
             maximal(r)) for r in ("index.docker.io", "pkg.dev", "some.subdomain.pkg.dev", "ghcr.io", "GHCR.io",
                                   "azurecr.io", "some.subdomain.azurecr.io")],
    *[vector(BUILDKIT, F + f"returns mode={m} cache flags if explicitly configured", "explicitTeamRegistry", _cache(m),
             maximal("explicitTeamRegistry", m)) for m in ("min", "max")],
    vector(BUILDKIT, F + "returns type=inline cache flags when explicitly configured", "someExplicitInlineRegistry",
           _cache("inline"), inline("someExplicitInlineRegistry")),
    vector(BUILDKIT, F + "returns correct flags with separate cache registry", "gcr.io/deploymentRegistry", SEPARATE,
           ["--output", 'type=image,"name=gcr.io/deploymentRegistry/namespace/name:v-xxxxxx",push=true',
            "--import-cache", "type=registry,ref=pkg.dev/cacheRegistry/namespace/name:_buildcache",
            "--export-cache", "type=registry,ref=pkg.dev/cacheRegistry/namespace/name:_buildcache,mode=max"]),
    vector(BUILDKIT, F + "returns correct flags for complex cache registry use case", "gcr.io/someBigTeamDeploymentRegistry",
           COMPLEX,
           ["--output", 'type=image,"name=gcr.io/someBigTeamDeploymentRegistry/namespace/name:v-xxxxxx",push=true',
            "--import-cache", "type=registry,ref=pkg.dev/someBigTeamCacheRegistry/namespace/name:_buildcache-featureBranch",
            "--export-cache",
            "type=registry,ref=pkg.dev/someBigTeamCacheRegistry/namespace/name:_buildcache-featureBranch,mode=max",
            "--import-cache", "type=registry,ref=pkg.dev/someBigTeamCacheRegistry/namespace/name:_buildcache-main"]),
])
def test_buildkit_image_flags(tmp_path: Path, registry: str, cache: list[dict[str, Any]], expected: list[str]) -> None:
    assert flags(tmp_path, registry, cache) == expected


@pytest.mark.parametrize("provider,message", [
    vector(K8S_CONFIG, "configSchema: context: k8sContextSchema().required()", {"name": "kubernetes"},
           "context is required"),
])
def test_kubernetes_provider_needs_a_context(tmp_path: Path, provider: dict[str, Any], message: str) -> None:
    (tmp_path / "project.garden.yml").write_text(json.dumps(
        {"apiVersion": "garden.io/v1", "kind": "Project", "name": "p", "environments": [{"name": "dev"}],
         "providers": [provider]}))
    with pytest.raises(ConfigError, match=message) as err:
        load_project(tmp_path, git=INFO)
    assert err.value.field == "providers[0].context"
