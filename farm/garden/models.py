"""Pydantic models of the Garden config the farm reads: the kubernetes provider and container Builds.

snake_case attributes, Garden's camelCase names as aliases; defaults are Garden's (GARDEN-SPEC §1).
Models are frozen values; unknown keys are errors where Garden's schema forbids them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

BuildMode = Literal["local-docker", "kaniko", "cluster-buildkit"]
BUILD_MODES: tuple[str, ...] = ("local-docker", "kaniko", "cluster-buildkit")
DEFAULT_KANIKO_IMAGE = (
    "gcr.io/kaniko-project/executor:v1.11.0-debug"
    "@sha256:32ba2214921892c2fa7b5f9c4ae6f8f026538ce6b2105a93a36a8b5ee50fe517")
DEFAULT_BUILD_TIMEOUT = 600
MAX_TIMEOUT = 7 * 24 * 3600   # a bound on what YAML may say; the farm's own limit is FARM_MAX_BUILD_TIMEOUT
StringMap = dict[str, str]


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid",
                              frozen=True)


# A registry host as Garden takes it: a host name or address, optionally `:port`, and optionally a
# path (Garden's own tests use gcr.io/deploymentRegistry and aws_account_id.dkr.ecr...). What is
# refused is what cannot be part of an image name: spaces, '@', a scheme, empty or dot segments.
_HOST_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_REGISTRY_HOST = re.compile(rf"^(?:{_HOST_PART}(?:\.{_HOST_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]{{1,5}})?"
                            r"(?:/[A-Za-z0-9_-]+(?:[._-][A-Za-z0-9_-]+)*)*$")
# Docker's reference grammar for repository path components (distribution/reference).
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAMESPACE = re.compile(rf"^{_PATH_PART}(?:/{_PATH_PART})*$")


class RegistryConfig(Model):
    hostname: str
    port: int | None = None
    namespace: str | None = None
    insecure: bool = False

    @field_validator("namespace", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("hostname must not be empty")
        if not _REGISTRY_HOST.match(value):
            raise ValueError(f"hostname {value!r} is not a registry host name (like registry.example.com, "
                             "127.0.0.1:5000 or gcr.io/project; no scheme, spaces or '@')")
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 65535:
            raise ValueError(f"port {value} is not a TCP port (1-65535)")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value is not None and (not _NAMESPACE.match(value) or len(value) > 200):
            raise ValueError(f"namespace {value!r} must be lowercase path components (letters, digits, "
                             "'.', '_', '-') separated by '/', like team or project/repository")
        return value

    @property
    def host(self) -> str:
        """`hostname[:port]`, the part image names start with."""
        return f"{self.hostname}:{self.port}" if self.port else self.hostname


class SecretRef(Model):
    name: str
    namespace: str = "default"


class Toleration(Model):
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    toleration_seconds: str | None = None  # Garden types it as a string

    @field_validator("toleration_seconds", "value", mode="before")
    @classmethod
    def _number_as_string(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _cpu_quantity(millicpu: int) -> str:
    return str(millicpu // 1000) if millicpu % 1000 == 0 else f"{millicpu}m"


def _memory_quantity(megabytes: int) -> str:
    kb = megabytes * 1024
    for unit, size in (("Ei", 1024 ** 5), ("Pi", 1024 ** 4), ("Ti", 1024 ** 3), ("Gi", 1024 ** 2),
                       ("Mi", 1024)):
        if kb >= size and kb % size == 0:
            return f"{kb // size}{unit}"
    return f"{kb}Ki"


class ResourceConfig(Model):
    """millicpu / MB, as Garden takes them; `quantities()` gives the Kubernetes strings."""

    cpu: int
    memory: int
    ephemeral_storage: int | None = None

    def quantities(self) -> dict[str, str]:
        out = {"cpu": _cpu_quantity(self.cpu), "memory": _memory_quantity(self.memory)}
        if self.ephemeral_storage is not None:
            out["ephemeral-storage"] = _memory_quantity(self.ephemeral_storage)
        return out


class ResourceSpec(Model):
    limits: ResourceConfig
    requests: ResourceConfig

    def requirements(self) -> dict[str, dict[str, str]]:
        """As a container's Kubernetes `resources`."""
        return {"limits": self.limits.quantities(), "requests": self.requests.quantities()}


