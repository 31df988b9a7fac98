"""`farm gc`: branch cache tags nobody wrote for a while, and context-store objects no live job needs.

    branch_patterns(refs)                 the project's cache tags with a branch in them, as patterns (pure)
    stale_tags(tags, pattern, keep, cutoff)  which tags of one cache image go (pure)
    sweep_cache_tags(...)                 the registry side: list, date, delete, count the space
    live_contexts(redis, store_url)       the contexts queued and running jobs will read

How old a tag is: when it was last *written*, read from Distribution's storage (the mtime of
`_manifests/tags/<tag>/current/link`, which the registry rewrites on every push of the tag). Not
the image config's `created`: BuildKit's registry cache manifests (mode=max) have a cache config
without one, reproducible builds pin it (SOURCE_DATE_EPOCH), and re-exporting an unchanged cache
keeps the old date while the branch is very much alive. A registry whose storage the farm cannot
read (ECR, Artifact Registry) is skipped with a line saying so: nothing is deleted on a guess.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from farm import keys
from farm.garden import GitInfo
from farm.images import CacheRef, cache_refs
from farm.plan import load
from farm.registry import RegistryClient, parse_reference
from farm.registry.manifests import INDEX_TYPES

if TYPE_CHECKING:
    import redis

# A branch name no one uses, that kebabCase, lower and short slices leave whole: where it shows in
# a resolved cache tag, the template reads the branch.
PROBE = "farmgcbranchprobe"
LIVE_STATES = ("queued", "started", "retrying")


@dataclass(frozen=True)
class TagPattern:
    """The branch cache tags of one cache image: `<prefix><anything><suffix>`."""

    image: str          # host/repository of the cache image
    prefix: str
    suffix: str
    insecure: bool

    def matches(self, tag: str) -> bool:
        return (len(tag) > len(self.prefix) + len(self.suffix) and tag.startswith(self.prefix)
                and tag.endswith(self.suffix))


def branch_patterns(probed: Iterable[CacheRef]) -> list[TagPattern]:
    """Patterns from cache refs resolved with the PROBE branch; refs without it are no branch tags."""
    out: dict[tuple[str, str, str], TagPattern] = {}
    for ref in probed:
        image, _, tag = ref.ref.rpartition(":")
        if PROBE in tag:
            prefix, _, suffix = tag.partition(PROBE)
            out.setdefault((image, prefix, suffix), TagPattern(image, prefix, suffix, ref.insecure))
    return list(out.values())


def project_cache_refs(root: Path, env: str | None, branch: str) -> list[CacheRef]:
    """Every cache ref of the project's Builds, with its templates read as if on `branch`."""
    project, versions = load(root, env, git=GitInfo(branch=branch))
    return [ref for build in project.builds.values() for ref in cache_refs(build, project.provider)]


@dataclass(frozen=True)
class Tag:
    name: str
    digest: str
    written: float       # epoch seconds of the last push of this tag


def stale_tags(tags: Iterable[Tag], pattern: TagPattern, keep: Collection[str], cutoff: float) -> list[Tag]:
    """Branch tags of `pattern` last written before `cutoff`, except the kept branches' tags."""
    return [t for t in tags if pattern.matches(t.name) and t.name not in keep and t.written < cutoff]


class DistributionStorage:
    """Tags, their digests and last-write times, read from a Distribution registry's filesystem storage
    (its `storage.filesystem.rootdirectory`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def tags(self, repository: str) -> list[Tag]:
        base = self.root / "docker/registry/v2/repositories" / repository / "_manifests/tags"
        out = []
        for name in sorted(os.listdir(base)) if base.is_dir() else []:
            link = base / name / "current/link"
            try:
                out.append(Tag(name, link.read_text().strip(), link.stat().st_mtime))
            except FileNotFoundError:       # deleted meanwhile
                continue
        return out


@dataclass
class TagSweep:
    deleted: list[tuple[str, Tag]] = field(default_factory=list)     # (image, tag)
    kept_shared: list[tuple[str, Tag, str]] = field(default_factory=list)  # shares its manifest with a kept tag
    freed: int = 0                       # bytes no remaining tag names (freed by the registry's own GC)
    skipped: list[str] = field(default_factory=list)                 # why a registry was not swept


def _descriptors(client: RegistryClient, repo: str, digest: str, seen: dict[str, int]) -> None:
    """Every blob and manifest (digest -> size) a manifest names, children of an index included."""
    got = client.get_manifest(repo, digest)
    if got is None:
        return
    info, body = got
    seen[digest] = len(body)
    doc = json.loads(body)
    if info.media_type in INDEX_TYPES or "manifests" in doc:
        for child in doc.get("manifests") or []:
            if child["digest"] not in seen:
                _descriptors(client, repo, child["digest"], seen)
        return
    for d in ([doc["config"]] if "config" in doc else []) + list(doc.get("layers") or []):
        seen[d["digest"]] = int(d.get("size", 0))


def sweep_cache_tags(patterns: Iterable[TagPattern], keep: Collection[str], cutoff: float,
                     storage: Callable[[str], DistributionStorage | None],
                     client: Callable[[str, bool], RegistryClient], *, dry_run: bool,
                     say: Callable[[str], None]) -> TagSweep:
    """Delete (unless `dry_run`) the stale branch tags of every pattern; `storage(host)` is None for a
    registry whose storage the farm cannot read."""
    out = TagSweep()
    for pattern in patterns:
        ref = parse_reference(pattern.image)
        store = storage(ref.host)
        if store is None:
            out.skipped.append(f"{pattern.image}: no storage to read tag ages from (--registry-storage "
                               f"{ref.host}=DIR), not swept")
            continue
        tags = store.tags(ref.repository)
        stale = stale_tags(tags, pattern, keep, cutoff)
        if not stale:
            continue
        doomed = {t.digest for t in stale}
        kept = [t for t in tags if t not in stale]
        # Deleting a manifest deletes every tag that names it: spare a manifest a kept tag names too.
        shared = {t.digest: t.name for t in kept if t.digest in doomed}
        with client(ref.host, pattern.insecure) as c:
            keep_blobs: dict[str, int] = {}
            for digest in {t.digest for t in kept}:
                _descriptors(c, ref.repository, digest, keep_blobs)
            gone: dict[str, int] = {}
            for tag in stale:
                if tag.digest in shared:
                    out.kept_shared.append((pattern.image, tag, shared[tag.digest]))
                    say(f"keep {pattern.image}:{tag.name}: its manifest is also {shared[tag.digest]}")
                    continue
                _descriptors(c, ref.repository, tag.digest, gone)
                if not dry_run:
                    c.delete_manifest(ref.repository, tag.digest)
                out.deleted.append((pattern.image, tag))
            out.freed += sum(size for digest, size in gone.items() if digest not in keep_blobs)
    return out


def live_contexts(client: redis.Redis, store_url: str) -> set[str]:
    """The context digests that queued, started and retrying jobs will read from this store."""
    ids: set[str] = set()
    for state in LIVE_STATES:
        ids.update(str(i) for i in client.zrange(keys.history_state(state), 0, -1))
    out: set[str] = set()
    for job_id in ids:
        request = client.hget(keys.job(job_id), "request")
        if not request:
            continue
        doc = json.loads(request)
        if doc.get("context") and doc.get("context_store", store_url) == store_url:
            out.add(str(doc["context"]).removeprefix("sha256:"))
    return out
