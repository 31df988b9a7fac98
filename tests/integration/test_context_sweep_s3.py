"""`farm gc`'s context sweep (farm/context/sweep.py) on the S3 store against a real S3 API (moto's
server): listing through prefixes and pages, deleting, live contexts kept with their blobs."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from farm.context import build_manifest, upload_context
from farm.context.sweep import open_swept_store, sweep
from tests.integration.test_context_s3 import moto_endpoint, s3_url  # noqa: F401  (fixtures)

pytestmark = pytest.mark.integration
DAY = 86400.0


def context(tmp: Path, name: str, files: dict[str, bytes]) -> tuple[Path, list[str]]:
    root = tmp / name
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root, sorted(files)


def test_sweep_on_s3_keeps_live_contexts_and_deletes_the_rest(s3_url: str, tmp_path: Path) -> None:  # noqa: F811
    store = open_swept_store(s3_url)
    shared = os.urandom(3000)
    digests = {}
    for name, files in {"live": {"a": os.urandom(1000), "s": shared},
                        "dead": {"b": os.urandom(2000), "s": shared}}.items():
        root, rels = context(tmp_path, name, files)
        manifest = build_manifest(root, rels)
        upload_context(store, root, manifest)
        digests[name] = (manifest.digest.removeprefix("sha256:"), set(manifest.blobs))
    orphan = tmp_path / "orphan"
    orphan.write_bytes(os.urandom(500))
    orphan_sha = hashlib.sha256(orphan.read_bytes()).hexdigest()
    store.put_blob(orphan_sha, orphan)

    # Nothing is past a one-day grace yet: a sweep now deletes nothing.
    assert not sweep(store, {digests["live"][0]}, DAY).manifests
    later = time.time() + 2 * DAY
    planned = sweep(store, {digests["live"][0]}, DAY, now=later, dry_run=True)
    assert [m.name for m in planned.manifests] == [digests["dead"][0]]
    assert {m.name for m in store.list_manifests()} == {digests["live"][0], digests["dead"][0]}  # dry run

    done = sweep(store, {digests["live"][0]}, DAY, now=later)
    dead_only = digests["dead"][1] - digests["live"][1]
    assert {b.name for b in done.blobs} == dead_only | {orphan_sha}
    assert {m.name for m in store.list_manifests()} == {digests["live"][0]}
    assert {b.name for b in store.list_blobs()} == digests["live"][1]
    assert done.bytes == sum(b.size for b in done.blobs) + sum(m.size for m in done.manifests) > 2500
