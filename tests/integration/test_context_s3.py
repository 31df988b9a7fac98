"""The S3 context store (farm/context/s3_store.py) against a real S3 API: moto's server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from farm.context import (
    BlobCache,
    ContextManifest,
    ManifestEntry,
    build_manifest,
    materialise,
    open_store,
    s3_store,
    upload_context,
)
from farm.context.manifest import FILE_MODE, SYMLINK_MODE
from farm.context.s3_store import S3Store
from farm.context.store import blob_key
from farm.errors import ContextError
from tests.conftest import run_together

pytestmark = pytest.mark.integration

CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
         "AWS_DEFAULT_REGION": "us-east-1", "AWS_SESSION_TOKEN": "testing"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 server as a subprocess; fails loudly (never skips) if it does not answer."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **CREDS})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {proc.returncode}: {log.read_text()}")
            try:
                if httpx.get(url + "/moto-api/", timeout=1).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not answer on {url} within 30 s: {log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def s3_url(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the environment a CI machine or worker would have (endpoint + AWS creds)."""
    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("FARM_S3_ENDPOINT_URL", moto_endpoint)
    bucket = f"ctx-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    return f"s3://{bucket}/team/contexts"


def raw_client(url: str) -> tuple[object, str, str]:
    store = open_store(url)
    assert isinstance(store, S3Store)
    return store._s3, store.bucket, store.prefix


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, list[str]]:
    root = tmp_path / "repo"
    files = {f"src/m{i}.py": f"VALUE = {i}\n".encode() for i in range(40)}
    files["Dockerfile"] = b"FROM scratch\nCOPY . /\n"
    files["assets/big.bin"] = os.urandom(2_000_000)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    os.chmod(root / "src/m0.py", 0o755)
    os.symlink("m1.py", root / "src/alias.py")
    os.symlink("/etc/shadow", root / "src/outside.py")
    return root, sorted([*files, "src/alias.py", "src/outside.py"])


