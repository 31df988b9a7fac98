"""How images are named (GARDEN-SPEC §2.1), which build args a build gets (§4.4) and which registry
caches it imports and exports (§6: cache image names and `auto` mode resolution). Pure functions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from farm.errors import ConfigError
from farm.garden.models import BuildAction, CacheConfig, KubernetesProvider, RegistryConfig


@dataclass(frozen=True)
class ImageOutputs:
    local_image_name: str
    local_image_id: str
    deployment_image_name: str
    deployment_image_id: str
    deployment_image_tag: str

    def as_garden_outputs(self) -> dict[str, str]:
        """Garden's output keys, camelCase plus the kebab-case aliases it keeps."""
        camel = {"localImageName": self.local_image_name, "localImageId": self.local_image_id,
                 "deploymentImageName": self.deployment_image_name,
                 "deploymentImageId": self.deployment_image_id,
                 "deploymentImageTag": self.deployment_image_tag}
        kebab = {"local-image-name": self.local_image_name, "local-image-id": self.local_image_id,
                 "deployment-image-name": self.deployment_image_name,
                 "deployment-image-id": self.deployment_image_id,
                 "deployment-image-tag": self.deployment_image_tag}
        return {**camel, **kebab}


@dataclass(frozen=True)
class ImageId:
    host: str | None
    namespace: str | None
    repository: str
    tag: str

    def name(self) -> str:
        return "/".join(p for p in (self.host, self.namespace, self.repository) if p)


def parse_image_id(image_id: str) -> ImageId:
    """Garden's parsing: tag after the last ':', then 1/2/3/>3 path parts; an empty id is an error.

    Two Garden quirks fixed (tests/conformance/README.md): a ':' inside the host (`host:5000/ns/img`)
    is not a tag separator, and a `@sha256:...` digest is dropped rather than read as a tag.
    """
    name, tag = image_id, "latest"
    if "@" in name:
        name = name.split("@", 1)[0]
    head, sep, last = name.rpartition(":")
    if sep and "/" not in last:
        name, tag = head, last or "latest"
        if not name:  # Garden reads ":x" as the repository "x"
            name, tag = tag, "latest"
    if not name:
        raise ConfigError(f"Invalid container image tag: {image_id}")
    parts = name.split("/")
    if len(parts) == 1:
        return ImageId(None, None, parts[0], tag)
    if len(parts) == 2:
        return ImageId(None, parts[0], parts[1], tag)
    if len(parts) == 3:
        return ImageId(parts[0], parts[1], parts[2], tag)
    return ImageId(parts[0], "/".join(parts[1:-1]), parts[-1], tag)


def local_image_name(build: BuildAction) -> str:
    """`localId` without its tag (it is always replaced by the version), else the action name."""
    if build.spec.local_id:
        return parse_image_id(build.spec.local_id).name()
    return build.name


def registry_image_name(registry: RegistryConfig, repository: str) -> str:
    """`host[:port]/namespace/repository`, the namespace segment left out when unset."""
    return "/".join(p for p in (registry.host, registry.namespace, repository) if p)


def deployment_image_name(build: BuildAction, provider: KubernetesProvider | None) -> str:
    """The local image name without a deployment registry, else `<registry>/<last segment of it>`."""
    local_name = local_image_name(build)
    registry = provider.deployment_registry if provider is not None else None
    if registry is None:
        return local_name
    # Only the last path segment of localId is kept: its org/host belong to another registry.
    return registry_image_name(registry, local_name.rsplit("/", 1)[-1])


def image_outputs(build: BuildAction, provider: KubernetesProvider | None,
                  version_string: str) -> ImageOutputs:
    local_name = local_image_name(build)
    deployment_name = deployment_image_name(build, provider)
    return ImageOutputs(
        local_image_name=local_name,
        local_image_id=f"{local_name}:{version_string}",
        deployment_image_name=deployment_name,
        deployment_image_id=f"{deployment_name}:{version_string}",
        deployment_image_tag=version_string,
    )


def platform_tag(version: str, platform: str) -> str:
    """The tag a multi-platform Build's platform image is pushed under before the index takes the
    version tag: `v-0123456789` + `linux/arm/v7` -> `v-0123456789-linux-arm-v7`."""
    return f"{version}-{platform.strip().lower().replace('/', '-')}"


