"""GARDEN-SPEC §6: the cache and output flags, from CacheRefs resolved by the producer.

Each case writes a small Garden project, loads it with `farm.garden.load_project` and resolves its
caches with `farm.images.cache_refs` (naming and `auto` mode: tests/unit/test_images.py), so the
flags are checked from the YAML a user writes to the argv the worker runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from farm.garden import GitInfo, load_project
from farm.images import CacheRef, cache_refs, image_outputs
from tests.unit.garden.helpers import write
from workers.builders.buildkit_cache import image_flags

GIT = GitInfo(branch="feature/X", commit_hash="0" * 40)
ECR = "0123456789.dkr.ecr.eu-central-1.amazonaws.com"

# The documented branch pattern: branch tag (import + export), then main (import only).
BRANCH: list[dict[str, object]] = [
    {"type": "registry", "tag": '_buildcache-${slice(kebabCase(git.branch), "0", "30")}'},
    {"type": "registry", "tag": "_buildcache-main", "export": False},
]


def flags(tmp_path: Path, hostname: str, cache: Sequence[Mapping[str, object]] | None = None, *,
          port: int | None = None, namespace: str = "namespace", insecure: bool = False,
          local_id: str | None = None) -> list[str]:
    """The flags of Build `name` (version `v-x`) in a cluster-buildkit project with this registry."""
    registry: dict[str, object] = {"hostname": hostname, "namespace": namespace, "insecure": insecure}
    if port is not None:
        registry["port"] = port
    provider: dict[str, object] = {"name": "kubernetes", "context": "c", "buildMode": "cluster-buildkit",
                                   "deploymentRegistry": registry}
    if cache is not None:
        provider["clusterBuildkit"] = {"cache": list(cache)}
    spec = {"localId": local_id} if local_id else {}
    # JSON is YAML, and keeps Garden's template strings unescaped.
    write(tmp_path, {
        "project.garden.yml": json.dumps({"apiVersion": "garden.io/v1", "kind": "Project", "name": "p",
                                          "environments": [{"name": "dev"}], "providers": [provider]}),
        "name/garden.yml": json.dumps({"kind": "Build", "type": "container", "name": "name", "spec": spec}),
    })
    project = load_project(tmp_path, git=GIT)
    build = project.builds["name"]
    image_id = image_outputs(build, project.provider, "v-x").deployment_image_id
    return image_flags(cache_refs(build, project.provider), deployment_image_id=image_id,
                       deployment_insecure=insecure)


# The worked examples of §6 (Garden's own unit tests), default cache.

def test_gcr_resolves_to_inline(tmp_path: Path) -> None:
    assert flags(tmp_path, "gcr.io") == [
        "--export-cache", "type=inline",
        "--output", 'type=image,"name=gcr.io/namespace/name:v-x,gcr.io/namespace/name:_buildcache",push=true',
        "--import-cache", "type=registry,ref=gcr.io/namespace/name:_buildcache",
    ]


def test_ghcr_resolves_to_max(tmp_path: Path) -> None:
    assert flags(tmp_path, "ghcr.io") == [
        "--output", 'type=image,"name=ghcr.io/namespace/name:v-x",push=true',
        "--import-cache", "type=registry,ref=ghcr.io/namespace/name:_buildcache",
        "--export-cache", "type=registry,ref=ghcr.io/namespace/name:_buildcache,mode=max",
    ]


def test_ecr_max_gets_image_manifest(tmp_path: Path) -> None:
    assert flags(tmp_path, ECR) == [
        "--output", f'type=image,"name={ECR}/namespace/name:v-x",push=true',
        "--import-cache", f"type=registry,ref={ECR}/namespace/name:_buildcache",
        "--export-cache", f"image-manifest=true,type=registry,ref={ECR}/namespace/name:_buildcache,mode=max",
    ]


def test_explicit_min_on_ecr_has_no_image_manifest(tmp_path: Path) -> None:
    out = flags(tmp_path, ECR, [{"type": "registry", "mode": "min"}])
    assert out[-1] == f"type=registry,ref={ECR}/namespace/name:_buildcache,mode=min"


def test_explicit_inline_on_ghcr(tmp_path: Path) -> None:
    out = flags(tmp_path, "ghcr.io", [{"type": "registry", "mode": "inline"}])
    assert out[:2] == ["--export-cache", "type=inline"]
    assert "mode=" not in " ".join(out)


def test_cache_off(tmp_path: Path) -> None:
    assert flags(tmp_path / "a", "ghcr.io", []) == [
        "--output", 'type=image,"name=ghcr.io/namespace/name:v-x",push=true']
    assert flags(tmp_path / "b", "gcr.io", []) == [
        "--output", 'type=image,"name=gcr.io/namespace/name:v-x",push=true']


def test_branch_pattern_max(tmp_path: Path) -> None:
    assert flags(tmp_path, "ghcr.io", BRANCH) == [
        "--output", 'type=image,"name=ghcr.io/namespace/name:v-x",push=true',
        "--import-cache", "type=registry,ref=ghcr.io/namespace/name:_buildcache-feature-x",
        "--export-cache", "type=registry,ref=ghcr.io/namespace/name:_buildcache-feature-x,mode=max",
        "--import-cache", "type=registry,ref=ghcr.io/namespace/name:_buildcache-main",
    ]


def test_branch_pattern_inline_never_pushes_the_import_only_tag(tmp_path: Path) -> None:
    # Garden QUIRK fixed: Garden also adds `:_buildcache-main` to the --output names here.
    assert flags(tmp_path, "gcr.io", BRANCH) == [
        "--export-cache", "type=inline",
        "--output",
        'type=image,"name=gcr.io/namespace/name:v-x,gcr.io/namespace/name:_buildcache-feature-x",push=true',
        "--import-cache", "type=registry,ref=gcr.io/namespace/name:_buildcache-feature-x",
        "--import-cache", "type=registry,ref=gcr.io/namespace/name:_buildcache-main",
    ]


def test_inline_import_only_alone_has_no_inline_export(tmp_path: Path) -> None:
    assert flags(tmp_path, "gcr.io", [{"type": "registry", "export": False}]) == [
        "--output", 'type=image,"name=gcr.io/namespace/name:v-x",push=true',
        "--import-cache", "type=registry,ref=gcr.io/namespace/name:_buildcache",
    ]


def test_insecure_deployment_registry(tmp_path: Path) -> None:
    assert flags(tmp_path, "10.0.0.1", port=5000, insecure=True) == [
        "--export-cache", "type=inline",
        "--output",
        'type=image,"name=10.0.0.1:5000/namespace/name:v-x,10.0.0.1:5000/namespace/name:_buildcache",'
        "push=true,registry.insecure=true",
        "--import-cache", "type=registry,ref=10.0.0.1:5000/namespace/name:_buildcache,registry.insecure=true",
    ]


def test_insecure_max_export(tmp_path: Path) -> None:
    out = flags(tmp_path, "ghcr.io", [{"type": "registry", "mode": "max"}], insecure=True)
    assert out[-1] == "type=registry,ref=ghcr.io/namespace/name:_buildcache,mode=max,registry.insecure=true"


def test_separate_cache_registry(tmp_path: Path) -> None:
    # images in ECR, cache in GHCR with mode=max (garden#3110); the cache keeps the full local name
    ecr = "1.dkr.ecr.eu-west-1.amazonaws.com"
    cache = [{"type": "registry", "registry": {"hostname": "ghcr.io", "namespace": "org"}}]
    out = flags(tmp_path, ecr, cache, namespace="team", insecure=True, local_id="acme/name")
    assert out == [
        "--output", f'type=image,"name={ecr}/team/name:v-x",push=true,registry.insecure=true',
        "--import-cache", "type=registry,ref=ghcr.io/org/acme/name:_buildcache",
        "--export-cache", "type=registry,ref=ghcr.io/org/acme/name:_buildcache,mode=max",
    ]


def test_separate_insecure_cache_registry_with_port(tmp_path: Path) -> None:
    cache = [{"type": "registry", "mode": "max",
              "registry": {"hostname": "cache.local", "port": 5000, "namespace": "c", "insecure": True}}]
    assert flags(tmp_path, "ghcr.io", cache)[-4:] == [
        "--import-cache", "type=registry,ref=cache.local:5000/c/name:_buildcache,registry.insecure=true",
        "--export-cache",
        "type=registry,ref=cache.local:5000/c/name:_buildcache,mode=max,registry.insecure=true",
    ]


def test_separate_inline_cache_registry_is_an_extra_output_name(tmp_path: Path) -> None:
    cache = [{"type": "registry", "registry": {"hostname": "cache.local", "namespace": "c"}}]
    assert flags(tmp_path, "gcr.io", cache)[:4] == [
        "--export-cache", "type=inline",
        "--output", 'type=image,"name=gcr.io/namespace/name:v-x,cache.local/c/name:_buildcache",push=true',
    ]


def test_cache_registry_without_namespace_has_no_undefined_segment(tmp_path: Path) -> None:
    # Garden QUIRK fixed: Garden writes `cache.local/undefined/name`.
    out = flags(tmp_path, "gcr.io", [{"type": "registry", "registry": {"hostname": "cache.local"}}])
    assert out[-2:] == ["--import-cache", "type=registry,ref=cache.local/name:_buildcache"]


def test_import_order_follows_config_order(tmp_path: Path) -> None:
    cache = [{"type": "registry", "tag": "a", "mode": "max"}, {"type": "registry", "tag": "b", "mode": "min"},
             {"type": "registry", "tag": "c"}]
    out = flags(tmp_path, "ghcr.io", cache)
    refs = [out[i + 1] for i, f in enumerate(out) if f in ("--import-cache", "--export-cache")]
    assert [r.split(":")[-1] for r in refs] == [
        "a", "a,mode=max", "b", "b,mode=min", "c", "c,mode=max"]


# CacheRef fields the config cannot produce on its own.

def test_flags_follow_the_cache_ref_fields() -> None:
    refs = [CacheRef(ref="r/a:one", mode="max", export=True, insecure=True, image_manifest=True),
            CacheRef(ref="r/a:two", mode="inline", export=True, insecure=False, image_manifest=False),
            CacheRef(ref="r/a:two", mode="inline", export=True, insecure=False, image_manifest=False)]
    assert image_flags(refs, deployment_image_id="r/a:v-1") == [
        "--export-cache", "type=inline",
        "--output", 'type=image,"name=r/a:v-1,r/a:two",push=true',     # a repeated name is pushed once
        "--import-cache", "type=registry,ref=r/a:one,registry.insecure=true",
        "--export-cache", "image-manifest=true,type=registry,ref=r/a:one,mode=max,registry.insecure=true",
        "--import-cache", "type=registry,ref=r/a:two",
        "--import-cache", "type=registry,ref=r/a:two",
    ]
