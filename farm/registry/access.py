"""Can the farm pull from and push to a repository? A real auth round trip, no image pushed.

    pull: HEAD the manifest the build will read (a base image) or write (its tag), with a pull token.
          200 or 404 for the build's own tag is "can pull"; a base image must exist.
    push: open a blob upload session with a pull,push token (`POST /v2/<repo>/blobs/uploads/`),
          then cancel it. That is the first thing a push does, so a registry that refuses it
          (a read-only account, a token service granting pull only, ECR/GAR IAM) refuses the push.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from farm.errors import FarmError
from farm.registry import ecr, gar
from farm.registry.client import RegistryClient
from farm.registry.credentials import credentials_for
from farm.registry.docker_config import DockerConfig


@dataclass(frozen=True)
class Use:
    """One repository of a registry, as a build uses it."""

    repository: str
    ref: str                     # the tag or digest read (a base image) or written (the build's tag)
    roles: tuple[str, ...]       # "deployment", "cache", "base image of api" …
    push: bool                   # the farm writes here
    must_exist: bool = False     # a base image: pull it


@dataclass(frozen=True)
class Check:
    ok: bool
    reason: str = ""


@dataclass(frozen=True)
class RepositoryAccess:
    use: Use
    pull: Check
    push: Check | None           # None: the farm does not push here
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.pull.ok and (self.push is None or self.push.ok)


@dataclass(frozen=True)
class RegistryAccess:
    host: str
    source: str                  # auths | ecr-login | gcloud | json-key | none
    detail: str
    repositories: list[RepositoryAccess] = field(default_factory=list)
    problem: str = ""            # a failure before any repository was tried

    @property
    def ok(self) -> bool:
        return not self.problem and all(r.ok for r in self.repositories)

    def as_json(self) -> dict[str, object]:
        return {"registry": self.host, "ok": self.ok, "credentials": {"source": self.source, "detail": self.detail},
                "problem": self.problem or None,
                "repositories": [{"repository": r.use.repository, "ref": r.use.ref, "roles": list(r.use.roles),
                                  "pull": {"ok": r.pull.ok, "reason": r.pull.reason or None},
                                  "push": None if r.push is None else {"ok": r.push.ok,
                                                                       "reason": r.push.reason or None},
                                  "notes": list(r.notes)} for r in self.repositories]}


def check_registry(host: str, uses: list[Use], docker_config: Path | DockerConfig, *, insecure: bool,
                   timeout: float = 30.0, create_ecr_repositories: bool = False,
                   gar_namespace: str | None = None) -> RegistryAccess:
    """Pull and push checks for each use of one registry. `create_ecr_repositories`: create missing
    ECR repositories (MUTABLE tags) first, as a build would. `gar_namespace`: the Artifact Registry
    `<project>/<repository>` to look up first."""
    try:
        resolved = credentials_for(host, docker_config)
    except FarmError as exc:
        return RegistryAccess(host, "none", "credential resolution failed", problem=str(exc))
    notes: dict[str, list[str]] = {}
    if gar_namespace is not None:
        try:
            repo = gar.parse_gar(host, gar_namespace)
            if repo is not None:
                gar.check_repository(repo, resolved, timeout)
        except FarmError as exc:
            return RegistryAccess(host, resolved.source, resolved.detail, problem=str(exc))
    if ecr.is_ecr(host):
        for use in uses:
            if not use.push:
                continue
            try:
                state = ecr.ensure_repository(host, use.repository, create=create_ecr_repositories)
            except FarmError as exc:
                notes.setdefault(use.repository, []).append(str(exc))
                continue
            if state is None:
                notes.setdefault(use.repository, []).append(
                    "the ECR repository does not exist yet: a build creates it with MUTABLE tags "
                    "(ecrCreateRepositories)" if not create_ecr_repositories else "")
            elif state.created:
                notes.setdefault(use.repository, []).append("ECR repository created with MUTABLE tags")
            elif state.mutability != "MUTABLE" and "cache" in use.roles:
                notes.setdefault(use.repository, []).append(
                    f"ECR repository has {state.mutability} tags: the cache tag cannot be overwritten")
    out: list[RepositoryAccess] = []
    with RegistryClient(host, resolved.credentials, insecure=insecure, timeout=timeout,
                        source=resolved.detail if resolved.credentials else "") as client:
        for use in uses:
            pull = _pull(client, use)
            push = _push(client, use) if use.push else None
            out.append(RepositoryAccess(use, pull, push, tuple(n for n in notes.get(use.repository, []) if n)))
    return RegistryAccess(resolved.host, resolved.source, resolved.detail, out)


def _pull(client: RegistryClient, use: Use) -> Check:
    try:
        info = client.head_manifest(use.repository, use.ref)
    except FarmError as exc:
        return Check(False, str(exc))
    if info is None and use.must_exist:
        return Check(False, f"{client.host}/{use.repository}:{use.ref} does not exist")
    return Check(True)


def _push(client: RegistryClient, use: Use) -> Check:
    try:
        location = client.start_upload(use.repository)
    except FarmError as exc:
        return Check(False, str(exc))
    client.cancel_upload(use.repository, location)
    return Check(True)