def tree(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = ("link", os.readlink(p))
        elif p.is_file():
            out[rel] = (p.stat().st_mode & 0o777, sha(p.read_bytes()))
    return out


def test_upload_and_materialise_on_a_second_machine(repo: tuple[Path, list[str]], s3_url: str,
                                                    tmp_path: Path) -> None:
    root, files = repo
    m = build_manifest(root, files)
    assert m.skipped_symlinks == ("src/outside.py",)
    stats = upload_context(open_store(s3_url), root, m)
    assert stats.uploaded_files == len(m.blobs) and stats.uploaded_bytes == m.total_bytes

    cache = BlobCache(tmp_path / "node2" / "cache", 1 << 30)
    dest = materialise(open_store(s3_url), m.digest, tmp_path / "node2" / "build", cache)
    expected = tree(root)
    del expected["src/outside.py"]
    assert tree(dest) == expected
    assert cache.misses == len(m.blobs)


def test_reupload_after_one_change_sends_one_blob(repo: tuple[Path, list[str]], s3_url: str) -> None:
    root, files = repo
    store = open_store(s3_url)
    upload_context(store, root, build_manifest(root, files))
    assert upload_context(store, root, build_manifest(root, files)).uploaded_files == 0
    (root / "src/m7.py").write_bytes(b"VALUE = 'seven'\n")
    stats = upload_context(store, root, build_manifest(root, files))
    assert (stats.uploaded_files, stats.uploaded_bytes) == (1, len(b"VALUE = 'seven'\n"))


def test_missing_by_listing_and_by_head_agree(repo: tuple[Path, list[str]], s3_url: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root, files = repo
    m = build_manifest(root, files)
    store = open_store(s3_url)
    present = sorted(m.blobs)[::2]
    for h in present:
        store.put_blob(h, root / m.blobs[h].path)
    expected = set(m.blobs) - set(present)
    monkeypatch.setattr(s3_store, "_LIST_MIN", 1)  # every shard listed
    assert store.missing(set(m.blobs)) == expected
    monkeypatch.setattr(s3_store, "_LIST_MIN", 10**9)  # every blob HEADed
    assert store.missing(set(m.blobs)) == expected


def test_large_blob_goes_through_the_spooled_path(repo: tuple[Path, list[str]], s3_url: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = repo
    monkeypatch.setattr(s3_store, "_IN_MEMORY_MAX", 1000)
    m = build_manifest(root, ["assets/big.bin"])
    upload_context(open_store(s3_url), root, m)
    dest = materialise(open_store(s3_url), m.digest, tmp_path / "b", BlobCache(tmp_path / "c", 1 << 30))
    assert (dest / "assets/big.bin").read_bytes() == (root / "assets/big.bin").read_bytes()


def test_concurrent_uploads_of_the_same_context(repo: tuple[Path, list[str]], s3_url: str,
                                                tmp_path: Path) -> None:
    root, files = repo
    m = build_manifest(root, files)
    assert run_together(6, lambda: upload_context(open_store(s3_url), root, m)) == []  # separate clients, as separate CI jobs
    client, bucket, prefix = raw_client(s3_url)
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(  # type: ignore[attr-defined]
        Bucket=bucket, Prefix=prefix + "/blobs/") for o in page.get("Contents", ())]
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == sorted(m.blobs)
    dest = materialise(open_store(s3_url), m.digest, tmp_path / "b", BlobCache(tmp_path / "c", 1 << 30))
    assert (dest / "Dockerfile").read_bytes() == b"FROM scratch\nCOPY . /\n"


def test_corrupted_blob_is_detected_and_not_used(repo: tuple[Path, list[str]], s3_url: str,
                                                 tmp_path: Path) -> None:
    root, files = repo
    m = build_manifest(root, files)
    upload_context(open_store(s3_url), root, m)
    bad = sha(b"VALUE = 3\n")
    client, bucket, prefix = raw_client(s3_url)
    client.put_object(Bucket=bucket, Key=f"{prefix}/{blob_key(bad)}", Body=b"VALUE = 4\n")  # type: ignore[attr-defined]
    cache = BlobCache(tmp_path / "c", 1 << 30)
    with pytest.raises(ContextError, match=f"'src/m3.py'.*sha256:{bad}.*corrupt"):
        materialise(open_store(s3_url), m.digest, tmp_path / "b", cache)
    assert not cache.has(bad)
    assert list((tmp_path / "b").iterdir()) == []


@pytest.mark.parametrize("entries,message", [
    ([ManifestEntry("../../escaped", FILE_MODE, 6, sha(b"pwned\n"))], "refused: contains '..'"),
    ([ManifestEntry("/tmp/escaped", FILE_MODE, 6, sha(b"pwned\n"))], "refused: absolute"),
    ([ManifestEntry("l", SYMLINK_MODE, 0, None, ".."),
      ManifestEntry("l/escaped", FILE_MODE, 6, sha(b"pwned\n"))], "goes through the symlink 'l'"),
    ([ManifestEntry("dev/kmsg", 0o020600, 6, sha(b"pwned\n"))], "device file"),
])
def test_crafted_manifest_in_the_bucket_is_refused(entries: list[ManifestEntry], message: str, s3_url: str,
                                                   tmp_path: Path) -> None:
    store = open_store(s3_url)
    (tmp_path / "p").write_bytes(b"pwned\n")
    store.put_blob(sha(b"pwned\n"), tmp_path / "p")
    m = ContextManifest(tuple(entries))
    store.put_manifest(m.digest[7:], m.to_json())
    world = tmp_path / "world"
    world.mkdir()
    with pytest.raises(ContextError, match=message):
        materialise(store, m.digest, world / "a" / "b" / "build", BlobCache(tmp_path / "c", 1 << 30))
    assert list(world.iterdir()) == []
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/escaped").exists()


def test_unknown_context_and_unreachable_endpoint_are_clear(s3_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ContextError, match="no context sha256:" + "1" * 64):
        materialise(open_store(s3_url), "sha256:" + "1" * 64, tmp_path / "b", BlobCache(tmp_path / "c", 1 << 20))
    monkeypatch.setenv("FARM_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ContextError, match=r"context store s3://.*(connect|Connect)"):
        open_store(s3_url).missing({"a" * 64})
