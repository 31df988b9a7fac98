"""Producer side: send the blobs the store lacks, concurrently, then the manifest."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .delta import MAX_DEPTH, make_delta
from .index import HashIndex, LastUpload
from .manifest import ContextManifest
from .store import ContextStore

Progress = Callable[[int, int], None]
MAX_BASE_AGE_S = 3600.0


@dataclass(frozen=True)
class UploadStats:
    """What `farm build --json` reports as `context`; `manifest_bytes` is sent on top of `uploaded_bytes`."""

    digest: str
    files: int
    bytes: int
    uploaded_files: int
    uploaded_bytes: int
    manifest_bytes: int = 0
    skipped_files: int = 0  # blobs the store already had


def upload_context(store: ContextStore, root: Path, manifest: ContextManifest,
                   progress: Progress | None = None, workers: int = 8, *,
                   index: HashIndex | None = None) -> UploadStats:
    """Upload the blobs of `manifest` the store does not have, then the manifest itself.

    The manifest goes last, so a reader that finds it finds a complete context. `progress` is called
    with (bytes sent so far, bytes to send). With `index`, blobs of the manifest last uploaded to
    this store (still present there) are not asked about again.
    """
    blobs = manifest.blobs
    candidates = set(blobs)
    last = index.last_upload(store.url) if index is not None else None
    if last is not None and not store.has_manifest(last.digest.removeprefix("sha256:")):
        last = None
    if last is not None:
        candidates -= last.blobs
    missing = sorted(store.missing(candidates)) if candidates else []
    total = sum(blobs[sha].size for sha in missing)
    done = 0
    lock = threading.Lock()
    if progress is not None:
        progress(0, total)

    def send(sha: str) -> int:
        nonlocal done
        n = store.put_blob(sha, Path(os.path.join(root, blobs[sha].path)))
        if progress is not None:
            with lock:
                done += n
                progress(done, total)
        return n

    workers = min(workers, getattr(store, "max_writers", workers))  # a store may know its best concurrency
    if len(missing) > 1 and workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            sent = sum(pool.map(send, missing))
    else:
        sent = sum(send(sha) for sha in missing)

    if last is not None and last.digest == manifest.digest:
        data, depth = b"", last.depth        # the store has this very manifest: nothing to send
    else:
        data, depth = _manifest_bytes(manifest, last)
        store.put_manifest(manifest.digest.removeprefix("sha256:"), data)
    if index is not None:
        index.record_upload(store.url, manifest, depth)
    return UploadStats(digest=manifest.digest, files=len(manifest.entries), bytes=manifest.total_bytes,
                       uploaded_files=len(missing), uploaded_bytes=sent, manifest_bytes=len(data),
                       skipped_files=len(blobs) - len(missing))


def _manifest_bytes(manifest: ContextManifest, last: LastUpload | None) -> tuple[bytes, int]:
    """What to store under the manifest's key, and its delta depth: the difference from the last
    manifest this checkout uploaded to this store when that one is still there and the chain is short,
    else the whole manifest."""
    whole = manifest.to_json()
    # An old base may be swept by `farm gc` (manifests no job needs, past a grace of hours) between
    # this check and the delta landing: only a base uploaded within the last hour is built on.
    if last is None or last.depth + 1 > MAX_DEPTH or last.age > MAX_BASE_AGE_S:
        return whole, 0
    delta = make_delta(last.digest.removeprefix("sha256:"), last.rows, last.depth + 1, manifest)
    return (delta, last.depth + 1) if len(delta) < len(whole) // 2 else (whole, 0)
