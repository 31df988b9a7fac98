"""The rules a context must obey before a byte of it is written: paths, symlinks, modes, limits.

Pure functions on strings and manifests; the producer and the worker apply the same rules, so a
manifest the producer made is never refused by a worker, and a crafted one is refused whole.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from farm.errors import ContextError

if TYPE_CHECKING:
    from .manifest import ContextManifest

_MAX_SYMLINK_HOPS = 40  # the kernel's own limit (MAXSYMLINKS)
_MAX_PATH = 4096


@dataclass(frozen=True)
class Limits:
    """Per-context ceilings a worker enforces, so a huge or hostile context is refused, not written."""

    max_files: int = 100_000
    max_bytes: int = 10 * 1024**3


def is_blob_hex(value: object) -> bool:
    # strip() removes every leading and trailing lowercase hex digit: nothing left means all were
    # (a C-level scan, several times faster than the regex on the 10k digests of a manifest)
    return isinstance(value, str) and len(value) == 64 and not value.strip("0123456789abcdef")


def check_digest(digest: str) -> str:
    """Return the hex of a "sha256:<hex>" context digest, refusing anything else (it becomes a store key)."""
    if not isinstance(digest, str) or not digest.startswith("sha256:") or not is_blob_hex(digest[7:]):
        raise ContextError(f"{digest!r} is not a context digest (expected sha256:<64 hex digits>)")
    return digest[7:]


def check_relpath(path: str, *, where: str) -> None:
    """A context path is relative, normalised POSIX, without `..`, `.`, empty parts or NUL."""
    def bad(why: str) -> ContextError:
        return ContextError(f"{where}: path {path!r} refused: {why}")

    if not path:
        raise bad("empty path")
    if "\x00" in path:
        raise bad("contains a NUL byte")
    if len(path) > _MAX_PATH:
        raise bad(f"longer than {_MAX_PATH} characters")
    if path.startswith("/"):
        raise bad("absolute path")
    for part in path.split("/"):
        if part == "..":
            raise bad("contains '..'")
        if part in ("", "."):
            raise bad("not a normalised relative path (empty or '.' component)")


def symlink_stays_inside(path: str, target: str, links: dict[str, str]) -> bool:
    """Whether the symlink `path` -> `target` resolves inside the context root.

    Resolved by name through the context's other symlinks (`links`), so a chain of individually
    harmless links that climbs out (a/s -> ../../z, a/t -> s/../..) is caught too.
    """
    if not target or target.startswith("/") or "\x00" in target:
        return False
    stack = path.split("/")[:-1]
    pending = list(reversed(target.split("/")))
    hops = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not stack:
                return False
            stack.pop()
            continue
        stack.append(part)
        hop = links.get("/".join(stack))
        if hop is not None:
            hops += 1
            if hops > _MAX_SYMLINK_HOPS or hop.startswith("/"):
                return False  # a loop cannot be judged safe; an absolute hop leaves the root
            stack.pop()
            pending.extend(reversed(hop.split("/")))
    return True


def check_manifest(manifest: ContextManifest, limits: Limits, *, name: str) -> None:
    """Refuse a manifest that could write outside its directory, create special files or fill a disk."""
    from .manifest import EXEC_MODE, FILE_MODE, SYMLINK_MODE

    n = len(manifest.entries)
    if n > limits.max_files:
        raise ContextError(f"context {name}: {n} files, more than the limit of {limits.max_files}")
    paths: set[str] = set()
    links: dict[str, str] = {}
    total = 0
    for e in manifest.entries:
        where = f"context {name}"
        check_relpath(e.path, where=where)
        if e.path in paths:
            raise ContextError(f"{where}: path {e.path!r} refused: listed twice")
        paths.add(e.path)
        if e.mode == SYMLINK_MODE:
            if e.target is None or e.sha256 is not None:
                raise ContextError(f"{where}: path {e.path!r} refused: symlink entry without a target")
            links[e.path] = e.target
        elif e.mode in (FILE_MODE, EXEC_MODE):
            if e.target is not None or not is_blob_hex(e.sha256) or e.size < 0:
                raise ContextError(f"{where}: path {e.path!r} refused: file entry needs a sha256 and a size")
            total += e.size
        else:
            raise ContextError(f"{where}: path {e.path!r} refused: {_mode_problem(e.mode)}")
    if total > limits.max_bytes:
        raise ContextError(f"context {name}: {total} bytes, more than the limit of {limits.max_bytes}")

    judged: set[str] = set()  # directories already found to be neither a file nor a symlink
    for p in paths:
        # Any proper prefix that is itself an entry is a file or a symlink: writing p would go through it.
        i = p.find("/")
        while i != -1:
            prefix = p[:i]
            if prefix not in judged:
                if prefix in links:
                    raise ContextError(f"context {name}: path {p!r} refused: goes through the symlink {prefix!r}")
                if prefix in paths:
                    raise ContextError(f"context {name}: path {p!r} refused: its parent {prefix!r} is a file")
                judged.add(prefix)
            i = p.find("/", i + 1)
    for p, target in links.items():
        if not symlink_stays_inside(p, target, links):
            raise ContextError(f"context {name}: symlink {p!r} -> {target!r} refused: "
                               "absolute, looping or pointing outside the context")


def _mode_problem(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return f"device file (mode {mode:o})"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return f"fifo or socket (mode {mode:o})"
    if stat.S_ISDIR(mode):
        return f"directory entry (mode {mode:o}); directories are implied by file paths"
    return f"unsupported mode {mode:o} (only 100644, 100755 and 120000)"
