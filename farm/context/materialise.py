"""Worker side: turn a context digest into a build directory, from the local cache and the store."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from farm.errors import ContextError

from .cache import BlobCache
from .delta import MAX_DEPTH, apply_delta, parse_delta
from .manifest import ContextManifest, ManifestEntry
from .safety import Limits, check_digest, check_manifest
from .store import ContextStore

_MARKS = "materialised"  # under the cache root: which build directories are ours to clean
_DEFAULT_LIMITS = Limits()


def materialise(store: ContextStore, digest: str, dest_dir: Path, cache: BlobCache,
                limits: Limits = _DEFAULT_LIMITS, *, workers: int = 8) -> Path:
    """Write context `digest` into `dest_dir` (the builder's input) and return its path.

    The whole manifest is judged before anything is written; every blob is verified against its
    digest; `dest_dir` must be empty or a directory this cache materialised before (then it is
    cleaned). On failure `dest_dir` is left empty.
    """
    manifest = load_manifest(store, digest, limits, cache.root / "manifests")
    dest = _prepare(Path(dest_dir), cache)
    try:
        _write(store, manifest, dest, cache, workers, digest)
    except BaseException:
        _empty(dest)
        raise
    cache.evict()
    return dest


def load_manifest(store: ContextStore, digest: str, limits: Limits = _DEFAULT_LIMITS,
                  local: Path | None = None) -> ContextManifest:
    """The manifest of context `digest` from the store, verified against its digest and judged whole
    (paths, symlinks, modes, limits) before anything is written. `local`: a directory of whole
    manifests this worker rebuilt before, so a delta's base is read there rather than rebuilt."""
    manifest = _read_manifest(store, check_digest(digest), digest, 0, local)
    check_manifest(manifest, limits, name=digest)
    return manifest


def _read_manifest(store: ContextStore, hex_digest: str, digest: str, hops: int,
                   local: Path | None) -> ContextManifest:
    """A whole manifest (kept in `local`, checked against its digest on every read), or a delta rebuilt
    on its base (at most MAX_DEPTH deep); either way it must hash to the digest that names it."""
    if local is not None:
        try:
            data = (local / f"{hex_digest}.json").read_bytes()
            if hashlib.sha256(data).hexdigest() == hex_digest:
                return ContextManifest.from_json(data)
        except OSError:
            pass
    data = store.get_manifest(hex_digest)
    if hashlib.sha256(data).hexdigest() == hex_digest:
        if local is not None and hops == 0:
            _keep(local, hex_digest, data)
        return ContextManifest.from_json(data)
    delta = parse_delta(data)
    if delta is not None and hops < MAX_DEPTH:
        base_hex, _, put, remove = delta
        manifest = apply_delta(_read_manifest(store, base_hex, digest, hops + 1, local), put, remove)
        whole = manifest.to_json()
        if hashlib.sha256(whole).hexdigest() == hex_digest:
            if local is not None and hops == 0:
                _keep(local, hex_digest, whole)
            return manifest
    raise ContextError(f"context {digest}: the manifest in {store.url} is corrupt "
                       "(its content does not match its digest)")


_KEEP_MANIFESTS = 64


def _keep(local: Path, hex_digest: str, whole: bytes) -> None:
    """Keep a rebuilt manifest (the next delta's base), and only the most recent few."""
    try:
        local.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=local, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(whole)
        os.replace(tmp, local / f"{hex_digest}.json")
        kept = sorted(local.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in kept[:-_KEEP_MANIFESTS]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # only a cache: the store still has everything


def _mark(dest: Path, cache: BlobCache) -> Path:
    return cache.root / _MARKS / hashlib.sha256(os.fsencode(dest)).hexdigest()


def _prepare(dest_dir: Path, cache: BlobCache) -> Path:
    dest = dest_dir.absolute()
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ContextError(f"{dest}: build directory exists and is not a directory; refusing to use it")
    mark = _mark(dest, cache)
    if dest.exists() and any(os.scandir(dest)):
        if not mark.exists():
            raise ContextError(f"{dest}: build directory is not empty and was not made by farm; "
                               "refusing to overwrite it")
        _empty(dest)
    dest.mkdir(parents=True, exist_ok=True)
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.write_text(os.fsdecode(dest))
    return dest


def _empty(dest: Path) -> None:
    for child in os.scandir(dest):
        if child.is_dir(follow_symlinks=False):
            shutil.rmtree(child.path)  # rmtree never follows symlinks
        else:
            os.unlink(child.path)


def _write(store: ContextStore, manifest: ContextManifest, dest: Path, cache: BlobCache,
           workers: int, digest: str) -> None:
    files = [e for e in manifest.entries if not e.is_symlink]
    blobs = manifest.blobs
    fresh = {sha for sha in blobs if not cache.has(sha)}
    cache.hits += len(blobs) - len(fresh)

    def what(e: ManifestEntry) -> str:
        return f"context {digest}: {e.path!r}"

    def fetch(sha: str) -> None:
        e = blobs[sha]
        cache.fetch(store, sha, e.size, what(e))

    def place(e: ManifestEntry) -> None:
        assert e.sha256 is not None
        target = os.path.join(dest, e.path)
        for attempt in range(3):
            if cache.place(e.sha256, target, e.mode, verify=attempt == 0 and e.sha256 not in fresh):
                return
            fetch(e.sha256)  # evicted by another worker, or the cached copy went bad
        raise ContextError(f"{what(e)}: blob sha256:{e.sha256} could not be placed from the cache")

    def place_file(e: ManifestEntry) -> None:
        _os(place, e, what=what(e))

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(fetch, sorted(fresh)))
        for d in _dirs(manifest):
            _os(_mkdir, os.path.join(dest, d), what=f"context {digest}: {d!r}")
        list(pool.map(place_file, files))
    # Symlinks last: no file is ever written after a link exists that a path could go through.
    for e in manifest.entries:
        if e.target is not None:
            _os(os.symlink, e.target, os.path.join(dest, e.path), what=what(e))


def _mkdir(path: str) -> None:
    os.mkdir(path)
    os.chmod(path, 0o755)  # independent of the worker's umask: the image sees the same modes everywhere


def _dirs(manifest: ContextManifest) -> list[str]:
    """Every directory the manifest's paths imply, parents first."""
    out: set[str] = set()
    for e in manifest.entries:
        # Deepest parent first; once one is known, all of its own parents are too.
        i = e.path.rfind("/")
        while i > 0:
            d = e.path[:i]
            if d in out:
                break
            out.add(d)
            i = d.rfind("/")
    return sorted(out, key=lambda d: (d.count("/"), d))


def _os(action: Callable[..., object], *args: object, what: str) -> None:
    try:
        action(*args)
    except OSError as exc:
        raise ContextError(f"{what}: cannot write into the build directory: {exc.strerror}") from exc