# Garden's defaults per part (cpu in millicpu, memory in MB): limits, then requests.
class BuilderLimits(ResourceConfig):
    cpu: int = 4000
    memory: int = 8192


class BuilderRequests(ResourceConfig):
    cpu: int = 100
    memory: int = 512


class UtilLimits(ResourceConfig):
    cpu: int = 256
    memory: int = 512


class UtilRequests(ResourceConfig):
    cpu: int = 256
    memory: int = 512


class SyncLimits(ResourceConfig):
    cpu: int = 500
    memory: int = 512


class SyncRequests(ResourceConfig):
    cpu: int = 100
    memory: int = 90


class BuilderResources(ResourceSpec):
    limits: BuilderLimits = Field(default_factory=BuilderLimits)
    requests: BuilderRequests = Field(default_factory=BuilderRequests)


class UtilResources(ResourceSpec):
    limits: UtilLimits = Field(default_factory=UtilLimits)
    requests: UtilRequests = Field(default_factory=UtilRequests)


class SyncResources(ResourceSpec):
    limits: SyncLimits = Field(default_factory=SyncLimits)
    requests: SyncRequests = Field(default_factory=SyncRequests)


class Resources(Model):
    builder: BuilderResources = Field(default_factory=BuilderResources)
    util: UtilResources = Field(default_factory=UtilResources)
    sync: SyncResources = Field(default_factory=SyncResources)


class CacheConfig(Model):
    type: Literal["registry"]
    registry: RegistryConfig | None = None
    mode: Literal["auto", "min", "max", "inline"] = "auto"
    tag: str = "_buildcache"
    export: bool = True


def _default_cache() -> list[CacheConfig]:
    return [CacheConfig(type="registry")]


class ClusterBuildkitConfig(Model):
    cache: list[CacheConfig] = Field(default_factory=_default_cache)
    rootless: bool = False
    node_selector: StringMap = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    annotations: StringMap | None = None
    service_account_annotations: StringMap | None = None


class KanikoUtilConfig(Model):
    tolerations: list[Toleration] | None = None
    annotations: StringMap | None = None
    node_selector: StringMap | None = None


class KanikoConfig(Model):
    image: str = DEFAULT_KANIKO_IMAGE
    extra_flags: list[str] | None = None
    namespace: str | None = None
    node_selector: StringMap | None = None
    tolerations: list[Toleration] = Field(default_factory=list)
    annotations: StringMap | None = None
    service_account_annotations: StringMap | None = None
    util: KanikoUtilConfig | None = None


class JibConfig(Model):
    push_via_cluster: bool = False


class NamespaceConfig(Model):
    name: str
    annotations: StringMap | None = None
    labels: StringMap | None = None


