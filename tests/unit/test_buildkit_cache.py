"""GARDEN-SPEC §6: cache image names, `auto` mode resolution and the flag algorithm."""

from __future__ import annotations

import pytest

from workers.builders.buildkit_cache import (
    DEFAULT_CACHE,
    CacheConfig,
    Registry,
    cache_image_name,
    image_flags,
    resolve_mode,
)


def flags(registry: str, caches=DEFAULT_CACHE, insecure: bool = False) -> list[str]:
    return image_flags(
        caches,
        deployment_image_id=f"{registry}/namespace/name:v-x",
        deployment_image_name=f"{registry}/namespace/name",
        local_image_name="name",
        deployment_insecure=insecure,
    )


# The worked examples of §6 (Garden's own unit tests).

def test_gcr_resolves_to_inline() -> None:
    assert flags("gcr.io") == [
        "--export-cache", "type=inline",
        "--output", 'type=image,"name=gcr.io/namespace/name:v-x,gcr.io/namespace/name:_buildcache",push=true',
        "--import-cache", "type=registry,ref=gcr.io/namespace/name:_buildcache",
    ]


def test_ghcr_resolves_to_max() -> None:
    assert flags("ghcr.io") == [
        "--output", 'type=image,"name=ghcr.io/namespace/name:v-x",push=true',
        "--import-cache", "type=registry,ref=ghcr.io/namespace/name:_buildcache",
        "--export-cache", "type=registry,ref=ghcr.io/namespace/name:_buildcache,mode=max",
    ]


def test_ecr_max_gets_image_manifest() -> None:
    r = "0123456789.dkr.ecr.eu-central-1.amazonaws.com"
    assert flags(r) == [
        "--output", f'type=image,"name={r}/namespace/name:v-x",push=true',
        "--import-cache", f"type=registry,ref={r}/namespace/name:_buildcache",
        "--export-cache", f"image-manifest=true,type=registry,ref={r}/namespace/name:_buildcache,mode=max",
    ]


