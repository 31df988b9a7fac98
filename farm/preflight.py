"""Before any build starts: can the farm pull and push where the plan says? (`farm registry check`,
and the build flow's pre-build check.)

The registries a plan uses are its deployment registry (push), its cache registries (push where
the cache is exported) and the registries of its Dockerfiles' base images (`FROM`, `COPY --from`;
pull). Each is checked by `farm.registry.access`: a real auth round trip per repository, with
credentials from `credentials_for`. Missing ECR repositories are created (MUTABLE tags) when the
provider's `ecrCreateRepositories` allows and `create` is asked for; an Artifact Registry
deployment registry's repository is looked up first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from farm.dockerfile import base_images
from farm.errors import RegistryAuthError
from farm.plan import Plan, PlannedBuild
from farm.registry import parse_reference
from farm.registry.access import RegistryAccess, Use, check_registry
from farm.registry.docker_config import DockerConfig
from farm.settings import Settings


@dataclass
class RegistryUses:
    host: str
    insecure: bool
    uses: dict[tuple[str, str], Use] = field(default_factory=dict)
    gar_namespace: str | None = None

    def add(self, use: Use) -> None:
        key = (use.repository, use.ref)
        old = self.uses.get(key)
        if old is None:
            self.uses[key] = use
            return
        roles = old.roles + tuple(r for r in use.roles if r not in old.roles)
        self.uses[key] = replace(old, roles=roles, push=old.push or use.push,
                                 must_exist=old.must_exist and use.must_exist)


def _local(host: str) -> bool:
    """Docker's default insecure registries: loopback hosts speak plain HTTP to it too."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name == "localhost" or name.startswith("127.")


def registry_uses(plan: Plan) -> list[RegistryUses]:
    """Every registry the plan's Builds touch, with what each Build does there, in first-use order."""
    out: dict[str, RegistryUses] = {}
    produced = {b.outputs.deployment_image_name for b in plan.builds}
    provider = plan.project.provider
    registry = provider.deployment_registry if provider else None

    def at(host: str, insecure: bool) -> RegistryUses:
        if host not in out:
            out[host] = RegistryUses(host, insecure)
        return out[host]

    for build in plan.builds:
        ref = parse_reference(build.outputs.deployment_image_id)
        uses = at(ref.host, build.insecure)
        uses.add(Use(ref.repository, ref.ref, ("deployment",), push=True))
        if registry is not None and registry.namespace and registry.host == ref.host:
            uses.gar_namespace = registry.namespace
        for cache in build.cache:
            cref = parse_reference(cache.ref)
            at(cref.host, cache.insecure).add(Use(cref.repository, cref.ref, ("cache",), push=cache.export))
        if build.kaniko is not None and build.kaniko.cache_repo:
            # kaniko pushes its layer cache under content-keyed tags of its cache repository
            kref = parse_reference(f"{build.kaniko.cache_repo}:cache")
            at(kref.host, build.insecure).add(Use(kref.repository, kref.ref, ("cache",), push=True))
        for image in _base_images(build):
            bref = parse_reference(image)
            ours = image.rsplit(":", 1)[0].split("@")[0] in produced
            known = out.get(bref.host)
            at(bref.host, known.insecure if known else _local(bref.host)).add(
                Use(bref.repository, bref.ref, (f"base image of {build.name}",), push=False, must_exist=not ours))
    return list(out.values())


def _base_images(build: PlannedBuild) -> list[str]:
    path = Path(build.action.source_dir) / (build.action.spec.dockerfile or "Dockerfile")
    try:
        text = path.read_text()
    except OSError:
        return []                # the build itself reports a missing Dockerfile
    return base_images(text, build.build_args)


def check_plan(plan: Plan, settings: Settings, *, create: bool = False,
               docker_config: Path | DockerConfig | None = None) -> list[RegistryAccess]:
    """One RegistryAccess per registry the plan uses. `create`: create missing ECR repositories."""
    provider = plan.project.provider
    allow_create = create and (provider.ecr_create_repositories if provider else True)
    return [check_registry(r.host, list(r.uses.values()), docker_config or settings.docker_config,
                           insecure=r.insecure, timeout=settings.registry_timeout,
                           create_ecr_repositories=allow_create, gar_namespace=r.gar_namespace)
            for r in registry_uses(plan)]


def failures(results: Iterable[RegistryAccess]) -> list[str]:
    """One line per thing the farm cannot do, naming the registry, repository and why."""
    lines: list[str] = []
    for r in results:
        if r.problem:
            lines.append(f"{r.host}: {r.problem}")
        for repo in r.repositories:
            if not repo.pull.ok:
                lines.append(repo.pull.reason)
            if repo.push is not None and not repo.push.ok:
                lines.append(repo.push.reason)
    return lines


def require_access(plan: Plan, settings: Settings) -> list[RegistryAccess]:
    """The pre-build check: raise RegistryAuthError listing every refusal, before anything is enqueued."""
    results = check_plan(plan, settings, create=True)
    problems = failures(results)
    if problems:
        raise RegistryAuthError("; ".join(problems))
    return results
