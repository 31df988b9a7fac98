"""Upload, cache and materialise against the real filesystem store (fs_store, upload, cache, materialise)."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import stat
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

import pytest

from farm.context import (
    BlobCache,
    ContextManifest,
    ContextStore,
    HashIndex,
    Limits,
    ManifestEntry,
    build_manifest,
    materialise,
    open_store,
    upload_context,
)
from farm.context.fs_store import FsStore
from farm.context.manifest import EXEC_MODE, FILE_MODE, SYMLINK_MODE
from farm.context.store import blob_key
from farm.errors import ContextError
from tests.conftest import run_together


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tree(root: Path) -> list[str]:
    files = {
        "Dockerfile": b"FROM scratch\nCOPY . /\n",
        "src/app/main.py": b"print('hello')\n",
        "src/app/util.py": b"X = 1\n",
        "src/app/copy.py": b"X = 1\n",  # same content as util.py: one blob
        "data/blob.bin": os.urandom(300_000),
        "bin/run": b"#!/bin/sh\necho hi\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    os.chmod(root / "bin/run", 0o755)
    os.symlink("app/main.py", root / "src/entry.py")
    os.symlink("src/app", root / "applink")
    os.symlink("/etc/passwd", root / "abs-link")
    return sorted([*files, "src/entry.py", "applink", "abs-link"])


def snapshot(root: Path) -> dict[str, tuple[str, object]]:
    """Everything under root: files with mode and content digest, symlinks with their target."""
    out: dict[str, tuple[str, object]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", oct(st.st_mode & 0o777))
            else:
                out[rel] = (oct(st.st_mode & 0o777), sha(p.read_bytes()))
    return out


class Counting:
    """A store wrapper that records what is asked of the real store."""

    def __init__(self, store: ContextStore) -> None:
        self.store = store
        self.url = store.url
        self.asked: list[set[str]] = []
        self.opened: list[str] = []
        self.put: list[str] = []

    def missing(self, blobs: Collection[str]) -> set[str]:
        self.asked.append(set(blobs))
        return self.store.missing(blobs)

    def put_blob(self, sha: str, src: Path) -> int:
        self.put.append(sha)
        return self.store.put_blob(sha, src)

    def open_blob(self, sha: str) -> BinaryIO:
        self.opened.append(sha)
        return self.store.open_blob(sha)

    def has_manifest(self, hex_digest: str) -> bool:
        return self.store.has_manifest(hex_digest)

    def put_manifest(self, hex_digest: str, data: bytes) -> None:
        self.store.put_manifest(hex_digest, data)

    def get_manifest(self, hex_digest: str) -> bytes:
        return self.store.get_manifest(hex_digest)


@pytest.fixture
def src(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "repo"
    root.mkdir()
    return root, make_tree(root)


@pytest.fixture
def store(tmp_path: Path) -> FsStore:
    return FsStore(tmp_path / "store")


def expected_tree(root: Path, files: list[str]) -> dict[str, tuple[str, object]]:
    snap = snapshot(root)
    keep = set(files) - {"abs-link"}
    return {k: v for k, v in snap.items()
            if k in keep or any(f.startswith(k + "/") for f in keep)}


# --- upload ---------------------------------------------------------------------------------------

def test_upload_then_materialise_on_a_second_machine(src: tuple[Path, list[str]], store: FsStore,
                                                     tmp_path: Path) -> None:
    root, files = src
    m = build_manifest(root, files)
    assert m.skipped_symlinks == ("abs-link",)
    stats = upload_context(store, root, m)
    assert (stats.files, stats.bytes, stats.uploaded_files) == (len(m.entries), m.total_bytes, 5)
    assert stats.uploaded_bytes == m.total_bytes - len(b"X = 1\n")  # the duplicate is sent once
    assert stats.digest == m.digest

    # "another machine": a fresh store object on the same shared volume, an empty cache
    other = Counting(open_store((tmp_path / "store").as_uri()))
    cache = BlobCache(tmp_path / "node2" / "cache", 1 << 30)
    dest = materialise(other, m.digest, tmp_path / "node2" / "build", cache)
    assert snapshot(dest) == expected_tree(root, files)
    assert os.readlink(dest / "applink") == "src/app"  # travels as a symlink, not followed
    assert (dest / "bin/run").stat().st_mode & 0o777 == 0o755
    assert (dest / "Dockerfile").stat().st_mode & 0o777 == 0o644
    assert sorted(other.opened) == sorted(m.blobs)
    assert (cache.misses, cache.hits) == (5, 0)


def test_reupload_sends_nothing_then_one_blob_after_one_change(src: tuple[Path, list[str]],
                                                               store: FsStore) -> None:
    root, files = src
    upload_context(store, root, build_manifest(root, files))
    again = upload_context(store, root, build_manifest(root, files))
    assert (again.uploaded_files, again.uploaded_bytes) == (0, 0)

    (root / "src/app/main.py").write_bytes(b"print('changed')\n")
    changed = build_manifest(root, files)
    stats = upload_context(store, root, changed)
    assert (stats.uploaded_files, stats.uploaded_bytes) == (1, len(b"print('changed')\n"))
    assert store.has_manifest(changed.digest.removeprefix("sha256:"))


def test_with_an_index_only_new_blobs_are_asked_about(src: tuple[Path, list[str]], store: FsStore,
                                                      tmp_path: Path) -> None:
    root, files = src
    index = HashIndex(tmp_path / "index.json")
    counting = Counting(store)
    upload_context(counting, root, build_manifest(root, files, index=index), index=index)
    index.save()
    (root / "src/app/main.py").write_bytes(b"print('changed')\n")
    index = HashIndex(tmp_path / "index.json")
    stats = upload_context(counting, root, build_manifest(root, files, index=index), index=index)
    assert counting.asked[-1] == {sha(b"print('changed')\n")}
    assert stats.uploaded_files == 1


def test_index_trusts_the_store_only_while_the_last_manifest_is_there(
        src: tuple[Path, list[str]], store: FsStore, tmp_path: Path) -> None:
    root, files = src
    index = HashIndex(tmp_path / "index.json")
    first = build_manifest(root, files, index=index)
    upload_context(store, root, first, index=index)
    os.unlink(store.root / "manifests" / "sha256" / f"{first.digest[7:]}.json")
    os.unlink(store.root / blob_key(sha(b"X = 1\n")))  # the store lost data: ask about everything again
    counting = Counting(store)
    stats = upload_context(counting, root, build_manifest(root, files, index=index), index=index)
    assert counting.asked[-1] == set(first.blobs)
    assert stats.uploaded_files == 1


def test_progress_reports_bytes_to_send(src: tuple[Path, list[str]], store: FsStore) -> None:
    root, files = src
    m = build_manifest(root, files)
    calls: list[tuple[int, int]] = []
    stats = upload_context(store, root, m, progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, stats.uploaded_bytes)
    assert calls[-1] == (stats.uploaded_bytes, stats.uploaded_bytes)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_the_manifest_is_uploaded_last(src: tuple[Path, list[str]], store: FsStore) -> None:
    root, files = src
    m = build_manifest(root, files)
    seen: list[bool] = []

    class Watching(Counting):
        def put_blob(self, sha: str, src: Path) -> int:
            seen.append(self.store.has_manifest(m.digest[7:]))
            return super().put_blob(sha, src)

    upload_context(Watching(store), root, m)
    assert seen and not any(seen)


def test_a_file_changed_after_hashing_is_not_stored(src: tuple[Path, list[str]], store: FsStore) -> None:
    root, files = src
    m = build_manifest(root, files)
    (root / "Dockerfile").write_bytes(b"FROM scratch\nRUN evil\n")
    with pytest.raises(ContextError, match="Dockerfile: changed while the context was being uploaded"):
        upload_context(store, root, m, workers=1)
    entry = next(e for e in m.entries if e.path == "Dockerfile")
    assert entry.sha256 is not None
    assert store.missing([entry.sha256]) == {entry.sha256}
    assert not store.has_manifest(m.digest[7:])
    assert not list((store.root / "blobs").rglob(".tmp-*"))


def _upload_in_process(args: tuple[str, str, list[str]]) -> int:
    store_dir, root, files = args
    return upload_context(open_store(store_dir), Path(root), build_manifest(Path(root), files)).uploaded_files


def test_concurrent_uploads_of_the_same_blobs(src: tuple[Path, list[str]], store: FsStore) -> None:
    root, files = src
    m = build_manifest(root, files)
    assert run_together(8, lambda: upload_context(FsStore(store.root), root, m)) == []
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        pool.map(_upload_in_process, [(str(store.root), str(root), files)] * 4)
    stored = [p for p in (store.root / "blobs").rglob("*") if p.is_file()]
    assert sorted(p.name for p in stored) == sorted(m.blobs)  # one file per blob, no temp files left
    for p in stored:
        assert sha(p.read_bytes()) == p.name


# --- materialise --------------------------------------------------------------------------------

def test_second_context_fetches_only_what_the_cache_lacks(src: tuple[Path, list[str]], store: FsStore,
                                                          tmp_path: Path) -> None:
    root, files = src
    first = build_manifest(root, files)
    upload_context(store, root, first)
    counting = Counting(store)
    cache = BlobCache(tmp_path / "cache", 1 << 30)
    materialise(counting, first.digest, tmp_path / "b1", cache)
    (root / "src/app/main.py").write_bytes(b"print('v2')\n")
    second = build_manifest(root, files)
    upload_context(store, root, second)
    counting.opened.clear()
    dest = materialise(counting, second.digest, tmp_path / "b2", cache)
    assert counting.opened == [sha(b"print('v2')\n")]
    assert (dest / "src/app/main.py").read_bytes() == b"print('v2')\n"
    # plain files share the cache's inode (hardlink); executables are copies with their own mode
    assert (dest / "Dockerfile").stat().st_ino == cache.path(sha(b"FROM scratch\nCOPY . /\n")).stat().st_ino
    assert (dest / "bin/run").stat().st_ino != cache.path(sha(b"#!/bin/sh\necho hi\n")).stat().st_ino


def test_materialise_same_context_twice_from_a_warm_cache(src: tuple[Path, list[str]], store: FsStore,
                                                          tmp_path: Path) -> None:
    root, files = src
    m = build_manifest(root, files)
    upload_context(store, root, m)
    counting = Counting(store)
    cache = BlobCache(tmp_path / "cache", 1 << 30)
    materialise(counting, m.digest, tmp_path / "b", cache)
    counting.opened.clear()
    dest = materialise(counting, m.digest, tmp_path / "b", cache)  # ours: cleaned and redone
    assert counting.opened == []
    assert cache.hits == len(m.blobs)
    assert snapshot(dest) == expected_tree(root, files)


def test_corrupted_blob_in_the_store_is_never_used(src: tuple[Path, list[str]], store: FsStore,
                                                   tmp_path: Path) -> None:
    root, files = src
    m = build_manifest(root, files)
    upload_context(store, root, m)
    bad = sha(b"print('hello')\n")
    path = store.root / blob_key(bad)
    os.chmod(path, 0o644)
    path.write_bytes(b"print('HELLO')\n")  # same size, different content
    cache = BlobCache(tmp_path / "cache", 1 << 30)
    with pytest.raises(ContextError, match=r"'src/app/main.py'.*blob sha256:" + bad + ".*corrupt"):
        materialise(store, m.digest, tmp_path / "b", cache)
    assert list((tmp_path / "b").iterdir()) == []
    assert not cache.has(bad)
    assert not list((cache.root / "tmp").iterdir())


def test_oversized_blob_in_the_store_is_cut_short(src: tuple[Path, list[str]], store: FsStore,
                                                  tmp_path: Path) -> None:
    root, files = src
    m = build_manifest(root, files)
    upload_context(store, root, m)
    bad = sha(b"X = 1\n")
    path = store.root / blob_key(bad)
    os.chmod(path, 0o644)
    path.write_bytes(b"X = 1\n" + b"A" * 5_000_000)
    cache = BlobCache(tmp_path / "cache", 1 << 30)
    with pytest.raises(ContextError, match="corrupt.*size"):
        materialise(store, m.digest, tmp_path / "b", cache)


def test_missing_blob_is_named(src: tuple[Path, list[str]], store: FsStore, tmp_path: Path) -> None:
    root, files = src
    m = build_manifest(root, files)
    upload_context(store, root, m)
    gone = sha(b"X = 1\n")
    os.unlink(store.root / blob_key(gone))
    with pytest.raises(ContextError, match=f"blob sha256:{gone} is missing"):
        materialise(store, m.digest, tmp_path / "b", BlobCache(tmp_path / "cache", 1 << 30))


def test_a_build_that_wrote_into_its_input_does_not_poison_the_cache(
        src: tuple[Path, list[str]], store: FsStore, tmp_path: Path) -> None:
    root, files = src
    m = build_manifest(root, files)
    upload_context(store, root, m)
    cache = BlobCache(tmp_path / "cache", 1 << 30)
    first = materialise(store, m.digest, tmp_path / "b1", cache)
    (first / "Dockerfile").write_bytes(b"FROM scratch\nCOPY . /x\n")  # same inode as the cached blob
    second = materialise(store, m.digest, tmp_path / "b2", cache)
    assert (second / "Dockerfile").read_bytes() == b"FROM scratch\nCOPY . /\n"
    assert sha(cache.path(sha(b"FROM scratch\nCOPY . /\n")).read_bytes()) == sha(b"FROM scratch\nCOPY . /\n")


def test_tampered_manifest_is_refused(src: tuple[Path, list[str]], store: FsStore, tmp_path: Path) -> None:
    root, files = src
    m = build_manifest(root, files)
    upload_context(store, root, m)
    path = store.root / "manifests" / "sha256" / f"{m.digest[7:]}.json"
    os.chmod(path, 0o644)
    path.write_bytes(m.to_json().replace(b"src/app/main.py", b"src/app/evil.py"))
    with pytest.raises(ContextError, match="manifest .* is corrupt"):
        materialise(store, m.digest, tmp_path / "b", BlobCache(tmp_path / "cache", 1 << 30))


def test_unknown_context_is_named(store: FsStore, tmp_path: Path) -> None:
    with pytest.raises(ContextError, match="no context sha256:" + "0" * 64):
        materialise(store, "sha256:" + "0" * 64, tmp_path / "b", BlobCache(tmp_path / "cache", 1 << 30))


def test_foreign_non_empty_directory_is_refused(src: tuple[Path, list[str]], store: FsStore,
                                                tmp_path: Path) -> None:
    root, files = src
    m = build_manifest(root, files)
    upload_context(store, root, m)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "precious").write_text("keep me")
    with pytest.raises(ContextError, match="not empty and was not made by farm"):
        materialise(store, m.digest, tmp_path / "b", BlobCache(tmp_path / "cache", 1 << 30))
    assert (tmp_path / "b" / "precious").read_text() == "keep me"


def test_lru_eviction_by_size(store: FsStore, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    cache = BlobCache(tmp_path / "cache", 2500)
    digests = []
    for i in range(4):
        (root / "f").write_bytes(bytes([i]) * 1000)
        m = build_manifest(root, ["f"])
        upload_context(store, root, m)
        digests.append(m)
        materialise(store, m.digest, tmp_path / f"b{i}", cache)
        # use the first blob again after each step: it stays the most recently used
        materialise(store, digests[0].digest, tmp_path / "again", cache)
    left = {p.name for p in (cache.root / "blobs").rglob("*") if p.is_file()}
    assert left == {digests[0].entries[0].sha256, digests[3].entries[0].sha256}


# --- crafted manifests: refused whole, nothing written anywhere -------------------------------------

PWNED = b"pwned\n"


def craft(store: FsStore, tmp_path: Path, *entries: ManifestEntry) -> str:
    src = tmp_path / "pwned.txt"
    src.write_bytes(PWNED)
    store.put_blob(sha(PWNED), src)
    m = ContextManifest(tuple(entries))
    store.put_manifest(m.digest[7:], m.to_json())
    return m.digest


def F(path: str, mode: int = FILE_MODE) -> ManifestEntry:
    return ManifestEntry(path, mode, len(PWNED), sha(PWNED))


def L(path: str, target: str) -> ManifestEntry:
    return ManifestEntry(path, SYMLINK_MODE, 0, None, target)


UNSAFE = {
    "dotdot": ([F("ok"), F("../escaped")], "'../escaped' refused"),
    "deep-dotdot": ([F("a/b/../../../escaped")], "refused: contains '..'"),
    "absolute": ([F("/tmp/escaped")], "'/tmp/escaped' refused: absolute"),
    "through-symlink": ([L("up", ".."), F("up/escaped")], "'up/escaped' refused: goes through the symlink"),
    "through-inside-symlink": ([L("d", "sub"), F("d/x")], "'d/x' refused: goes through the symlink 'd'"),
    "symlink-out": ([L("out", "../../etc")], "symlink 'out' -> '../../etc' refused"),
    "symlink-abs": ([L("out", "/etc/passwd")], "symlink 'out' -> '/etc/passwd' refused"),
    "char-device": ([F("dev/null", stat.S_IFCHR | 0o666)], "'dev/null' refused: device file"),
    "block-device": ([F("dev/sda", stat.S_IFBLK | 0o660)], "'dev/sda' refused: device file"),
    "fifo": ([F("pipe", stat.S_IFIFO | 0o644)], "'pipe' refused: fifo"),
    "setuid": ([F("su", stat.S_IFREG | 0o4755)], "'su' refused: unsupported mode"),
    "duplicate": ([F("a"), L("a", "b")], "'a' refused: listed twice"),
    "under-a-file": ([F("a"), F("a/b")], "'a/b' refused: its parent 'a' is a file"),
    "nul": ([F("a\x00b")], "refused: contains a NUL"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_crafted_manifest_is_refused_and_nothing_is_written(case: str, store: FsStore, tmp_path: Path) -> None:
    entries, message = UNSAFE[case]
    digest = craft(store, tmp_path, *entries)
    outside = tmp_path / "world"
    outside.mkdir()
    dest = outside / "build"
    with pytest.raises(ContextError, match=message) as exc:
        materialise(store, digest, dest, BlobCache(tmp_path / "cache", 1 << 30))
    assert digest in str(exc.value)
    assert snapshot(outside) == {}  # not even the build directory was created
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


def test_limits_refuse_before_writing(src: tuple[Path, list[str]], store: FsStore, tmp_path: Path) -> None:
    root, files = src
    m = build_manifest(root, files)
    upload_context(store, root, m)
    cache = BlobCache(tmp_path / "cache", 1 << 30)
    with pytest.raises(ContextError, match=f"context {m.digest}: {len(m.entries)} files, more than the limit of 3"):
        materialise(store, m.digest, tmp_path / "b", cache, Limits(max_files=3))
    with pytest.raises(ContextError, match="bytes, more than the limit of 1000"):
        materialise(store, m.digest, tmp_path / "b", cache, Limits(max_bytes=1000))
    assert not (tmp_path / "b").exists()
    assert cache.misses == 0


def test_executable_bit_survives(store: FsStore, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "x").write_bytes(b"#!/bin/sh\n")
    (root / "y").write_bytes(b"#!/bin/sh\n")  # same blob, different mode
    os.chmod(root / "x", 0o755)
    m = build_manifest(root, ["x", "y"])
    assert [e.mode for e in m.entries] == [EXEC_MODE, FILE_MODE]
    upload_context(store, root, m)
    dest = materialise(store, m.digest, tmp_path / "b", BlobCache(tmp_path / "cache", 1 << 30))
    assert (dest / "x").stat().st_mode & 0o777 == 0o755
    assert (dest / "y").stat().st_mode & 0o777 == 0o644


# --- open_store ---------------------------------------------------------------------------------

def test_open_store_urls(tmp_path: Path) -> None:
    a = open_store((tmp_path / "s1").as_uri())
    b = open_store(str(tmp_path / "s2"))
    assert isinstance(a, FsStore) and a.root == tmp_path / "s1"
    assert isinstance(b, FsStore) and b.root == tmp_path / "s2"
    with pytest.raises(ContextError, match="unknown scheme 'ftp'"):
        open_store("ftp://host/x")
    with pytest.raises(ContextError, match="no bucket"):
        open_store("s3:///prefix")
    with pytest.raises(ContextError, match="must be local"):
        open_store("file://remote/x")
