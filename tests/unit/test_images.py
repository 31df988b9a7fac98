from __future__ import annotations

from pathlib import Path

import pytest

from farm.garden.models import BuildAction, KubernetesProvider
from farm.images import build_args, cache_refs, image_outputs, parse_image_id, resolve_cache_mode


def build(name: str = "api", **spec: object) -> BuildAction:
    return BuildAction.model_validate({"name": name, "configFile": Path("/p/garden.yml"),
                                       "sourceDir": Path("/p"), "spec": spec})


def provider(**registry: object) -> KubernetesProvider:
    return KubernetesProvider.model_validate({"context": "c", **({"deploymentRegistry": registry} if registry else {})})


def test_spec_example() -> None:
    out = image_outputs(build(), provider(hostname="my-registry.com", namespace="proj"), "v-0123456789")
    assert out.deployment_image_id == "my-registry.com/proj/api:v-0123456789"
    assert out.local_image_id == "api:v-0123456789"
    assert out.deployment_image_tag == "v-0123456789"


def test_no_registry_deployment_is_local() -> None:
    for prov in (None, provider()):
        out = image_outputs(build(), prov, "v-1")
        assert out.deployment_image_name == out.local_image_name == "api"


def test_namespace_less_and_port() -> None:
    out = image_outputs(build(), provider(hostname="reg.local", port=5000), "v-1")
    assert out.deployment_image_id == "reg.local:5000/api:v-1"
    out = image_outputs(build(), provider(hostname="reg.local", namespace=""), "v-1")
    assert out.deployment_image_name == "reg.local/api"


def test_local_id_rules() -> None:
    b = build(localId="ghcr.io/org/thing:latest")
    out = image_outputs(b, provider(hostname="gcr.io/deploymentRegistry", namespace="ns"), "v-2")
    assert out.local_image_name == "ghcr.io/org/thing"
    assert out.local_image_id == "ghcr.io/org/thing:v-2"
    assert out.deployment_image_name == "gcr.io/deploymentRegistry/ns/thing"


@pytest.mark.parametrize("image,parts", [
    ("busybox", (None, None, "busybox", "latest")),
    ("org/app:1.0", (None, "org", "app", "1.0")),
    ("localhost:5000/org/app", ("localhost:5000", "org", "app", "latest")),
    ("h.io/a/b/c:t", ("h.io", "a/b", "c", "t")),
])
def test_parse_image_id(image: str, parts: tuple[object, ...]) -> None:
    p = parse_image_id(image)
    assert (p.host, p.namespace, p.repository, p.tag) == parts


def test_build_args() -> None:
    b = build(buildArgs={"GARDEN_ACTION_VERSION": "mine", "EMPTY": "", "FROM_ENV": None, "ZERO": 0,
                         "FLAG": True})
    assert build_args(b, "v-9") == {"GARDEN_MODULE_VERSION": "v-9", "GARDEN_ACTION_VERSION": "mine",
                                    "FROM_ENV": None, "ZERO": "0", "FLAG": "true"}


def buildkit(cache: list[dict[str, object]] | None = None, **registry: object) -> KubernetesProvider:
    cfg: dict[str, object] = {"context": "c", "buildMode": "cluster-buildkit", "deploymentRegistry": registry}
    if cache is not None:
        cfg["clusterBuildkit"] = {"cache": cache}
    return KubernetesProvider.model_validate(cfg)


@pytest.mark.parametrize("host,mode,manifest", [
    ("gcr.io", "inline", False),
    ("ghcr.io", "max", False),
    ("123.dkr.ecr.eu-west-1.amazonaws.com", "max", True),
    ("europe-docker.pkg.dev", "max", False),
    ("x.azurecr.io", "max", False),
    ("hub.docker.com", "max", False),
    ("docker.io", "inline", False),
    ("127.0.0.1:5000", "inline", False),
])
def test_default_cache_mode_by_registry(host: str, mode: str, manifest: bool) -> None:
    [ref] = cache_refs(build(), buildkit(hostname=host, namespace="namespace"))
    assert ref.ref == f"{host}/namespace/api:_buildcache"
    assert (ref.mode, ref.export, ref.image_manifest) == (mode, True, manifest)


@pytest.mark.parametrize("image, mode", [
    ("0123.dkr.ecr.us-east-1.amazonaws.com/ns/a", "max"),
    ("dkr.ecr.us-east-1.amazonaws.com/ns/a", "max"),
    ("a.b.dkr.ecr.us-east-1.amazonaws.com/ns/a", "inline"),  # Garden's regex: one label before dkr
    ("1.dkr.ecr.cn-north-1.amazonaws.com.cn/a", "inline"),
    ("europe-west3-docker.pkg.dev/proj/repo/a", "max"),
    ("pkg.dev/proj/a", "max"),
    ("myreg.azurecr.io/a", "max"),
    ("hub.docker.com/org/a", "max"),
    ("index.docker.io/org/a", "max"),
    ("GHCR.IO/org/a", "max"),
    ("docker.io/org/a", "inline"),
    ("gcr.io/proj/a", "inline"),
    ("127.0.0.1:5000/a", "inline"),
    ("harbor.example.com/proj/a", "inline"),
    ("example.com/ghcr.io/a", "inline"),
])
def test_auto_cache_mode(image: str, mode: str) -> None:
    assert resolve_cache_mode("auto", image) == mode


@pytest.mark.parametrize("mode", ["min", "max", "inline"])
def test_explicit_cache_mode_is_kept(mode: str) -> None:
    assert resolve_cache_mode(mode, "ghcr.io/a") == mode  # type: ignore[arg-type]


def test_cache_registry_keeps_full_local_name_and_insecure() -> None:
    b = build(localId="org/api")
    refs = cache_refs(b, buildkit([{"type": "registry", "registry": {"hostname": "ghcr.io", "namespace": "c",
                                                                     "insecure": True}},
                                   {"type": "registry", "tag": "_buildcache-main", "export": False, "mode": "min"},
                                   {"type": "registry", "registry": {"hostname": "cache.local"}}],
                                  hostname="ecr.example", namespace="n", insecure=False))
    assert [(r.ref, r.mode, r.export, r.insecure) for r in refs] == [
        ("ghcr.io/c/org/api:_buildcache", "max", True, True),
        ("ecr.example/n/api:_buildcache-main", "min", False, False),
        ("cache.local/org/api:_buildcache", "inline", True, False),  # no literal "undefined" segment
    ]


def test_no_cache_refs_outside_buildkit() -> None:
    assert cache_refs(build(), None) == []
    assert cache_refs(build(), provider(hostname="r")) == []
    assert cache_refs(build(), buildkit([], hostname="r")) == []


def test_garden_output_aliases() -> None:
    out = image_outputs(build(), None, "v-1").as_garden_outputs()
    assert out["deployment-image-id"] == out["deploymentImageId"] == "api:v-1"


def test_platform_tag() -> None:
    from farm.images import platform_tag

    assert platform_tag("v-0123456789", "linux/arm64") == "v-0123456789-linux-arm64"
    assert platform_tag("v-0123456789", "linux/arm/v7") == "v-0123456789-linux-arm-v7"