def build_args(build: BuildAction, version_string: str) -> dict[str, str | None]:
    """GARDEN_MODULE_VERSION / GARDEN_ACTION_VERSION then the user's args (which win).

    "" drops the arg; None (YAML null) passes the bare KEY so the builder reads it from its env.
    """
    merged: dict[str, object] = {"GARDEN_MODULE_VERSION": version_string,
                                 "GARDEN_ACTION_VERSION": version_string, **build.spec.build_args}
    out: dict[str, str | None] = {}
    for key, value in merged.items():
        if value == "" and isinstance(value, str):
            continue
        out[key] = None if value is None else _arg_string(value)
    return out


def _arg_string(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def build_arg_flags(args: Mapping[str, str | None]) -> list[str]:
    """`KEY=VALUE` (or bare `KEY`) strings in order, for any builder's build-arg flag."""
    return [key if value is None else f"{key}={value}" for key, value in args.items()]


# --- BuildKit registry cache refs (GARDEN-SPEC §6) ---------------------------------------------
# The naming and mode resolution live here, on the producer side; the worker turns the resolved
# CacheRefs into buildctl flags (workers/builders/buildkit_cache.py).

CacheMode = Literal["min", "max", "inline"]

# Garden's `buildkit.ts` AWS_ECR_REGEX and MODE_MAX_ALLOWED_REGISTRIES: `mode: auto` means max only
# for registries known to store cache manifests. Prefixes of the cache image name, case-insensitive.
AWS_ECR = re.compile(r"^([^.]+\.)?dkr\.ecr\.([^.]+\.)amazonaws\.com/", re.IGNORECASE)
MODE_MAX_REGISTRIES = (
    AWS_ECR,                                                        # also needs image-manifest=true
    re.compile(r"^([^/]+\.)?pkg\.dev/", re.IGNORECASE),              # Google Artifact Registry
    re.compile(r"^([^/]+\.)?azurecr\.io/", re.IGNORECASE),           # Azure ACR
    re.compile(r"^(hub\.docker\.com|index\.docker\.io)/", re.IGNORECASE),  # Docker Hub, not docker.io/
    re.compile(r"^ghcr\.io/", re.IGNORECASE),                        # GHCR
)


@dataclass(frozen=True)
class CacheRef:
    """One resolved `clusterBuildkit.cache[]` entry: what buildctl imports from and exports to."""

    ref: str              # <cache image name>:<tag>
    mode: CacheMode       # resolved, never auto
    export: bool
    insecure: bool        # the cache registry's, else the deployment registry's
    image_manifest: bool  # ECR with mode=max needs image-manifest=true


def cache_image_name(build: BuildAction, provider: KubernetesProvider, cache: CacheConfig) -> str:
    """Deployment image name, or `<registry>/<localImageName>` for a separate cache registry.

    A separate cache registry keeps the *full* local image name (unlike §2.1). Garden writes a
    literal "undefined" segment for a cache registry without namespace (QUIRK); we omit it.
    """
    if cache.registry is None:
        return deployment_image_name(build, provider)
    return registry_image_name(cache.registry, local_image_name(build))


def resolve_cache_mode(mode: CacheMode | Literal["auto"], image_name: str) -> CacheMode:
    """`auto` is `max` on registries known to store cache manifests, `inline` everywhere else."""
    if mode != "auto":
        return mode
    return "max" if any(rx.match(image_name) for rx in MODE_MAX_REGISTRIES) else "inline"


def cache_refs(build: BuildAction, provider: KubernetesProvider | None) -> list[CacheRef]:
    """The cluster-buildkit cache entries of a build, in configured (import) order; [] for other modes."""
    if provider is None or provider.build_mode != "cluster-buildkit":
        return []
    registry = provider.deployment_registry
    out = []
    for cache in provider.cluster_buildkit.cache:
        name = cache_image_name(build, provider, cache)
        mode = resolve_cache_mode(cache.mode, name)
        insecure = (cache.registry.insecure if cache.registry is not None
                    else bool(registry and registry.insecure))
        out.append(CacheRef(ref=f"{name}:{cache.tag}", mode=mode, export=cache.export, insecure=insecure,
                            image_manifest=mode == "max" and bool(AWS_ECR.match(name))))
    return out
