"""Worker-local blob cache: verified blobs by digest, hardlinked (or copied) into build directories.

Eviction is LRU by size. A blob's atime is the LRU clock: it is set explicitly on every use, so it
works on noatime mounts too.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path

from farm.errors import ContextError

from .manifest import FILE_MODE
from .store import CHUNK, ContextStore, blob_key

_COPY_ERRNOS = {errno.EXDEV, errno.EMLINK, errno.EPERM, errno.EACCES, errno.ENOTSUP}


class BlobCache:
    """Blobs under `root`, at most `max_bytes` after each eviction (a materialise may pass it meanwhile).

    Hits are re-hashed before use by default: a linked blob shares its inode with build directories,
    and a build that wrote to its input must not poison the next build.
    """

    def __init__(self, root: Path, max_bytes: int, *, verify_hits: bool = True) -> None:
        self.root = Path(root).absolute()
        self.max_bytes = max_bytes
        self.verify_hits = verify_hits
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._size = sum(size for _, size, _ in self._scan())
        self.hits = 0
        self.misses = 0
        self.fetched_bytes = 0

    def path(self, sha: str) -> Path:
        return self.root / blob_key(sha)

    def has(self, sha: str) -> bool:
        return self.path(sha).exists()

    def fetch(self, store: ContextStore, sha: str, size: int, what: str) -> None:
        """Download a blob into the cache, verifying size and digest before it becomes visible."""
        dest = self.path(sha)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            h, n = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out, store.open_blob(sha) as src:
                while chunk := src.read(CHUNK):
                    n += len(chunk)
                    if n > size:  # stop at once: a wrong blob must not fill the disk
                        break
                    h.update(chunk)
                    out.write(chunk)
            if n != size or h.hexdigest() != sha:
                raise ContextError(f"{what}: blob sha256:{sha} from {store.url} is corrupt (content "
                                   f"does not match its digest{'' if n == size else ' or size'}); not used")
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)  # atomic: concurrent fetchers of one blob are safe
        except BaseException:
            _unlink_quietly(tmp)
            raise
        with self._lock:
            self.misses += 1
            self.fetched_bytes += n
            self._size += n

    def place(self, sha: str, dest: str, mode: int, *, verify: bool) -> bool:
        """Put blob `sha` at `dest` (which must not exist) with `mode`. False if the blob vanished
        (evicted meanwhile) or failed verification and was dropped: the caller fetches it again."""
        src = self.path(sha)
        try:
            if mode == FILE_MODE:
                try:
                    os.link(src, dest)  # cache files are 0644, so only plain files can share the inode
                except OSError as exc:
                    if exc.errno not in _COPY_ERRNOS:
                        raise
                    _copy(src, dest, mode)
            else:
                _copy(src, dest, mode)
        except FileNotFoundError:
            if os.path.lexists(dest):
                raise
            return False
        if verify and _sha256_of(dest) != sha:
            os.unlink(dest)
            self.drop(sha)
            return False
        try:
            os.utime(src, ns=(time.time_ns(), os.stat(src).st_mtime_ns))  # LRU clock
        except FileNotFoundError:
            pass
        return True

    def drop(self, sha: str) -> None:
        try:
            size = self.path(sha).stat().st_size
            os.unlink(self.path(sha))
        except FileNotFoundError:
            return
        with self._lock:
            self._size -= size

    def evict(self) -> int:
        """Remove least recently used blobs until the cache fits `max_bytes`; returns bytes freed."""
        with self._lock:
            if self._size <= self.max_bytes:
                return 0
        blobs = sorted(self._scan(), key=lambda t: t[2])  # oldest use first; rescan: other workers share it
        total = sum(size for _, size, _ in blobs)
        freed = 0
        for path, size, _ in blobs:
            if total - freed <= self.max_bytes:
                break
            try:
                os.unlink(path)
                freed += size
            except FileNotFoundError:
                pass
        with self._lock:
            self._size = total - freed
        return freed

    def _scan(self) -> list[tuple[str, int, int]]:
        out: list[tuple[str, int, int]] = []
        blobs = self.root / "blobs" / "sha256"
        if not blobs.is_dir():
            return out
        for shard in os.scandir(blobs):
            if shard.is_dir(follow_symlinks=False):
                for f in os.scandir(shard.path):
                    try:
                        st = f.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    out.append((f.path, st.st_size, st.st_atime_ns))
        return out


def _copy(src: Path, dest: str, mode: int) -> None:
    with open(src, "rb") as s:
        # O_EXCL|O_NOFOLLOW: never write through anything that already sits at dest
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as d:
            while chunk := s.read(CHUNK):
                d.write(chunk)
            os.fchmod(d.fileno(), mode & 0o777)


def _sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