@pytest.mark.parametrize("image, mode", [
    ("0123.dkr.ecr.us-east-1.amazonaws.com/ns/a", "max"),
    ("dkr.ecr.us-east-1.amazonaws.com/ns/a", "max"),
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
def test_auto_mode(image: str, mode: str) -> None:
    assert resolve_mode("auto", image) == mode


@pytest.mark.parametrize("mode", ["min", "max", "inline"])
def test_explicit_mode_is_kept(mode: str) -> None:
    assert resolve_mode(mode, "gcr.io/a") == mode  # type: ignore[arg-type]


def test_explicit_min_on_ecr_has_no_image_manifest() -> None:
    r = "1.dkr.ecr.eu-west-1.amazonaws.com"
    out = flags(r, (CacheConfig(mode="min"),))
    assert out[-1] == f"type=registry,ref={r}/namespace/name:_buildcache,mode=min"


def test_cache_off() -> None:
    assert flags("ghcr.io", ()) == ["--output", 'type=image,"name=ghcr.io/namespace/name:v-x",push=true']
    assert flags("gcr.io", ()) == ["--output", 'type=image,"name=gcr.io/namespace/name:v-x",push=true']


# The documented branch pattern: branch tag (import + export), then main (import only).

BRANCH = (CacheConfig(tag="_buildcache-feature-x"), CacheConfig(tag="_buildcache-main", export=False))


def test_branch_pattern_max() -> None:
    assert flags("ghcr.io", BRANCH) == [
        "--output", 'type=image,"name=ghcr.io/namespace/name:v-x",push=true',
        "--import-cache", "type=registry,ref=ghcr.io/namespace/name:_buildcache-feature-x",
        "--export-cache", "type=registry,ref=ghcr.io/namespace/name:_buildcache-feature-x,mode=max",
        "--import-cache", "type=registry,ref=ghcr.io/namespace/name:_buildcache-main",
    ]


def test_branch_pattern_inline_never_pushes_the_import_only_tag() -> None:
    # Garden QUIRK fixed: Garden also adds `:_buildcache-main` to the --output names here.
    assert flags("gcr.io", BRANCH) == [
        "--export-cache", "type=inline",
        "--output",
        'type=image,"name=gcr.io/namespace/name:v-x,gcr.io/namespace/name:_buildcache-feature-x",push=true',
        "--import-cache", "type=registry,ref=gcr.io/namespace/name:_buildcache-feature-x",
        "--import-cache", "type=registry,ref=gcr.io/namespace/name:_buildcache-main",
    ]


def test_inline_import_only_alone_has_no_inline_export() -> None:
    assert flags("gcr.io", (CacheConfig(export=False),)) == [
        "--output", 'type=image,"name=gcr.io/namespace/name:v-x",push=true',
        "--import-cache", "type=registry,ref=gcr.io/namespace/name:_buildcache",
    ]


def test_insecure_deployment_registry() -> None:
    assert flags("10.0.0.1:5000", insecure=True) == [
        "--export-cache", "type=inline",
        "--output",
        'type=image,"name=10.0.0.1:5000/namespace/name:v-x,10.0.0.1:5000/namespace/name:_buildcache",'
        "push=true,registry.insecure=true",
        "--import-cache", "type=registry,ref=10.0.0.1:5000/namespace/name:_buildcache,registry.insecure=true",
    ]


def test_insecure_max_export() -> None:
    out = flags("ghcr.io", (CacheConfig(mode="max"),), insecure=True)
    assert out[-1] == "type=registry,ref=ghcr.io/namespace/name:_buildcache,mode=max,registry.insecure=true"


def test_separate_cache_registry() -> None:
    # images in ECR, cache in GHCR with mode=max (garden#3110); the cache keeps the full local name
    ecr = "1.dkr.ecr.eu-west-1.amazonaws.com"
    caches = (CacheConfig(registry=Registry(hostname="ghcr.io", namespace="org")),)
    out = image_flags(
        caches,
        deployment_image_id=f"{ecr}/team/api:v-x",
        deployment_image_name=f"{ecr}/team/api",
        local_image_name="acme/api",
        deployment_insecure=True,
    )
    assert out == [
        "--output", f'type=image,"name={ecr}/team/api:v-x",push=true,registry.insecure=true',
        "--import-cache", "type=registry,ref=ghcr.io/org/acme/api:_buildcache",
        "--export-cache", "type=registry,ref=ghcr.io/org/acme/api:_buildcache,mode=max",
    ]


def test_separate_insecure_cache_registry_with_port() -> None:
    caches = (CacheConfig(registry=Registry(hostname="cache.local", port=5000, namespace="c", insecure=True),
                          mode="max"),)
    out = flags("ghcr.io", caches)
    assert out[-4:] == [
        "--import-cache", "type=registry,ref=cache.local:5000/c/name:_buildcache,registry.insecure=true",
        "--export-cache",
        "type=registry,ref=cache.local:5000/c/name:_buildcache,mode=max,registry.insecure=true",
    ]


def test_separate_inline_cache_registry_is_an_extra_output_name() -> None:
    caches = (CacheConfig(registry=Registry(hostname="cache.local", namespace="c")),)
    out = flags("gcr.io", caches)
    assert out[:4] == [
        "--export-cache", "type=inline",
        "--output", 'type=image,"name=gcr.io/namespace/name:v-x,cache.local/c/name:_buildcache",push=true',
    ]


def test_cache_registry_without_namespace_has_no_undefined_segment() -> None:
    # Garden QUIRK fixed: Garden writes `cache.local/undefined/name`.
    assert cache_image_name(CacheConfig(registry=Registry(hostname="cache.local")), "x/y", "name") == (
        "cache.local/name")


def test_import_order_follows_config_order() -> None:
    caches = (CacheConfig(tag="a", mode="max"), CacheConfig(tag="b", mode="min"), CacheConfig(tag="c"))
    out = flags("ghcr.io", caches)
    refs = [out[i + 1] for i, f in enumerate(out) if f in ("--import-cache", "--export-cache")]
    assert [r.split(":")[-1] for r in refs] == [
        "a", "a,mode=max", "b", "b,mode=min", "c", "c,mode=max"]
