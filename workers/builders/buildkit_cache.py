"""BuildKit cache and output flags: GARDEN-SPEC §6 as a pure function.

`image_flags()` turns the provider's `clusterBuildkit.cache` list into the `--export-cache`,
`--output` and `--import-cache` flags of one buildctl invocation, in Garden's order.

Two Garden quirks are fixed here (the names and refs stay Garden's):
- an `export: false` cache is never pushed, also when its registry resolves to `inline`
  (Garden adds every inline cache to the `--output` names, so the import-only main tag got overwritten);
- a separate cache registry without a namespace gives `<host>/<local image name>`, not a literal
  `undefined` path segment.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

CacheMode = Literal["auto", "min", "max", "inline"]

DEFAULT_CACHE_TAG = "_buildcache"

# Garden's `buildkit.ts` AWS_ECR_REGEX and MODE_MAX_ALLOWED_REGISTRIES, matched against the cache image name.
AWS_ECR = re.compile(r"^([^.]+\.)?dkr\.ecr\.([^.]+\.)amazonaws\.com/", re.IGNORECASE)
MODE_MAX_REGISTRIES = (
    AWS_ECR,
    re.compile(r"^([^/]+\.)?pkg\.dev/", re.IGNORECASE),        # Google Artifact Registry
    re.compile(r"^([^/]+\.)?azurecr\.io/", re.IGNORECASE),     # Azure Container Registry
    re.compile(r"^(hub\.docker\.com|index\.docker\.io)/", re.IGNORECASE),  # Docker Hub
    re.compile(r"^ghcr\.io/", re.IGNORECASE),                  # GitHub Container Registry
)


@dataclass(frozen=True)
class Registry:
    """A registry as Garden configures one: `hostname[:port]/namespace`."""

    hostname: str
    port: int | None = None
    namespace: str | None = None
    insecure: bool = False

    @property
    def host(self) -> str:
        return f"{self.hostname}:{self.port}" if self.port else self.hostname


@dataclass(frozen=True)
class CacheConfig:
    """One `clusterBuildkit.cache[]` entry."""

    type: Literal["registry"] = "registry"
    registry: Registry | None = None
    mode: CacheMode = "auto"
    tag: str = DEFAULT_CACHE_TAG
    export: bool = True


DEFAULT_CACHE: tuple[CacheConfig, ...] = (CacheConfig(),)


def cache_image_name(cache: CacheConfig, deployment_image_name: str, local_image_name: str) -> str:
    """The repository a cache lives in: the deployment image name, or `<host>/<ns>/<local name>`."""
    if cache.registry is None:
        return deployment_image_name
    parts = [cache.registry.host]
    if cache.registry.namespace:
        parts.append(cache.registry.namespace)
    parts.append(local_image_name)
    return "/".join(parts)


def resolve_mode(mode: CacheMode, image_name: str) -> Literal["min", "max", "inline"]:
    """`auto` is `max` on registries known to store cache manifests, `inline` everywhere else."""
    if mode != "auto":
        return mode
    if any(pattern.match(image_name) for pattern in MODE_MAX_REGISTRIES):
        return "max"
    return "inline"


def image_flags(
    caches: Sequence[CacheConfig],
    *,
    deployment_image_id: str,
    deployment_image_name: str,
    local_image_name: str,
    deployment_insecure: bool = False,
) -> list[str]:
    """The cache and output flags of §6, in order: inline export, `--output`, import/export pairs."""
    insecure_suffix = ",registry.insecure=true" if deployment_insecure else ""
    resolved = [
        (cache, name, resolve_mode(cache.mode, name))
        for cache in caches
        for name in [cache_image_name(cache, deployment_image_name, local_image_name)]
    ]

    args: list[str] = []
    names = [deployment_image_id]
    inline_refs = [f"{name}:{cache.tag}"
                   for cache, name, mode in resolved if mode == "inline" and cache.export]
    if inline_refs:
        args += ["--export-cache", "type=inline"]
        for ref in inline_refs:
            if ref not in names:
                names.append(ref)
    # The quotes are literal: BuildKit reads the value as CSV and the name list holds commas.
    args += ["--output", f'type=image,"name={",".join(names)}",push=true{insecure_suffix}']

    for cache, name, mode in resolved:
        ref = f"{name}:{cache.tag}"
        if cache.registry is None:
            suffix = insecure_suffix
        else:
            suffix = ",registry.insecure=true" if cache.registry.insecure else ""
        # Import order matters: BuildKit uses the first cache with a hit for all following layers.
        args += ["--import-cache", f"type=registry,ref={ref}{suffix}"]
        if not cache.export or mode == "inline":
            continue
        manifest = "image-manifest=true," if mode == "max" and AWS_ECR.match(name) else ""
        args += ["--export-cache", f"{manifest}type=registry,ref={ref},mode={mode}{suffix}"]
    return args
