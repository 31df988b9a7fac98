"""The manifest of a build context: which files it holds, their modes and content digests.

A manifest is a value. Its canonical JSON is hashed to the digest that names the context, so two
machines that see the same files produce the same digest and share every blob in the store.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from farm.errors import ContextError

from .index import HashIndex, stat_key
from .safety import check_relpath, symlink_stays_inside

# Git-style modes: the executable bit is kept, everything else is normalised.
FILE_MODE = 0o100644
EXEC_MODE = 0o100755
SYMLINK_MODE = 0o120000
MANIFEST_VERSION = 1
_WHOLE_READ = 1 << 20  # files up to this size are read in one call: fewer syscalls on the hot path


class ManifestEntry(NamedTuple):
    """One file or symlink of a context. `sha256` is the hex content digest (None for symlinks).

    A NamedTuple rather than a frozen dataclass: 10k of them are made per build, 5x faster.
    """

    path: str
    mode: int
    size: int
    sha256: str | None = None
    target: str | None = None

    @property
    def is_symlink(self) -> bool:
        return self.target is not None


@dataclass(frozen=True)
class ContextManifest:
    """The files of one build context, sorted by path. `skipped_symlinks` is not part of the digest."""

    entries: tuple[ManifestEntry, ...]
    skipped_symlinks: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        """Canonical form: sorted keys, no spaces, ASCII; entries are [path, mode, size, sha256, target]."""
        return self._canonical

    @cached_property
    def _canonical(self) -> bytes:
        doc = {
            "entries": [[e.path, e.mode, e.size, e.sha256, e.target] for e in self.entries],
            "version": MANIFEST_VERSION,
        }
        # ensure_ascii keeps non-UTF-8 file names (surrogate escapes) encodable and round-trippable
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self._canonical).hexdigest()

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries if not e.is_symlink)

    @cached_property
    def blobs(self) -> dict[str, ManifestEntry]:
        """The distinct blobs of the context, each with the first entry that holds it."""
        out: dict[str, ManifestEntry] = {}
        for e in self.entries:
            if e.sha256 is not None and e.sha256 not in out:
                out[e.sha256] = e
        return out

    @classmethod
    def from_json(cls, data: bytes) -> ContextManifest:
        """Parse a manifest; only its shape is checked here (safety.check_manifest judges its paths)."""
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ContextError(f"context manifest is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION:
            raise ContextError(f"context manifest has an unknown format (expected version {MANIFEST_VERSION})")
        raw = doc.get("entries")
        if not isinstance(raw, list):
            raise ContextError("context manifest has no list of entries")
        return cls(entries=tuple(_parse_entry(i, item) for i, item in enumerate(raw)))


def _parse_entry(i: int, item: Any) -> ManifestEntry:
    # The common shape first, by exact types (bool is not int here): a worker parses 10k per build.
    if type(item) is list and len(item) == 5 and type(item[0]) is str and type(item[1]) is int \
            and type(item[2]) is int and (item[3] is None or type(item[3]) is str) \
            and (item[4] is None or type(item[4]) is str):
        return ManifestEntry(*item)
    ok = (
        isinstance(item, list) and len(item) == 5
        and isinstance(item[0], str)
        and isinstance(item[1], int) and not isinstance(item[1], bool)
        and isinstance(item[2], int) and not isinstance(item[2], bool)
        and (item[3] is None or isinstance(item[3], str))
        and (item[4] is None or isinstance(item[4], str))
    )
    if not ok:
        raise ContextError(f"context manifest entry #{i} is malformed: {str(item)[:200]}")
    return ManifestEntry(path=item[0], mode=item[1], size=item[2], sha256=item[3], target=item[4])


def hash_file(path: str) -> tuple[str, int]:
    """sha256 hex and size of a file, read once, in chunks for large files."""
    with open(path, "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        if size <= _WHOLE_READ:
            data = f.read(size + 1)  # +1 notices a file that grew since fstat
            if len(data) <= size:
                return hashlib.sha256(data).hexdigest(), len(data)
            h = hashlib.sha256(data)
            n = len(data)
        else:
            h, n = hashlib.sha256(), 0
        while chunk := f.read(_WHOLE_READ):
            h.update(chunk)
            n += len(chunk)
        return h.hexdigest(), n


def build_manifest(root: Path, files: Iterable[str], *, index: HashIndex | None = None,
                   workers: int = 8) -> ContextManifest:
    """Describe the context formed by `files` (POSIX paths relative to `root`).

    Symlinks that are absolute or resolve outside `root` are left out and listed in
    `skipped_symlinks`; a symlink inside travels as a symlink and is never followed.
    `index` (optional) reuses digests of files whose stat is unchanged, as git's index does.
    """
    root_s = os.fspath(root).rstrip("/") or "/"
    root_real = os.path.realpath(root_s)
    prefix = root_s if root_s.endswith("/") else root_s + "/"
    entries: list[ManifestEntry | None] = []
    todo: list[tuple[int, str, os.stat_result]] = []  # files the index cannot vouch for
    links: dict[str, str] = {}
    skipped: list[str] = []
    checked_dirs: set[str] = {""}
    known = index.entries if index is not None else {}
    lstat, is_reg, is_lnk = os.lstat, stat.S_ISREG, stat.S_ISLNK
    for rel in sorted(dict.fromkeys(files)):  # the hot loop: 10k iterations, kept lean
        if not _plainly_safe(rel):
            check_relpath(rel, where="build context")
        if rel.rpartition("/")[0] not in checked_dirs:
            _check_parents(root_s, rel, checked_dirs)
        full = prefix + rel
        try:
            st = lstat(full)
        except FileNotFoundError:
            raise ContextError(f"{full}: listed in the build context but does not exist") from None
        except OSError as exc:
            raise ContextError(f"{full}: cannot read: {exc.strerror}") from exc
        mode = st.st_mode
        if is_reg(mode):
            rec = known.get(rel)
            if rec is not None and rec[:-64] == stat_key(st):
                entries.append(ManifestEntry(rel, EXEC_MODE if mode & 0o100 else FILE_MODE, st.st_size,
                                             rec[-64:]))
            else:
                todo.append((len(entries), rel, st))
                entries.append(None)
        elif is_lnk(mode):
            target = os.readlink(full)
            real = os.path.realpath(full)
            if os.path.isabs(target) or not (real == root_real or real.startswith(root_real + os.sep)):
                skipped.append(rel)
            else:
                links[rel] = target
        else:
            raise ContextError(f"{full}: not a regular file or symlink (directory, device, fifo or "
                               "socket) and cannot be part of a build context")

    # A defensive second look, with the worker's own rule: an inside symlink must resolve inside
    # through the context's other symlinks too (catches chains realpath judged on a different tree).
    for rel in list(links):
        if not symlink_stays_inside(rel, links[rel], links):
            skipped.append(rel)
            del links[rel]

    for (i, rel, st), (sha, size) in zip(todo, _hash_all(prefix, todo, workers), strict=True):
        entries[i] = ManifestEntry(rel, EXEC_MODE if st.st_mode & 0o100 else FILE_MODE, size, sha)
        if index is not None:
            index.record(rel, st, sha, size)
    done = [e for e in entries if e is not None]
    if links:  # files alone are already in path order
        done += [ManifestEntry(rel, SYMLINK_MODE, 0, None, target) for rel, target in links.items()]
        done.sort(key=itemgetter(0))
    return ContextManifest(entries=tuple(done), skipped_symlinks=tuple(sorted(skipped)))


def _plainly_safe(rel: str) -> bool:
    """Cheap test that lets most paths skip check_relpath (which still judges the rest)."""
    return not (not rel or rel.startswith(("/", ".")) or rel.endswith("/") or "//" in rel or "/." in rel
                or "\x00" in rel or len(rel) > 4096)


def _check_parents(root: str, rel: str, checked: set[str]) -> None:
    """Refuse a listed path that goes through a symlink: reading it would follow the link."""
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        if d in checked:
            continue
        full = os.path.join(root, d)
        if os.path.islink(full):
            raise ContextError(f"{os.path.join(root, rel)}: goes through the symlink {full}; "
                               "a context path must not traverse a symlink")
        checked.add(d)


def _hash_all(prefix: str, todo: list[tuple[int, str, os.stat_result]], workers: int) -> list[tuple[str, int]]:
    def one(item: tuple[int, str, os.stat_result]) -> tuple[str, int]:
        path = prefix + item[1]
        try:
            return hash_file(path)
        except OSError as exc:
            raise ContextError(f"{path}: cannot read: {exc.strerror}") from exc

    if len(todo) > 1 and workers > 1:
        # hashlib and file reads release the GIL, so a few threads overlap I/O and hashing
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, todo))
    return [one(item) for item in todo]
