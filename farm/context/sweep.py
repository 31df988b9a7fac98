"""Garbage collection of the context store (`farm gc`): manifests no queued or running job needs and
blobs no remaining manifest names, both past a grace period.

    plan_sweep(manifests, blobs, refs, live, cutoff) -> Sweep   what to delete (pure)
    sweep(store, live, grace, now, dry_run)         -> Sweep   listing, then deleting, at the edge

Why a grace period: a producer writes its blobs, then the manifest, then enqueues the job; for a
moment a fresh context is named by no job (and fresh blobs by no manifest). Whatever was written
within the grace period is kept. Just before blobs go, the manifests are listed again, so a context
written while the sweep ran keeps the old blobs it reuses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from farm.errors import ContextError

from .delta import parse_delta
from .safety import is_blob_hex
from .store import ContextStore, blob_key, manifest_key


@dataclass(frozen=True)
class Stored:
    """One object of the store: its digest (hex), size in bytes and last write (epoch seconds)."""

    name: str
    size: int
    mtime: float


class SweptStore(ContextStore, Protocol):
    """A store the sweep can list and delete from (both backends are)."""

    def list_blobs(self) -> Iterator[Stored]: ...

    def list_manifests(self) -> Iterator[Stored]: ...

    def delete_blob(self, sha: str) -> None: ...

    def delete_manifest(self, hex_digest: str) -> None: ...


@dataclass
class Sweep:
    manifests: list[Stored] = field(default_factory=list)   # to delete
    blobs: list[Stored] = field(default_factory=list)
    kept_live: int = 0                                       # manifests a queued/running job needs
    kept_young: int = 0                                      # objects within the grace period

    @property
    def bytes(self) -> int:
        return sum(o.size for o in self.manifests) + sum(o.size for o in self.blobs)


def plan_sweep(manifests: Collection[Stored], blobs: Collection[Stored], refs: Mapping[str, set[str]],
               live: Collection[str], cutoff: float, bases: Mapping[str, str] | None = None) -> Sweep:
    """Manifests older than `cutoff` that no live job names go; then blobs older than `cutoff` that no
    kept manifest names (`refs`: manifest -> its blobs; a manifest that could not be read keeps nothing).
    `bases`: a delta manifest -> the manifest it is stored against; a kept delta keeps its whole chain."""
    out = Sweep()
    kept: set[str] = set()
    for m in manifests:
        if m.name in live:
            out.kept_live += 1
            kept.add(m.name)
        elif m.mtime >= cutoff:
            out.kept_young += 1
            kept.add(m.name)
    for name in list(kept):
        hops = 0
        while (name := (bases or {}).get(name, "")) and name not in kept and hops < 64:
            kept.add(name)      # the base of a kept delta: the delta cannot be read without it
            hops += 1
    out.manifests = [m for m in manifests if m.name not in kept]
    needed = set().union(*(refs.get(m, set()) for m in kept)) if kept else set()
    for b in blobs:
        if b.name in needed:
            continue
        if b.mtime >= cutoff:
            out.kept_young += 1
        else:
            out.blobs.append(b)
    return out


def _refs(store: SweptStore, names: Collection[str]) -> dict[str, set[str]]:
    from .materialise import load_manifest

    out = {}
    for name in names:
        try:     # a delta is rebuilt on its base: its blobs are the whole context's
            out[name] = set(load_manifest(store, f"sha256:{name}").blobs)
        except ContextError:
            out[name] = set()     # gone or unreadable meanwhile: it protects nothing
    return out


def _bases(store: SweptStore, names: Collection[str]) -> dict[str, str]:
    """Each delta manifest's base (whole manifests have none)."""
    out = {}
    for name in names:
        try:
            delta = parse_delta(store.get_manifest(name))
        except ContextError:
            continue
        if delta is not None:
            out[name] = delta[0]
    return out


def sweep(store: SweptStore, live: Collection[str], grace: float, *, now: float | None = None,
          dry_run: bool = False, say: Callable[[str], None] = lambda _: None) -> Sweep:
    """List, plan and (unless `dry_run`) delete; `say` gets one line per object deleted."""
    cutoff = (time.time() if now is None else now) - grace
    blobs = list(store.list_blobs())
    manifests = list(store.list_manifests())
    names = [m.name for m in manifests]
    plan = plan_sweep(manifests, blobs, _refs(store, names), live, cutoff, _bases(store, names))
    if dry_run:
        return plan
    for m in plan.manifests:
        store.delete_manifest(m.name)
        say(f"context manifest sha256:{m.name} ({m.size} bytes)")
    # A context uploaded since the listing may reuse old blobs: list again and spare what it names.
    fresh = [m.name for m in store.list_manifests() if m.name not in {x.name for x in manifests}]
    spared = set().union(*_refs(store, fresh).values()) if fresh else set()
    plan.blobs = [b for b in plan.blobs if b.name not in spared]
    for b in plan.blobs:
        store.delete_blob(b.name)
        say(f"context blob sha256:{b.name} ({b.size} bytes)")
    return plan


def open_swept_store(url: str) -> SweptStore:
    """`open_store`, for the sweep: both backends list and delete."""
    from .store import open_store

    return cast(SweptStore, open_store(url))


# --- the filesystem backend's listing (S3's is in s3_store) ----------------------------------------

def fs_list(root: Path, kind: str) -> Iterator[Stored]:
    """Objects under `blobs/sha256/<2>/` or `manifests/sha256/`, skipping temp files of writers."""
    base = root / kind / "sha256"
    if not base.is_dir():
        return
    dirs = [base / d for d in sorted(os.listdir(base)) if (base / d).is_dir()] if kind == "blobs" else [base]
    for d in dirs:
        for entry in os.scandir(d):
            name = entry.name.removesuffix(".json")
            if entry.is_file() and is_blob_hex(name):
                st = entry.stat()
                yield Stored(name, st.st_size, st.st_mtime)


def fs_delete(root: Path, key: str) -> None:
    try:
        (root / key).unlink()
    except FileNotFoundError:
        pass


def s3_object(key: str, obj: Mapping[str, Any]) -> Stored | None:
    """A listed S3 object as Stored, None for anything that is not a blob or manifest."""
    name = key.rsplit("/", 1)[-1].removesuffix(".json")
    if not is_blob_hex(name):
        return None
    return Stored(name, int(obj.get("Size", 0)), obj["LastModified"].timestamp())


__all__ = ["Stored", "Sweep", "SweptStore", "blob_key", "fs_delete", "fs_list", "manifest_key", "open_swept_store", "plan_sweep",
           "s3_object", "sweep"]
