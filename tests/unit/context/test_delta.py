"""Manifest deltas: a one-file change stores the difference, and a worker rebuilds the exact manifest."""

from __future__ import annotations

import hashlib
import json
import shutil
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
    last = index_path.with_name(index_path.name + ".last-manifest.json")
    last.write_bytes(b"damaged")
    (root / "Dockerfile").write_bytes(b"FROM scratch\n")
    m, _ = upload(root, files, store, index_path)
    assert hashlib.sha256(stored(store, m.digest)).hexdigest() == m.digest[7:]


def test_a_worker_rebuilds_a_delta_on_its_own_copy_of_the_base_and_never_trusts_a_bad_copy(
        setup, tmp_path: Path) -> None:
    root, files, store, index_path = setup
    cache = BlobCache(tmp_path / "cache", 1 << 30)
    first, _ = upload(root, files, store, index_path)
    materialise(store, first.digest, tmp_path / "a", cache)
    kept = cache.root / "manifests" / f"{first.digest[7:]}.json"
    assert kept.read_bytes() == first.to_json()

    (root / "Dockerfile").write_bytes(b"FROM scratch\n")
    second, _ = upload(root, files, store, index_path)
    # The store's base is gone: the worker's own copy is what the delta is rebuilt on.
    (store.root / manifest_key(first.digest[7:])).rename(tmp_path / "moved")
    out = materialise(store, second.digest, tmp_path / "b", cache)
    assert snapshot(out)["Dockerfile"][1] == hashlib.sha256(b"FROM scratch\n").hexdigest()

    # A damaged copy is not used: with the store's base back, the result is the same.
    (tmp_path / "moved").rename(store.root / manifest_key(first.digest[7:]))
    kept.write_bytes(kept.read_bytes().replace(b"Dockerfile", b"Dockerfilf"))
    (cache.root / "manifests" / f"{second.digest[7:]}.json").unlink()
    shutil.rmtree(tmp_path / "b")
    out = materialise(store, second.digest, tmp_path / "b", cache)
    assert "Dockerfile" in snapshot(out)


def test_gc_keeps_the_base_chain_of_a_kept_delta() -> None:
    from farm.context.sweep import Stored, plan_sweep

    old, young = 0.0, 100.0
    manifests = [Stored("a" * 64, 10, old), Stored("b" * 64, 10, old), Stored("c" * 64, 10, young),
                 Stored("d" * 64, 10, old)]
    bases = {"c" * 64: "b" * 64, "b" * 64: "a" * 64}     # c is a delta on b, itself a delta on a
    plan = plan_sweep(manifests, [], {}, live=set(), cutoff=50.0, bases=bases)
    assert [m.name for m in plan.manifests] == ["d" * 64]


def test_a_delta_is_built_only_on_a_recent_base(setup) -> None:
    root, files, store, index_path = setup
    upload(root, files, store, index_path)
    doc = json.loads(index_path.read_text())
    for rec in doc["uploads"].values():
        rec[2] -= 2 * 3600                                      # the base was uploaded two hours ago
    index_path.write_text(json.dumps(doc))
    (root / "Dockerfile").write_bytes(b"FROM scratch\n")
    m, _ = upload(root, files, store, index_path)
    assert hashlib.sha256(stored(store, m.digest)).hexdigest() == m.digest[7:]   # whole


def test_a_sweep_with_a_live_delta_leaves_a_context_that_still_materialises(setup, tmp_path: Path) -> None:
    import time

    from farm.context.sweep import open_swept_store, sweep

    root, files, store, index_path = setup
    first, _ = upload(root, files, store, index_path)
    (root / "src/app/main.py").write_bytes(b"print('live')\n")
    second, _ = upload(root, files, store, index_path)
    assert parse_delta(stored(store, second.digest)) is not None
    swept = sweep(open_swept_store(store.url), {second.digest[7:]}, 3600, now=time.time() + 2 * 86400)
    assert first.digest[7:] not in {m.name for m in swept.manifests}
    out = materialise(store, second.digest, tmp_path / "t", BlobCache(tmp_path / "cache", 1 << 30))
    assert "src/app/main.py" in snapshot(out) and "Dockerfile" in snapshot(out)
