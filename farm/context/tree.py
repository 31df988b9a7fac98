"""Worker side: a build directory kept between builds and brought to a new context by the difference.

Materialising 10,000 files into a fresh directory takes seconds even from a warm cache (a hardlink,
a chmod and a verification per file); a one-file change between two builds of the same Build needs
one. A kept tree has a record (its context digest, and each file's blob, mode and stat) written only
after it matched its manifest; the record is removed before the tree is touched, so a tree without
one is never trusted: it is emptied and materialised whole.

On update, every path of the new manifest is checked, not just the changed ones: a file whose stat
differs from the record is re-hashed (kept if its content still matches, replaced otherwise), and
anything in the tree the manifest does not name is removed. So a build always starts from a tree that
matches its manifest, also after a builder or a person wrote into the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from farm.errors import ContextError

from .cache import BlobCache
from .manifest import SYMLINK_MODE, ContextManifest, ManifestEntry
from .materialise import _dirs, _mkdir, load_manifest, materialise
from .safety import Limits
from .store import ContextStore

_RECORD = ".farm-tree.json"   # next to the tree, never inside it: the builder sees only the context
_FORMAT = 1


@dataclass(frozen=True)
class TreeUpdate:
    """What an update did: files placed from the cache, files re-hashed, paths removed."""

    path: Path
    whole: bool        # materialised whole (no trusted record)
    placed: int
    rehashed: int
    removed: int


def _stat_key(st: os.stat_result) -> str:
    # No ctime: a file shares its inode with the blob cache and other kept trees, so every new link
    # and LRU touch moves it (and would re-hash the whole tree); a write into the file moves mtime.
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_mode & 0o7777:o}"


def record_path(tree: Path) -> Path:
    return tree.parent / (tree.name + _RECORD)


def _read_record(tree: Path) -> dict[str, list[str]] | None:
    try:
        doc = json.loads(record_path(tree).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT or not isinstance(doc.get("files"), dict):
        return None
    return doc["files"]  # type: ignore[no-any-return]


def _write_record(tree: Path, digest: str, files: dict[str, list[str]]) -> None:
    path = record_path(tree)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tree-")
    with os.fdopen(fd, "wb") as f:
        f.write(json.dumps({"format": _FORMAT, "digest": digest, "files": files}, separators=(",", ":")).encode())
    os.replace(tmp, path)


def update_tree(store: ContextStore, digest: str, tree: Path, cache: BlobCache, limits: Limits = Limits(),
                *, workers: int = 8) -> TreeUpdate:
    """Bring the kept directory `tree` to context `digest`; the manifest is judged before anything is
    written (as `materialise` does). The caller holds the tree exclusively while it builds from it."""
    tree = tree.absolute()
    manifest = load_manifest(store, digest, limits, cache.root / "manifests")
    known = _read_record(tree)
    record_path(tree).unlink(missing_ok=True)  # from here until the end, the tree is not trusted
    if known is None or not tree.is_dir() or tree.is_symlink():
        if tree.is_symlink() or (tree.exists() and not tree.is_dir()):
            raise ContextError(f"{tree}: kept build directory is not a directory; refusing to use it")
        if tree.exists():
            shutil.rmtree(tree)
        materialise(store, digest, tree, cache, limits, workers=workers)
        fresh = {e.path: [e.sha256 or "", _stat_key(os.lstat(os.path.join(tree, e.path)))]
                 for e in manifest.entries if e.target is None}
        _write_record(tree, digest, fresh)
        return TreeUpdate(tree, True, len(fresh), 0, 0)

    placed = rehashed = removed = 0
    wanted = {e.path: e for e in manifest.entries}
    dirs = set(_dirs(manifest))
    # 1. Anything the manifest does not name goes (a walk: catches what a build or a person added).
    kept_dirs: set[str] = set()
    for path, is_dir in _walk(tree, dirs):
        if path in dirs and is_dir:
            kept_dirs.add(path)
            continue
        if path in wanted and not is_dir:
            continue
        _remove(os.path.join(tree, path))
        removed += 1
    # 2. Directories first, then files, then symlinks (as materialise does). After step 1 every path
    # left in the tree is one the manifest names, as what it names it.
    for d in sorted(dirs - kept_dirs, key=lambda d: (d.count("/"), d)):
        _mkdir(os.path.join(tree, d))
    files: dict[str, list[str]] = {}
    todo: list[ManifestEntry] = []
    prefix, lstat, get = f"{tree}/", os.lstat, known.get  # the hot loop: 10k paths, kept lean
    for e in manifest.entries:
        if e.target is not None:
            continue
        full = prefix + e.path
        try:
            st = lstat(full)
        except FileNotFoundError:
            todo.append(e)
            continue
        rec = get(e.path)
        if rec is not None and rec[0] == e.sha256 and rec[1] == \
                f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}:{st.st_mode & 0o7777:o}":  # _stat_key, inlined
            files[e.path] = rec
            continue
        # A stat the record does not vouch for: the content decides.
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == e.mode & 0o777 and _sha256(full) == e.sha256:
            rehashed += 1
            files[e.path] = [e.sha256, _stat_key(os.lstat(full))]
            continue
        _remove(full)
        removed += 1
        todo.append(e)
    for e in todo:
        assert e.sha256 is not None
        if not cache.has(e.sha256):
            cache.fetch(store, e.sha256, e.size, f"context {digest}: {e.path!r}")
        target = os.path.join(tree, e.path)
        if not cache.place(e.sha256, target, e.mode, verify=True):
            cache.fetch(store, e.sha256, e.size, f"context {digest}: {e.path!r}")
            if not cache.place(e.sha256, target, e.mode, verify=False):
                raise ContextError(f"context {digest}: {e.path!r}: blob sha256:{e.sha256} could not be placed")
        placed += 1
        files[e.path] = [e.sha256, _stat_key(os.lstat(target))]
    for e in manifest.entries:
        if e.mode != SYMLINK_MODE or e.target is None:
            continue
        full = os.path.join(tree, e.path)
        if os.path.islink(full) and os.readlink(full) == e.target:
            continue
        if os.path.lexists(full):
            _remove(full)
        os.symlink(e.target, full)
        placed += 1
    _write_record(tree, digest, files)
    cache.evict()
    return TreeUpdate(tree, False, placed, rehashed, removed)


def _walk(root: Path, dirs: set[str]) -> list[tuple[str, bool]]:
    """Every path under root (relative, POSIX) and whether it is a real directory; a directory not in
    `dirs` (the manifest's) is listed, not entered: it goes whole."""
    out: list[tuple[str, bool]] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(os.path.join(root, rel) if rel else root) as it:
            for entry in it:
                path = f"{rel}/{entry.name}" if rel else entry.name
                is_dir = entry.is_dir(follow_symlinks=False)
                out.append((path, is_dir))
                if is_dir and path in dirs:
                    stack.append(path)
    return out


def _remove(full: str) -> None:
    if os.path.isdir(full) and not os.path.islink(full):
        shutil.rmtree(full)
    elif os.path.lexists(full):
        os.unlink(full)


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


__all__ = ["ContextManifest", "TreeUpdate", "record_path", "update_tree"]
