"""Build requests and results, and their records in Redis: job hashes and log streams.

A job is one (Build, platform). The producer writes the record as `queued` before it enqueues,
the worker moves it to `started` and then `built` or `failed`, and appends the builder's output
to the job's log stream, which the CLI follows. Task arguments hold no credential: workers
read those from their own docker config.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict

JOB_TTL = 7 * 24 * 3600
LOG_MAXLEN = 20_000
LOG_TAIL = 30

Status = Literal["queued", "started", "built", "failed", "cached"]


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
    context_dir: str                # where the context files are (the context store replaces this)
    dockerfile: str = "Dockerfile"
    build_args: dict[str, str | None] = {}
    target: str | None = None
    extra_flags: list[str] = []
    timeout: int = 600


class BuildResult(BaseModel):
    build: str
    version: str
    image: str
    platform: str | None = None
    digest: str | None = None
    status: Status
    error: str | None = None
    log_tail: list[str] = []
    job_id: str | None = None
    timings: dict[str, float] = {}


def job_key(job_id: str) -> str:
    return f"farm:job:{job_id}"


def log_key(job_id: str) -> str:
    return f"farm:log:{job_id}"


class JobStore:
    """Job records (Redis hashes) and log streams (Redis streams)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def update(self, job_id: str, **fields: str | float | None) -> None:
        values = {k: ("" if v is None else str(v)) for k, v in fields.items()}
        pipe = self.redis.pipeline()
        pipe.hset(job_key(job_id), mapping=values)
        pipe.expire(job_key(job_id), JOB_TTL)
        pipe.execute()

    def get(self, job_id: str) -> dict[str, str]:
        return self.redis.hgetall(job_key(job_id))  # type: ignore[return-value]

    def log(self, job_id: str, line: str) -> None:
        self.redis.xadd(log_key(job_id), {"line": line}, maxlen=LOG_MAXLEN, approximate=True)

    def expire_log(self, job_id: str) -> None:
        self.redis.expire(log_key(job_id), JOB_TTL)

    def tail(self, job_id: str, count: int = LOG_TAIL) -> list[str]:
        entries = self.redis.xrevrange(log_key(job_id), count=count)
        return [fields["line"] for _, fields in reversed(entries)]  # type: ignore[index]

    def follow(self, job_ids: Iterable[str], cursors: dict[str, str], block_ms: int = 1000
               ) -> Iterator[tuple[str, str]]:
        """New log lines of these jobs since `cursors` (updated in place), waiting up to block_ms."""
        streams = {log_key(j): cursors.get(j, "0-0") for j in job_ids}
        if not streams:
            time.sleep(block_ms / 1000)
            return
        for key, entries in self.redis.xread(streams, block=block_ms, count=500) or []:  # type: ignore[union-attr]
            job_id = key.removeprefix("farm:log:")
            for entry_id, fields in entries:
                cursors[job_id] = entry_id
                yield job_id, fields["line"]