class KubernetesProvider(Model):
    """The `kubernetes` (or `local-kubernetes`) provider; builder fields typed, the rest kept loosely."""

    name: str = "kubernetes"
    environments: list[str] | None = None
    dependencies: list[str] = Field(default_factory=list)
    build_mode: BuildMode = "local-docker"
    # Garden's `kubernetes` provider schema requires it (`local-kubernetes` detects it); the farm refuses
    # what Garden refuses, although it does not need a context to build.
    context: str | None = Field(default=None, validate_default=True)
    kubeconfig: str | None = None
    kubectl_path: str | None = None
    namespace: NamespaceConfig | None = None
    deployment_registry: RegistryConfig | None = None
    image_pull_secrets: list[SecretRef] = Field(default_factory=list)
    copy_secrets: list[SecretRef] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    cluster_buildkit: ClusterBuildkitConfig = Field(default_factory=ClusterBuildkitConfig)
    kaniko: KanikoConfig = Field(default_factory=KanikoConfig)
    jib: JibConfig | None = None
    util_image_registry_domain: str = "docker.io"
    # The farm's own switch (not Garden's): create missing ECR image and cache repositories, with
    # MUTABLE tags, on first use. Garden's guide has users create them by hand.
    ecr_create_repositories: bool = True
    # Read and ignored: deploy-side fields of the same provider.
    default_hostname: str | None = None
    deployment_strategy: Literal["rolling", "blue-green"] = "rolling"
    sync: dict[str, Any] | None = None
    dev_mode: dict[str, Any] | None = None
    force_ssl: bool = False
    garden_system_namespace: str = "garden-system"
    tls_certificates: list[dict[str, Any]] = Field(default_factory=list)
    cert_manager: dict[str, Any] | None = None
    system_node_selector: StringMap = Field(default_factory=dict)
    ingress_class: str | None = None
    ingress_http_port: int = 80
    ingress_https_port: int = 443
    setup_ingress_controller: str | bool | None = False
    cluster_type: str | None = None
    storage: dict[str, Any] | None = None
    system_services: list[str] = Field(default_factory=list, alias="_systemServices")

    @field_validator("namespace", mode="before")
    @classmethod
    def _namespace_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("context")
    @classmethod
    def _context_required(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("name") == "kubernetes" and not value:
            raise ValueError("context is required" if value is None else "context is not allowed to be empty")
        return value

    @field_validator("util_image_registry_domain")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def in_cluster(self) -> bool:
        return self.build_mode != "local-docker"


PROVIDER_KEYS: frozenset[str] = frozenset(
    (f.alias or n) for n, f in KubernetesProvider.model_fields.items())


class CopyFrom(Model):
    build: str
    source_path: str
    target_path: str = ""


class VersionConfig(Model):
    exclude_files: list[str] = Field(default_factory=list)
    exclude_values: list[str] = Field(default_factory=list)
    exclude_fields: list[list[str | int] | str] = Field(default_factory=list)
    exclude_dependencies: list[Any] = Field(default_factory=list)


_SECRET_KEY = re.compile(r"^[a-zA-Z0-9._-]+$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
BuildArgValue = str | int | float | bool | None


class BuildSpec(Model):
    dockerfile: str = "Dockerfile"
    build_args: dict[str, BuildArgValue] = Field(default_factory=dict)
    extra_flags: list[str] | None = None
    platforms: list[str] = Field(default_factory=list)
    secrets: dict[str, str] = Field(default_factory=dict)
    target_stage: str | None = None
    local_id: str | None = None
    publish_id: str | None = None

    @field_validator("secrets")
    @classmethod
    def _secret_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not _SECRET_KEY.match(key):
                raise ValueError(f"secret id {key!r} must match {_SECRET_KEY.pattern}")
        return value

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _PLATFORM.match(item):
                raise ValueError(f"platform {item!r} must look like os/arch, e.g. linux/amd64")
        return value

    @field_validator("dockerfile")
    @classmethod
    def _dockerfile(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("dockerfile must be a relative path inside the build context")
        return value


class BuildAction(Model):
    """A `kind: Build, type: container` action, templates resolved, paths absolute."""

    name: str
    type: Literal["container"] = "container"
    config_file: Path
    source_dir: Path
    dependencies: list[str] = Field(default_factory=list)
    include: list[str] | None = None
    exclude: list[str] | None = None
    timeout: int = DEFAULT_BUILD_TIMEOUT
    allow_publish: bool = True
    build_at_source: bool = False
    copy_from: list[CopyFrom] = Field(default_factory=list)
    version_config: VersionConfig = Field(default_factory=VersionConfig, alias="version")
    spec: BuildSpec = Field(default_factory=BuildSpec)
    description: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    # The resolved config as written, for the config hash (GARDEN-SPEC §2.2).
    raw_config: dict[str, Any] = Field(default_factory=dict, exclude=True, repr=False)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        # 1e23 is a float YAML reads happily; say what is wrong rather than how pydantic parses ints.
        if isinstance(value, str):          # Garden's schema converts "600" as Joi does
            try:
                value = float(value.strip()) if value.strip() else value
            except ValueError:
                pass
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole:
            raise ValueError(f"timeout must be a whole number of seconds (got {value!r})")
        if not 1 <= value <= MAX_TIMEOUT:
            raise ValueError(f"timeout {value!r} s is out of range (1 to {MAX_TIMEOUT} s)")
        return int(value)
