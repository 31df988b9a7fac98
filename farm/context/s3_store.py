"""S3 store (boto3): AWS or any S3-compatible endpoint."""

from __future__ import annotations

import base64
import os
import tempfile
from collections import defaultdict
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from farm.errors import ContextError

from .store import MAX_MANIFEST_BYTES, blob_key, manifest_key, read_verified
from .sweep import Stored, s3_object

_THREADS = 16
# S3 has no batch "exists": a shard (2-hex prefix) with at least this many blobs asked about is
# listed (1 call per 1000 keys), a shard with fewer is asked with one HEAD per blob.
_LIST_MIN = 8
_IN_MEMORY_MAX = 64 * 1024 * 1024  # larger blobs are spooled to a temp file while verified


class S3Store:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self._s3 = client or boto3.client(
            "s3", endpoint_url=endpoint_url,
            config=Config(max_pool_connections=_THREADS * 2, retries={"mode": "standard"}))

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise ContextError(f"context store {self.url}: {what}: {err.get('Code')} "
                               f"{err.get('Message', '')}".rstrip()) from exc
        except BotoCoreError as exc:
            raise ContextError(f"context store {self.url}: {what}: {exc}") from exc

    def missing(self, blobs: Collection[str]) -> set[str]:
        by_shard: dict[str, list[str]] = defaultdict(list)
        for sha in blobs:
            by_shard[blob_key(sha).rsplit("/", 1)[0]].append(sha)
        listed = [s for s, shas in by_shard.items() if len(shas) >= _LIST_MIN]
        headed = [sha for s, shas in by_shard.items() if len(shas) < _LIST_MIN for sha in shas]
        out: set[str] = set()
        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            for shard, present in zip(listed, pool.map(self._list_shard, listed), strict=True):
                out.update(sha for sha in by_shard[shard] if sha not in present)
            for sha, exists in zip(headed, pool.map(self._blob_exists, headed), strict=True):
                if not exists:
                    out.add(sha)
        return out

    def _list_shard(self, shard: str) -> set[str]:
        present: set[str] = set()
        with self._errors(f"listing {shard}"):
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(shard) + "/")
            for page in pages:
                present.update(o["Key"].rsplit("/", 1)[1] for o in page.get("Contents", ()))
        return present

    def _exists(self, key: str) -> bool:
        with self._errors(f"checking {key}"):
            try:
                self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
                return True
            except ClientError as exc:
                if _not_found(exc):
                    return False
                raise

    def _blob_exists(self, sha: str) -> bool:
        return self._exists(blob_key(sha))

    def put_blob(self, sha: str, src: Path) -> int:
        key = self._key(blob_key(sha))
        # S3 checks the body against this checksum, so a blob is stored only with the content its name promises
        checksum = base64.b64encode(bytes.fromhex(sha)).decode()
        if os.path.getsize(src) <= _IN_MEMORY_MAX:
            data = read_verified(src, sha)
            assert isinstance(data, bytes)
            with self._errors(f"uploading blob for {src}"):
                self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ChecksumSHA256=checksum)
            return len(data)
        with tempfile.TemporaryFile() as spool:
            n = read_verified(src, sha, spool)
            assert isinstance(n, int)
            spool.seek(0)
            with self._errors(f"uploading blob for {src}"):
                self._s3.upload_fileobj(spool, self.bucket, key,
                                        ExtraArgs={"ChecksumAlgorithm": "SHA256"})
            return n

    def open_blob(self, sha: str) -> BinaryIO:
        with self._errors(f"reading blob sha256:{sha}"):
            resp = self._get_object(blob_key(sha), f"blob sha256:{sha} is missing")
        return cast(BinaryIO, resp["Body"])

    def _get_object(self, key: str, missing: str) -> Any:
        """GET an object; a missing one is a ContextError saying `missing`."""
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _not_found(exc):
                raise ContextError(f"context store {self.url}: {missing}") from None
            raise

    def has_manifest(self, hex_digest: str) -> bool:
        return self._exists(manifest_key(hex_digest))

    def put_manifest(self, hex_digest: str, data: bytes) -> None:
        with self._errors("uploading the manifest"):
            self._s3.put_object(Bucket=self.bucket, Key=self._key(manifest_key(hex_digest)), Body=data,
                                ContentType="application/json")

    def get_manifest(self, hex_digest: str) -> bytes:
        with self._errors("reading the manifest"):
            resp = self._get_object(manifest_key(hex_digest), f"no context sha256:{hex_digest}")
            body = resp["Body"]
            try:
                data = cast(bytes, body.read(MAX_MANIFEST_BYTES + 1))
            finally:
                body.close()
        if len(data) > MAX_MANIFEST_BYTES:
            raise ContextError(f"context store {self.url}: manifest sha256:{hex_digest} larger than "
                               f"{MAX_MANIFEST_BYTES} bytes, refused")
        return data

    # listing and deleting: `farm gc` (farm.context.sweep)
    def _list(self, prefix: str) -> Iterator[Stored]:
        with self._errors(f"listing {prefix}"):
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                          Prefix=self._key(prefix)):
                for obj in page.get("Contents", ()):
                    stored = s3_object(obj["Key"], obj)
                    if stored is not None:
                        yield stored

    def list_blobs(self) -> Iterator[Stored]:
        return self._list("blobs/sha256/")

    def list_manifests(self) -> Iterator[Stored]:
        return self._list("manifests/sha256/")

    def delete_blob(self, sha: str) -> None:
        with self._errors(f"deleting blob sha256:{sha}"):
            self._s3.delete_object(Bucket=self.bucket, Key=self._key(blob_key(sha)))

    def delete_manifest(self, hex_digest: str) -> None:
        with self._errors(f"deleting manifest sha256:{hex_digest}"):
            self._s3.delete_object(Bucket=self.bucket, Key=self._key(manifest_key(hex_digest)))


def _not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")
