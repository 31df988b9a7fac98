"""farm/images.py pinned by literals (issue 19): every Garden output key (they feed
`${actions.build.<name>.outputs.*}`), localId with a digest, and how build-arg values are rendered.
Garden's own image-id vectors are in tests/conformance/test_images.py and are not repeated here."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import ConfigError
from farm.garden.models import BuildAction, KubernetesProvider
from farm.images import (
    CacheRef,
    ImageId,
    build_arg_flags,
    build_args,
    cache_image_name,
    cache_refs,
    deployment_image_name,
    image_outputs,
    local_image_name,
    parse_image_id,
    platform_tag,
    registry_image_name,
    resolve_cache_mode,
)


def build(name: str = "api", **spec: object) -> BuildAction:
    return BuildAction.model_validate({"name": name, "configFile": Path("/p/garden.yml"),
                                       "sourceDir": Path("/p"), "spec": spec})


def provider(mode: str = "kaniko", cache: list[dict[str, object]] | None = None,
             **registry: object) -> KubernetesProvider:
    cfg: dict[str, object] = {"context": "c", "buildMode": mode}
    if registry:
        cfg["deploymentRegistry"] = registry
    if cache is not None:
        cfg["clusterBuildkit"] = {"cache": cache}
    return KubernetesProvider.model_validate(cfg)


def test_every_garden_output_key() -> None:
    out = image_outputs(build(localId="ghcr.io/org/thing:1.0"),
                        provider(hostname="reg.example.com", port=5000, namespace="team"), "v-0123456789")
    assert out.as_garden_outputs() == {
        "localImageName": "ghcr.io/org/thing",
        "localImageId": "ghcr.io/org/thing:v-0123456789",
        "deploymentImageName": "reg.example.com:5000/team/thing",
        "deploymentImageId": "reg.example.com:5000/team/thing:v-0123456789",
        "deploymentImageTag": "v-0123456789",
        "local-image-name": "ghcr.io/org/thing",
        "local-image-id": "ghcr.io/org/thing:v-0123456789",
        "deployment-image-name": "reg.example.com:5000/team/thing",
        "deployment-image-id": "reg.example.com:5000/team/thing:v-0123456789",
        "deployment-image-tag": "v-0123456789",
    }
    assert list(out.as_garden_outputs())[:5] == ["localImageName", "localImageId", "deploymentImageName",
                                                 "deploymentImageId", "deploymentImageTag"]


@pytest.mark.parametrize("local_id,name", [
    ("repo@sha256:" + "ab" * 32, "repo"),
    ("org/repo:1.2@sha256:" + "cd" * 32, "org/repo"),
    ("host:5000/org/repo@sha256:" + "ef" * 32, "host:5000/org/repo"),
    ("host:5000/org/repo", "host:5000/org/repo"),
    ("a/b/c/d:tag", "a/b/c/d"),
    ("thing:", "thing"),
])
def test_local_id_loses_its_tag_and_digest(local_id: str, name: str) -> None:
    out = image_outputs(build(localId=local_id), None, "v-1")
    assert (out.local_image_name, out.local_image_id) == (name, f"{name}:v-1")
    assert (out.deployment_image_name, out.deployment_image_id) == (name, f"{name}:v-1")


@pytest.mark.parametrize("image_id,parsed", [
    ("repo@sha256:" + "ab" * 32, ImageId(None, None, "repo", "latest")),
    ("org/repo:1.2@sha256:" + "cd" * 32, ImageId(None, "org", "repo", "1.2")),
    ("thing:", ImageId(None, None, "thing", "latest")),
    (":x", ImageId(None, None, "x", "latest")),
    ("host:5000/a", ImageId(None, "host:5000", "a", "latest")),
    ("a/b/c/d/e:t", ImageId("a", "b/c/d", "e", "t")),
])
def test_parse_image_id_edges(image_id: str, parsed: ImageId) -> None:
    assert parse_image_id(image_id) == parsed


@pytest.mark.parametrize("image_id", ["", "@sha256:" + "ab" * 32])
def test_empty_names_are_refused(image_id: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_image_id(image_id)
    assert str(exc.value) == f"Invalid container image tag: {image_id}"


def test_deployment_name_keeps_the_last_segment_only() -> None:
    p = provider(hostname="reg", namespace="ns")
    assert deployment_image_name(build(localId="a/b/c/thing:1"), p) == "reg/ns/thing"
    assert deployment_image_name(build(localId="thing"), p) == "reg/ns/thing"
    assert deployment_image_name(build(), p) == "reg/ns/api"
    assert deployment_image_name(build(), provider(hostname="reg")) == "reg/api"
    assert deployment_image_name(build(localId="a/b/c/thing:1"), None) == "a/b/c/thing"
    assert local_image_name(build(localId="")) == "api"


def test_registry_image_name() -> None:
    p = provider(hostname="h", port=443, namespace="a/b")
    assert p.deployment_registry is not None
    assert registry_image_name(p.deployment_registry, "x/y") == "h:443/a/b/x/y"


# --- build args ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,rendered", [
    (True, "true"), (False, "false"),
    (1.0, "1"), (-2.0, "-2"), (0.0, "0"), (1.5, "1.5"), (-0.25, "-0.25"), (1e20, "100000000000000000000"),
    (0, "0"), (7, "7"), ("x y", "x y"), (" ", " "), ("0", "0"), ("false", "false"),
])
def test_build_arg_values(value: object, rendered: str) -> None:
    assert build_args(build(buildArgs={"K": value}), "v-9")["K"] == rendered


def test_build_args_order_defaults_and_overrides() -> None:
    args = build_args(build(buildArgs={"Z": "z", "GARDEN_MODULE_VERSION": "mine", "E": "", "N": None}), "v-9")
    assert list(args.items()) == [("GARDEN_MODULE_VERSION", "mine"), ("GARDEN_ACTION_VERSION", "v-9"),
                                  ("Z", "z"), ("N", None)]
    assert build_args(build(), "v-1") == {"GARDEN_MODULE_VERSION": "v-1", "GARDEN_ACTION_VERSION": "v-1"}
    assert "GARDEN_ACTION_VERSION" not in build_args(build(buildArgs={"GARDEN_ACTION_VERSION": ""}), "v-1")


def test_build_arg_flags() -> None:
    assert build_arg_flags({"A": "1", "B": None, "C": "", "D": "x=y"}) == ["A=1", "B", "C=", "D=x=y"]
    assert build_arg_flags({}) == []


@pytest.mark.parametrize("platform,tag", [
    ("linux/amd64", "v-0123456789-linux-amd64"),
    (" Linux/ARM64 ", "v-0123456789-linux-arm64"),
    ("linux/arm/v7", "v-0123456789-linux-arm-v7"),
])
def test_platform_tags(platform: str, tag: str) -> None:
    assert platform_tag("v-0123456789", platform) == tag


# --- cache refs ------------------------------------------------------------------------------------------

def test_cache_refs_every_field() -> None:
    p = provider("cluster-buildkit", [
        {"type": "registry", "mode": "max"},
        {"type": "registry", "mode": "auto", "tag": "t2", "export": False},
        {"type": "registry", "registry": {"hostname": "1.dkr.ecr.eu-west-1.amazonaws.com", "insecure": False}},
        {"type": "registry", "registry": {"hostname": "cache.local", "namespace": "c", "insecure": True},
         "mode": "min"},
    ], hostname="1.dkr.ecr.eu-west-1.amazonaws.com", namespace="team", insecure=True)
    assert cache_refs(build(localId="org/api:9"), p) == [
        CacheRef("1.dkr.ecr.eu-west-1.amazonaws.com/team/api:_buildcache", "max", True, True, True),
        CacheRef("1.dkr.ecr.eu-west-1.amazonaws.com/team/api:t2", "max", False, True, True),
        CacheRef("1.dkr.ecr.eu-west-1.amazonaws.com/org/api:_buildcache", "max", True, False, True),
        CacheRef("cache.local/c/org/api:_buildcache", "min", True, True, False),
    ]


def test_cache_refs_without_a_deployment_registry() -> None:
    assert cache_refs(build(), provider("cluster-buildkit", [{"type": "registry"}])) == [
        CacheRef("api:_buildcache", "inline", True, False, False)]
    p = provider("cluster-buildkit", [{"type": "registry", "mode": "max"}], hostname="ghcr.io", namespace="o")
    assert cache_refs(build(), p) == [CacheRef("ghcr.io/o/api:_buildcache", "max", True, False, False)]


def test_cache_image_name() -> None:
    p = provider("cluster-buildkit", hostname="reg", namespace="ns")
    [own, other] = [c for c in provider("cluster-buildkit", [
        {"type": "registry"}, {"type": "registry", "registry": {"hostname": "x"}}]).cluster_buildkit.cache]
    assert cache_image_name(build(localId="o/a"), p, own) == "reg/ns/a"
    assert cache_image_name(build(localId="o/a"), p, other) == "x/o/a"


@pytest.mark.parametrize("image,mode", [
    ("xdkr.ecr.r.amazonaws.com/a", "inline"),
    ("1.dkr.ecr.r.amazonaws.com", "inline"),      # needs the slash after the host
    ("1.dkr.ecr.r.amazonaws.com/a", "max"),
    ("eu.pkg.dev/a", "max"), ("xpkg.dev/a", "inline"),
    ("azurecr.io/a", "max"), ("x.azurecr.io/a", "max"), ("xazurecr.io/a", "inline"),
    ("ghcr.io/a", "max"), ("x.ghcr.io/a", "inline"), ("ghcr.io", "inline"),
    ("hub.docker.com/a", "max"), ("index.docker.io/a", "max"), ("docker.io/a", "inline"),
    ("Hub.Docker.Com/a", "max"), ("EU.PKG.DEV/a", "max"), ("X.AZURECR.IO/a", "max"),
    ("1.DKR.ECR.R.AMAZONAWS.COM/a", "max"),
])
def test_auto_mode_edges(image: str, mode: str) -> None:
    assert resolve_cache_mode("auto", image) == mode


def test_everything_after_the_first_at_sign_is_dropped() -> None:
    assert parse_image_id("org/repo@sha256:ab@cd") == ImageId(None, "org", "repo", "latest")
