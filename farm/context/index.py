"""A producer-side stat cache, like git's index: skip re-hashing files whose stat is unchanged.

It also remembers the last manifest uploaded to each store, so the next upload asks the store
only about blobs that manifest did not have (a manifest in the store implies all its blobs are).
Optional: without it every file is hashed and every blob is asked about.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manifest import ContextManifest


@dataclass(frozen=True)
class LastUpload:
    """What the last upload of this checkout left in a store: the base of the next delta."""

    digest: str
    depth: int                 # deltas between it and a whole manifest in the store
    rows: list[list[Any]]      # its entries as its canonical JSON lists them
    blobs: frozenset[str]
    age: float                 # seconds since it was uploaded (a delta is sent only on a recent base)

_FORMAT = 2
# A file modified within this window before it was hashed may change again within the same
# timestamp tick without its stat changing ("racy git"); such entries are not trusted later.
_RACY_NS = 1_000_000_000


def stat_key(st: os.stat_result) -> str:
    """What must be unchanged for a digest to be reused. The mode is not in it: it is read fresh.

    One string per file: the index loads and saves 3x faster than with lists of ints.
    """
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:"


class HashIndex:
    """Digests keyed by (path, stat) for one context root, stored as a JSON file at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._entries: dict[str, str] = {}  # path -> "<stat key><sha256 hex>"
        self._uploads: dict[str, list[Any]] = {}  # store url -> [manifest digest, [blob hex, ...]]
        self._now_ns = time.time_ns()
        self._last: ContextManifest | None = None
        self._last_digest = ""
        try:
            doc = json.loads(self.path.read_bytes())
            entries = doc.get("entries") if isinstance(doc, dict) and doc.get("format") == _FORMAT else None
            if isinstance(entries, dict) and all(isinstance(v, str) and len(v) > 64 for v in entries.values()):
                self._entries = entries
                self._uploads = doc.get("uploads") if isinstance(doc.get("uploads"), dict) else {}
        except (OSError, ValueError):
            pass  # a missing or damaged index only costs a re-hash

    @property
    def entries(self) -> dict[str, str]:
        """path -> stat_key(st) + sha256 hex; read directly by build_manifest's hot loop."""
        return self._entries

    def record(self, rel: str, st: os.stat_result, sha: str, size_read: int) -> None:
        if size_read != st.st_size or max(st.st_mtime_ns, st.st_ctime_ns) > self._now_ns - _RACY_NS:
            self._entries.pop(rel, None)  # changed while read, or too fresh to trust
            return
        self._entries[rel] = stat_key(st) + sha

    def last_upload(self, store_url: str) -> LastUpload | None:
        """The last manifest uploaded to this store: its digest, delta depth, rows and blobs, when this
        index still holds (or kept on disk, verified against that digest) the manifest itself."""
        rec = self._uploads.get(store_url)
        if not rec or not isinstance(rec, list) or not isinstance(rec[0], str):
            return None
        digest = rec[0]
        depth = rec[1] if len(rec) > 1 and type(rec[1]) is int else 0
        at = rec[2] if len(rec) > 2 and isinstance(rec[2], (int, float)) else 0.0
        if self._last is not None and self._last.digest == digest:
            rows: list[list[Any]] = [list(e) for e in self._last.entries]
        else:
            last = self.last_manifest()
            if last is None or last[0] != digest:
                return None
            try:
                rows = json.loads(last[1])["entries"]
            except (ValueError, KeyError, TypeError):
                return None
        return LastUpload(digest, depth, rows, frozenset(r[3] for r in rows if r[3]), time.time() - at)

    def record_upload(self, store_url: str, manifest: ContextManifest, depth: int = 0) -> None:
        # The blobs are not listed here: they are the last manifest's, kept beside the index.
        self._uploads[store_url] = [manifest.digest, depth, time.time()]
        if manifest.digest != self._last_digest:  # the base of the next delta, written by save()
            self._last = manifest

    @property
    def _last_path(self) -> Path:
        return self.path.with_name(self.path.name + ".last-manifest.json")

    def last_manifest(self) -> tuple[str, bytes] | None:
        """The digest and canonical bytes of the last manifest uploaded (the base of the next delta),
        checked against its digest; None when there is none or it does not verify."""
        try:
            data = self._last_path.read_bytes()   # not compressed: zlib cost more than the disk saves
        except OSError:
            return None
        self._last_digest = "sha256:" + hashlib.sha256(data).hexdigest()
        return self._last_digest, data

    def save(self) -> None:
        """Write atomically: a crash leaves the old index or the new one, never half of one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"format": _FORMAT, "entries": self._entries, "uploads": self._uploads}
        _write_atomically(self.path, json.dumps(doc, separators=(",", ":")).encode())
        if self._last is not None:
            _write_atomically(self._last_path, self._last.to_json())
            self._last = None


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".index-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
