"""The context store seam: blobs by content digest, manifests by context digest.

Layout (both backends): `blobs/sha256/<2 hex>/<64 hex>` and `manifests/sha256/<64 hex>.json`.
Invariant every writer keeps: a manifest is written only after all its blobs, so a manifest
present in the store names a complete context. Blobs referenced by a manifest are never deleted
while the manifest exists.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import unquote, urlparse

from farm.errors import ContextError

from .safety import is_blob_hex

CHUNK = 1 << 20
MAX_MANIFEST_BYTES = 256 * 1024 * 1024  # ~2M entries; refuse to read anything larger


def blob_key(sha: str) -> str:
    if not is_blob_hex(sha):  # digests become store paths/keys: never let a crafted one traverse
        raise ContextError(f"{sha!r} is not a sha256 blob digest")
    return f"blobs/sha256/{sha[:2]}/{sha}"


def manifest_key(hex_digest: str) -> str:
    if not is_blob_hex(hex_digest):
        raise ContextError(f"{hex_digest!r} is not a sha256 context digest")
    return f"manifests/sha256/{hex_digest}.json"


class ContextStore(Protocol):
    """Where contexts live between the producer and the workers."""

    url: str

    def missing(self, blobs: Collection[str]) -> set[str]:
        """Which of these blob digests the store does not hold, asked in as few round trips as it allows."""
        ...

    def put_blob(self, sha: str, src: Path) -> int:
        """Store the file `src` as blob `sha`; raise ContextError if its content does not hash to `sha`.

        Returns the bytes sent. Safe to call concurrently for the same blob from any number of writers.
        """
        ...

    def open_blob(self, sha: str) -> BinaryIO:
        """A readable stream of the blob; ContextError if the store lacks it. The caller verifies it."""
        ...

    def has_manifest(self, hex_digest: str) -> bool: ...

    def put_manifest(self, hex_digest: str, data: bytes) -> None: ...

    def get_manifest(self, hex_digest: str) -> bytes:
        """The manifest's bytes (at most MAX_MANIFEST_BYTES); ContextError if absent."""
        ...


def read_verified(src: Path, sha: str, sink: BinaryIO | None = None) -> bytes | int:
    """Read `src` once, hashing it; if `sink` is None return its bytes, else copy into `sink` and return
    the size. Raise ContextError if the content no longer matches `sha` (the file changed since hashed)."""
    h = hashlib.sha256()
    parts: list[bytes] = []
    n = 0
    try:
        with open(src, "rb", buffering=0) as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
                n += len(chunk)
                if sink is None:
                    parts.append(chunk)
                else:
                    sink.write(chunk)
    except OSError as exc:
        raise ContextError(f"{src}: cannot read: {exc.strerror}") from exc
    if h.hexdigest() != sha:
        raise ContextError(f"{src}: changed while the context was being uploaded (content no longer "
                           f"matches sha256:{sha}); re-run the build")
    return b"".join(parts) if sink is None else n


def open_store(url: str) -> ContextStore:
    """`file:///abs/dir` or a plain path -> filesystem store; `s3://bucket/prefix` -> S3 store.

    S3: endpoint from FARM_S3_ENDPOINT_URL (else boto3's defaults), credentials from the AWS env.
    """
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        from .s3_store import S3Store  # boto3 is imported only when an S3 store is used

        if not parsed.netloc:
            raise ContextError(f"context store {url!r}: no bucket (expected s3://bucket/prefix)")
        return S3Store(parsed.netloc, parsed.path.strip("/"),
                       endpoint_url=os.environ.get("FARM_S3_ENDPOINT_URL") or None)
    from .fs_store import FsStore

    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ContextError(f"context store {url!r}: file URLs must be local (file:///abs/dir)")
        return FsStore(Path(unquote(parsed.path)))
    if parsed.scheme:
        raise ContextError(f"context store {url!r}: unknown scheme {parsed.scheme!r} (file:// or s3://)")
    return FsStore(Path(url))
