"""Build requests and results, and their records in Redis: job hashes and log streams.

A job is one (Build, platform). The producer writes the record as `queued` before it enqueues,
the worker moves it to `started` and then `built` or `failed`, and appends the builder's output
to the job's log stream, which the CLI follows. Task arguments hold no credential: workers
read those from their own docker config.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal


from pydantic import BaseModel, ConfigDict

from farm import keys
from farm.images import CacheRef

if TYPE_CHECKING:
    import redis

LOG_TAIL = 30

Status = Literal["queued", "started", "built", "failed", "cached"]


class MergeRequest(BaseModel):
    """Push one image index under the Build's tag over the per-platform images its jobs pushed."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    project: str
    build: str
    version: str
    image: str                      # the index ref, `<registry>/<ns>/<name>:<version>`
    platform_images: dict[str, str]  # platform -> per-platform ref, in the Build's platform order
    insecure: bool = False
    needs: list[str] = []           # job ids of the platform builds this merge waits for


class BuildRequest(BaseModel):
    """Everything a worker needs to build one Build for one platform: pure data, no secrets."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    project: str
    build: str
    version: str
    platform: str
    mode: str
    image: str                      # the ref to push, `<registry>/<ns>/<name>:<tag>`
    insecure: bool = False
    context: str                    # the context manifest's digest in the store
    context_store: str              # the store's URL (its credentials, if any, come from the worker's env)
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str | None] = {}
    target: str | None = None
    extra_flags: list[str] = []
    timeout: int = 600
    merge: MergeRequest | None = None  # for a multi-platform Build: the index step this job feeds
    # cluster-buildkit: every platform in one buildctl call (the one-call form), else [platform].
    platforms: list[str] = []
    cache: list[CacheRef] = []      # resolved registry caches, in import order
    secret_ids: list[str] = []      # spec.secrets keys; the values travel apart (JobStore.put_secrets)


class BuildResult(BaseModel):
    build: str
    version: str
    image: str
    platform: str | None = None
    digest: str | None = None
    status: Status
    kind: Literal["platform", "index"] = "platform"
    error: str | None = None
    log_tail: list[str] = []
    job_id: str | None = None
    timings: dict[str, float] = {}


class JobStore:
    """Job records (Redis hashes) and log streams (Redis streams)."""

    def __init__(self, client: redis.Redis) -> None:
        # A client made with decode_responses=True: redis-py's annotations cannot say it returns str.
        self.redis: Any = client

    def update(self, job_id: str, **fields: str | float | None) -> None:
        values = {k: ("" if v is None else str(v)) for k, v in fields.items()}
        pipe = self.redis.pipeline()
        pipe.hset(keys.job(job_id), mapping=values)
        pipe.expire(keys.job(job_id), keys.JOB_TTL)
        pipe.execute()

    def get(self, job_id: str) -> dict[str, str]:
        return dict(self.redis.hgetall(keys.job(job_id)))

    def log(self, job_id: str, line: str) -> None:
        self.redis.xadd(keys.log(job_id), {"line": line}, maxlen=keys.LOG_MAXLEN, approximate=True)

    def expire_log(self, job_id: str) -> None:
        self.redis.expire(keys.log(job_id), keys.JOB_TTL)

    def platform_done(self, merge: MergeRequest, job_id: str) -> bool:
        """Mark one of the merge's platform jobs done; true when it was the last one."""
        done = self.redis.eval(keys.PLATFORM_DONE, 1, keys.merge(merge.job_id), job_id, len(merge.needs), keys.JOB_TTL)
        return bool(done)

    # Build secrets (spec.secrets values) never ride in task arguments or job records: they wait
    # under their own key, readable by workers, until the job ends or the key expires.
    def put_secrets(self, job_id: str, values: dict[str, str], ttl: int) -> None:
        if values:
            pipe = self.redis.pipeline()
            pipe.hset(keys.secrets(job_id), mapping=values)
            pipe.expire(keys.secrets(job_id), ttl)
            pipe.execute()

    def secrets(self, job_id: str) -> dict[str, str]:
        return dict(self.redis.hgetall(keys.secrets(job_id)))

    def drop_secrets(self, job_id: str) -> None:
        self.redis.delete(keys.secrets(job_id))

    def tail(self, job_id: str, count: int = LOG_TAIL) -> list[str]:
        entries = self.redis.xrevrange(keys.log(job_id), count=count)
        return [fields["line"] for _, fields in reversed(entries)]

    def follow(self, job_ids: Iterable[str], cursors: dict[str, str], block_ms: int = 1000
               ) -> Iterator[tuple[str, str]]:
        """New log lines of these jobs since `cursors` (updated in place), waiting up to block_ms."""
        streams = {keys.log(j): cursors.get(j, "0-0") for j in job_ids}
        if not streams:
            time.sleep(block_ms / 1000)
            return
        for key, entries in self.redis.xread(streams, block=block_ms, count=500) or []:
            job_id = keys.job_of_log(key)
            for entry_id, fields in entries:
                cursors[job_id] = entry_id
                yield job_id, fields["line"]
