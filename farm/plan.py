"""The resolved Build: everything downstream needs, computed once from the project and its versions.

    load(root, env)  -> Project        the config, with `${actions.build.*}` resolved from versions
    plan(project, …) -> Plan           the Builds to consider, in dependency waves, each a PlannedBuild

A PlannedBuild carries the mode, version, image names, build args, cache refs, platforms and their
refs, and the provider's builder settings; `farm config show`, the registry status check and the
job requests all read it, and none of them derives these again. Pure but for reading files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.errors import ConfigError, UsageError
from farm.garden import BuildAction, GitInfo, KubernetesProvider, Project, check_project, graph, load_project
from farm.in_cluster import BuildkitOptions, buildkit_options
from farm.kaniko import KanikoOptions, options_for
from farm.images import CacheRef, ImageOutputs, build_args, cache_refs, image_outputs, platform_tag
from farm.version import BuildVersion, compute_versions

DEFAULT_PLATFORM = "linux/amd64"
SUPPORTED_MODES = ("local-docker", "cluster-buildkit", "kaniko")


class _Actions:
    """`${actions.build.<name>.*}`: the version and image outputs of the Builds a config reads.

    Versions found here are kept, so planning does not compute them again.
    """

    def __init__(self) -> None:
        self.versions: dict[str, BuildVersion] = {}

    def __call__(self, project: Project, subset: dict[str, BuildAction]) -> dict[str, Any]:
        self.versions.update(compute_versions(project, self.versions))
        return {"build": {
            name: {"name": name, "kind": "Build", "type": "container", "disabled": False,
                   "version": self.versions[name].version_string,
                   "outputs": image_outputs(build, project.provider,
                                            self.versions[name].version_string).as_garden_outputs()}
            for name, build in subset.items()}}


def load(root: Path, env: str | None = None, *, git: GitInfo | None = None
         ) -> tuple[Project, dict[str, BuildVersion]]:
    """Load a project and compute the version of each of its Builds (`git`: branch and commit, read
    from the repository when not given)."""
    actions = _Actions()
    project = load_project(root.resolve(), env, git=git, resolve_actions=actions)
    return project, compute_versions(project, actions.versions)


def problems(root: Path, env: str | None = None) -> list[ConfigError]:
    """Every problem of the project in one environment (`farm config validate`), [] when sound."""
    found = check_project(root.resolve(), env, resolve_actions=_Actions())
    if found:
        return found
    try:
        load(root, env)   # unreadable files and git failures are problems too
    except ConfigError as exc:
        return [exc]
    return []


def require_buildable(project: Project, one_call: bool = False) -> None:
    """What the farm needs of a project before it sends anything: a mode it can build, a registry."""
    provider = project.provider
    mode = provider.build_mode if provider else "local-docker"
    if mode not in SUPPORTED_MODES:
        raise ConfigError(f"buildMode {mode} is not supported by the farm yet ({', '.join(SUPPORTED_MODES)})",
                          file=str(project.config_file), field="providers[kubernetes].buildMode")
    if one_call and mode != "cluster-buildkit":
        raise UsageError(f"the one-call multi-platform form needs buildMode cluster-buildkit (this project: {mode})")
    if provider is None or provider.deployment_registry is None:
        raise ConfigError("the kubernetes provider needs a deploymentRegistry for the farm to push to",
                          file=str(project.config_file), field="providers[kubernetes].deploymentRegistry")


def project_namespace(project: Project) -> str:
    """The provider's namespace (Garden's app namespace), `<project>-<environment namespace>` by default."""
    provider = project.provider
    if provider is not None and provider.namespace is not None:
        return provider.namespace.name
    return f"{project.name}-{project.namespace}"


@dataclass(frozen=True)
class PlannedBuild:
    """One Build, resolved: what the status check, the context upload and the job requests read."""

    action: BuildAction
    provider: KubernetesProvider | None
    mode: str
    version: BuildVersion
    outputs: ImageOutputs
    platforms: tuple[str, ...]
    insecure: bool                      # the deployment registry speaks plain HTTP
    build_args: Mapping[str, str | None]
    cache: tuple[CacheRef, ...]
    depends_on: tuple[str, ...] = ()
    one_call: bool = False              # all platforms in one cluster-buildkit call, no per-platform jobs
    kaniko: KanikoOptions | None = None  # kaniko mode: the executor's resolved flags and Pod settings
    buildkit: BuildkitOptions | None = None  # cluster-buildkit: the in-cluster Deployment's settings

    @property
    def name(self) -> str:
        return self.action.name

    @property
    def fan_out(self) -> bool:
        """One job per platform, merged into an index afterwards."""
        return len(self.platforms) > 1 and not self.one_call

    def platform_image(self, platform: str) -> str:
        """The ref a platform's job pushes: the version tag itself for a single-platform build, else
        a per-platform tag (`<version>-<os>-<arch>[-<variant>]`) that the merge lists in the index."""
        if not self.fan_out:
            return self.outputs.deployment_image_id
        return f"{self.outputs.deployment_image_name}:{platform_tag(self.version.version_string, platform)}"

    @property
    def platform_images(self) -> dict[str, str]:
        return {p: self.platform_image(p) for p in self.platforms}


@dataclass(frozen=True)
class Plan:
    project: Project
    waves: list[list[PlannedBuild]]

    @property
    def builds(self) -> list[PlannedBuild]:
        return [b for wave in self.waves for b in wave]


def plan(project: Project, versions: Mapping[str, BuildVersion], names: Sequence[str] = (),
         platforms: Sequence[str] = (), one_call: bool = False) -> Plan:
    """The Builds to consider (all, or `names` with what they depend on) in waves: a wave needs only
    earlier waves. `platforms` overrides every Build's `spec.platforms`."""
    unknown = [n for n in names if n not in project.builds]
    if unknown:
        known = ", ".join(sorted(project.builds)) or "none"
        raise UsageError(f"no Build named {', '.join(unknown)} in {project.root} (Builds: {known})")
    provider = project.provider
    mode = provider.build_mode if provider else "local-docker"
    registry = provider.deployment_registry if provider else None
    edges = {n: [d for d in b.dependencies if d in project.builds] for n, b in project.builds.items()}
    selected = graph.closure(list(names) or sorted(project.builds), edges)
    planned = {name: _planned(project, project.builds[name], provider, mode, versions[name], platforms,
                              bool(registry and registry.insecure), tuple(edges[name]), one_call)
               for name in selected}
    try:
        order = graph.waves({n: edges[n] for n in selected})
    except graph.CycleError as exc:
        raise ConfigError(f"dependency cycle between Builds {', '.join(sorted(set(exc.path)))}") from None
    return Plan(project, [[planned[n] for n in wave] for wave in order])


def _planned(project: Project, action: BuildAction, provider: KubernetesProvider | None, mode: str,
             version: BuildVersion, platforms: Sequence[str], insecure: bool, depends_on: tuple[str, ...],
             one_call: bool) -> PlannedBuild:
    outputs = image_outputs(action, provider, version.version_string)
    kaniko = None
    if mode == "kaniko" and provider is not None:
        kaniko = options_for(action, provider, project_namespace(project), outputs.deployment_image_name)
    buildkit = None
    if mode == "cluster-buildkit" and provider is not None:
        buildkit = buildkit_options(provider, project_namespace(project))
    return PlannedBuild(
        action=action, provider=provider, mode=mode, version=version, kaniko=kaniko, buildkit=buildkit,
        outputs=outputs,
        platforms=tuple(platforms) or tuple(action.spec.platforms) or (DEFAULT_PLATFORM,),
        insecure=insecure, build_args=build_args(action, version.version_string),
        cache=tuple(cache_refs(action, provider)), depends_on=depends_on, one_call=one_call)
