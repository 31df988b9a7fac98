"""Manifest deltas: a one-file change stores the difference, and a worker rebuilds the exact manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from farm.context import BlobCache, HashIndex, build_manifest, materialise, upload_context
from farm.context.delta import MAX_DEPTH, parse_delta
from farm.context.fs_store import FsStore
from farm.context.store import manifest_key
from farm.errors import ContextError
from tests.unit.context.test_sync import make_tree, snapshot


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, list[str], FsStore, Path]:
    root = tmp_path / "repo"
    root.mkdir()
    return root, make_tree(root), FsStore(tmp_path / "store"), tmp_path / "index.json"


def upload(root: Path, files: list[str], store: FsStore, index_path: Path):  # type: ignore[no-untyped-def]
    index = HashIndex(index_path)
    manifest = build_manifest(root, files, index=index)
    stats = upload_context(store, root, manifest, index=index)
    index.save()
    return manifest, stats


def stored(store: FsStore, digest: str) -> bytes:
    return (store.root / manifest_key(digest.removeprefix("sha256:"))).read_bytes()



def test_a_one_file_change_stores_a_delta_that_materialises_to_the_same_tree(setup, tmp_path: Path) -> None:
    root, files, store, index_path = setup
    first, _ = upload(root, files, store, index_path)
    assert hashlib.sha256(stored(store, first.digest)).hexdigest() == first.digest[7:]   # the first is whole

    (root / "src/app/main.py").write_bytes(b"print('changed')\n")
    second, stats = upload(root, files, store, index_path)
    delta = parse_delta(stored(store, second.digest))
    assert delta is not None
    base, depth, put, remove = delta
    assert (base, depth, remove) == (first.digest[7:], 1, [])
    assert [row[0] for row in put] == ["src/app/main.py"]
    assert stats.manifest_bytes == len(stored(store, second.digest)) < len(second.to_json()) // 3

    a = materialise(store, second.digest, tmp_path / "a", BlobCache(tmp_path / "c1", 1 << 30))
    whole = FsStore(tmp_path / "whole")
    upload_context(whole, root, second)   # no index: the manifest stored whole
    b = materialise(whole, second.digest, tmp_path / "b", BlobCache(tmp_path / "c2", 1 << 30))
    assert snapshot(a) == snapshot(b)


def test_removed_files_and_a_chain_capped_at_max_depth(setup, tmp_path: Path) -> None:
    root, files, store, index_path = setup
    upload(root, files, store, index_path)
    depths = []
    for k in range(MAX_DEPTH + 2):
        (root / "data/blob.bin").write_bytes(b"round %d" % k)
        listed = [f for f in files if f != "src/app/copy.py"] if k % 2 else files
        m, _ = upload(root, listed, store, index_path)
        delta = parse_delta(stored(store, m.digest))
        depths.append(delta[1] if delta else 0)
        if k % 2 and delta:
            assert "src/app/copy.py" in delta[3]
        out = materialise(store, m.digest, tmp_path / f"t{k}", BlobCache(tmp_path / "cache", 1 << 30))
        assert ("src/app/copy.py" in snapshot(out)) == (k % 2 == 0)
    assert max(depths) == MAX_DEPTH and depths[MAX_DEPTH] == 0   # then whole again


def test_a_tampered_delta_is_refused(setup, tmp_path: Path) -> None:
    root, files, store, index_path = setup
    upload(root, files, store, index_path)
    (root / "Dockerfile").write_bytes(b"FROM scratch\n")
    m, _ = upload(root, files, store, index_path)
    path = store.root / manifest_key(m.digest[7:])
    doc = json.loads(path.read_bytes())
    doc["put"][0][1] = 0o100755                     # make the Dockerfile executable
    path.write_bytes(json.dumps(doc).encode())
    with pytest.raises(ContextError, match="corrupt"):
        materialise(store, m.digest, tmp_path / "t", BlobCache(tmp_path / "cache", 1 << 30))


def test_without_a_verified_base_the_manifest_goes_whole(setup) -> None:
    root, files, store, index_path = setup
    upload(root, files, store, index_path)
    last = index_path.with_name(index_path.name + ".last-manifest.z")
    last.write_bytes(b"damaged")
    (root / "Dockerfile").write_bytes(b"FROM scratch\n")
    m, _ = upload(root, files, store, index_path)
    assert hashlib.sha256(stored(store, m.digest)).hexdigest() == m.digest[7:]
