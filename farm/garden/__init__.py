"""Reading a Garden project: pydantic models, a YAML loader with file:line, `${...}` templates."""

from farm.garden.context import GitInfo
from farm.garden.models import (
    BuildAction,
    BuildSpec,
    CacheConfig,
    ClusterBuildkitConfig,
    KanikoConfig,
    KubernetesProvider,
    RegistryConfig,
    Resources,
    Toleration,
)
from farm.garden.project import (
    Project,
    check_project,
    default_environment_problem,
    environment_names,
    load_project,
    require_registry,
)

__all__ = [
    "BuildAction", "BuildSpec", "CacheConfig", "ClusterBuildkitConfig", "GitInfo", "KanikoConfig",
    "KubernetesProvider", "Project", "RegistryConfig", "Resources", "Toleration", "check_project",
    "default_environment_problem", "environment_names", "load_project", "require_registry",
]
