"""A kept build directory brought to a new context by the difference (farm/context/tree.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from farm.context import BlobCache, build_manifest, materialise, update_tree, upload_context
from farm.context.fs_store import FsStore
from farm.context.safety import Limits
from farm.context.tree import record_path
from farm.errors import ContextError
from tests.unit.context.test_sync import make_tree, snapshot


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, list[str], FsStore, BlobCache]:
    root = tmp_path / "repo"
    root.mkdir()
    files = make_tree(root)
    return root, files, FsStore(tmp_path / "store"), BlobCache(tmp_path / "cache", 1 << 30)


def publish(root: Path, files: list[str], store: FsStore) -> str:
    manifest = build_manifest(root, files)
    upload_context(store, root, manifest)
    return manifest.digest


def fresh(store: FsStore, digest: str, cache: BlobCache, where: Path) -> dict[str, tuple[str, object]]:
    shutil.rmtree(where, ignore_errors=True)
    return snapshot(materialise(store, digest, where, cache))


def test_first_use_materialises_whole_then_a_one_file_change_places_one_file(setup, tmp_path: Path) -> None:
    root, files, store, cache = setup
    tree = tmp_path / "kept" / "api"
    first = update_tree(store, publish(root, files, store), tree, cache)
    assert first.whole and record_path(tree).exists()

    (root / "src/app/main.py").write_bytes(b"print('changed')\n")
    digest = publish(root, files, store)
    second = update_tree(store, digest, tree, cache)
    assert not second.whole
    assert (second.placed, second.removed) == (1, 1)
    assert snapshot(tree) == fresh(store, digest, cache, tmp_path / "fresh")


def test_a_tree_written_into_is_brought_back_to_its_manifest(setup, tmp_path: Path) -> None:
    root, files, store, cache = setup
    tree = tmp_path / "kept" / "api"
    digest = publish(root, files, store)
    update_tree(store, digest, tree, cache)
    # What a builder or a person might leave behind: an edit in place (same size), an extra file and
    # directory, a file turned into a symlink, a symlink retargeted, a mode changed, a file deleted.
    with open(tree / "src/app/util.py", "r+b") as f:
        f.write(b"Y")
    (tree / "extra.txt").write_text("x")
    (tree / "newdir" / "deep").mkdir(parents=True)
    (tree / "data/blob.bin").unlink()
    os.symlink("../Dockerfile", tree / "data/blob.bin")
    (tree / "src/entry.py").unlink()
    os.symlink("app/util.py", tree / "src/entry.py")
    os.chmod(tree / "bin/run", 0o644)
    (tree / "Dockerfile").unlink()

    update_tree(store, digest, tree, cache)
    assert snapshot(tree) == fresh(store, digest, cache, tmp_path / "fresh")


def test_a_tree_without_its_record_is_not_trusted(setup, tmp_path: Path) -> None:
    root, files, store, cache = setup
    tree = tmp_path / "kept" / "api"
    digest = publish(root, files, store)
    update_tree(store, digest, tree, cache)
    (tree / "stray").write_text("left by an update that crashed")
    record_path(tree).unlink()
    again = update_tree(store, digest, tree, cache)
    assert again.whole
    assert snapshot(tree) == fresh(store, digest, cache, tmp_path / "fresh")


def test_a_refused_manifest_leaves_the_kept_tree_and_its_record(setup, tmp_path: Path) -> None:
    root, files, store, cache = setup
    tree = tmp_path / "kept" / "api"
    update_tree(store, publish(root, files, store), tree, cache)
    before = snapshot(tree)
    (root / "more.bin").write_bytes(b"x" * 10)
    bigger = publish(root, [*files, "more.bin"], store)
    with pytest.raises(ContextError, match="limit"):
        update_tree(store, bigger, tree, cache, Limits(max_files=3))
    assert snapshot(tree) == before and record_path(tree).exists()
