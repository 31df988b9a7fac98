"""Build requests and results, and their records in Redis: job states, leases, single flight, logs.

A job is one (Build, platform) image ref, or the index merge of a multi-platform Build. Concurrent
submissions of the same ref share one job (`claim`). A worker takes a delivered job (`start`), holds
a lease on it that it renews while the builder runs (`renew`), and ends the attempt (`finish`); every
step is one Lua script of `farm.keys`, so a redelivered message or a retried call does nothing twice,
and a worker that was taken for lost can no longer change the record. The builder's output goes to
the job's log stream, which every submitter follows. Task arguments hold no credential.

Every call survives a Redis restart: it retries with backoff until Redis answers again or
`reconnect_s` has passed (then it raises BrokerError).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from farm import keys
from farm.errors import BrokerError
from farm.images import CacheRef

if TYPE_CHECKING:
    import redis

LOG_TAIL = 30
T = TypeVar("T")

Status = Literal["queued", "started", "retrying", "built", "failed", "cached", "cancelled"]


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
    index: str | None = None        # a multi-platform Build: the index ref this platform feeds
    # cluster-buildkit: every platform in one buildctl call (the one-call form), else [platform].
    platforms: list[str] = []
    cache: list[CacheRef] = []      # resolved registry caches, in import order
    secret_ids: list[str] = []      # spec.secrets keys; the values travel apart (JobStore.put_secrets)


Job = BuildRequest | MergeRequest


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
    shared: bool = False            # another submitter's job, followed (single flight)
    attempts: int = 0
    timings: dict[str, float] = {}


@dataclass(frozen=True)
class Start:
    verdict: Literal["run", "ended", "busy"]
    attempt: int
    previous: str                   # the status before this call


def _fields(values: Mapping[str, object]) -> list[str]:
    out: list[str] = []
    for key, value in values.items():
        out += [key, "" if value is None else str(value)]
    return out


class JobStore:
    """Job records (Redis hashes), leases, single-flight claims, fan-in sets and log streams."""

    def __init__(self, client: redis.Redis, *, reconnect_s: float = 120.0) -> None:
        # A client made with decode_responses=True: redis-py's annotations cannot say it returns str.
        self.redis: Any = client
        self.reconnect_s = reconnect_s

    def call(self, fn: Callable[[], T]) -> T:
        """`fn()`, retried while Redis is unreachable (a restart), up to `reconnect_s`."""
        import redis

        deadline, delay = time.monotonic() + self.reconnect_s, 0.2
        while True:
            try:
                return fn()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if time.monotonic() + delay > deadline:
                    raise BrokerError(f"Redis did not answer for {self.reconnect_s:.0f} s: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _eval(self, script: str, keys_: list[str], args: list[object]) -> Any:
        return self.call(lambda: self.redis.eval(script, len(keys_), *keys_, *args))

    # -- records ---------------------------------------------------------------------------------

    def update(self, job_id: str, **fields: str | float | None) -> None:
        values = {k: ("" if v is None else str(v)) for k, v in fields.items()}

        def write() -> None:
            pipe = self.redis.pipeline()
            pipe.hset(keys.job(job_id), mapping=values)
            pipe.expire(keys.job(job_id), keys.JOB_TTL)
            pipe.execute()
        self.call(write)

    def get(self, job_id: str) -> dict[str, str]:
        return dict(self.call(lambda: self.redis.hgetall(keys.job(job_id))))

    # -- the job state machine -------------------------------------------------------------------

    def claim(self, ref: str, job_id: str, *, force: bool = False, **fields: str | float | None) -> tuple[str, bool]:
        """The job building `ref` now (or that just built it, unless `force`), or this new one (recorded
        `queued` with `fields`): (id, is new)."""
        record = _fields({"status": "queued", "ref": ref, **fields})
        got, new = self._eval(keys.CLAIM, [keys.flight(ref), keys.job(job_id)],
                              [job_id, keys.JOB_TTL, 0 if force else 1, *record])
        return str(got), bool(int(new))

    def start(self, job_id: str, owner: str, lease_s: float, worker: str, tag: str) -> Start:
        verdict, attempt, previous = self._eval(
            keys.START, [keys.job(job_id), keys.lease(job_id)],
            [owner, int(lease_s * 1000), time.time(), worker, tag, keys.JOB_TTL])
        return Start(verdict, int(attempt), previous)

    def renew(self, job_id: str, owner: str, lease_s: float, tag: str) -> bool:
        """Keep the lease (and the message's delivery time); False when the job has another owner now."""
        return bool(self._eval(keys.RENEW, [keys.job(job_id), keys.lease(job_id), keys.UNACKED_INDEX],
                               [owner, int(lease_s * 1000), time.time(), tag]))

    def finish(self, job_id: str, owner: str, ref: str, **fields: str | float | None) -> bool:
        """End this owner's attempt (status first in `fields`); False for a stale owner (nothing written)."""
        return bool(self._eval(keys.FINISH, [keys.job(job_id), keys.lease(job_id), keys.flight(ref)],
                               [owner, keys.JOB_TTL, *_fields(fields)]))

    def end_unowned(self, job_id: str, ref: str, **fields: str | float | None) -> bool:
        """End a job nobody runs (status first in `fields`) unless it has ended already."""
        return bool(self._eval(keys.END_UNOWNED, [keys.job(job_id), keys.flight(ref)],
                               [keys.JOB_TTL, *_fields(fields)]))

    def flight_of(self, ref: str) -> str | None:
        """The job building `ref` now (or last), if any."""
        return self.call(lambda: self.redis.get(keys.flight(ref))) or None

    def fanin(self, index_ref: str, platforms: Iterable[str] = ()) -> str | None:
        """Record platforms as pushed; the merge job to send now that its platforms are all there (once)."""
        merge = self._eval(keys.FANIN, [keys.fanin(index_ref), keys.flight(index_ref)],
                           [keys.JOB_TTL, *platforms])
        return str(merge) or None

    # -- logs --------------------------------------------------------------------------------------

    def log(self, job_id: str, line: str) -> None:
        self.call(lambda: self.redis.xadd(keys.log(job_id), {"line": line}, maxlen=keys.LOG_MAXLEN,
                                           approximate=True))

    def expire_log(self, job_id: str) -> None:
        self.call(lambda: self.redis.expire(keys.log(job_id), keys.JOB_TTL))

    def tail(self, job_id: str, count: int = LOG_TAIL) -> list[str]:
        entries = self.call(lambda: self.redis.xrevrange(keys.log(job_id), count=count))
        return [fields["line"] for _, fields in reversed(entries)]

    def follow(self, job_ids: Iterable[str], cursors: dict[str, str], block_ms: int = 1000
               ) -> Iterator[tuple[str, str]]:
        """New log lines of these jobs since `cursors` (updated in place), waiting up to block_ms."""
        streams = {keys.log(j): cursors.get(j, "0-0") for j in job_ids}
        if not streams:
            time.sleep(block_ms / 1000)
            return
        for key, entries in self.call(lambda: self.redis.xread(streams, block=block_ms, count=500)) or []:
            job_id = keys.job_of_log(key)
            for entry_id, fields in entries:
                cursors[job_id] = entry_id
                yield job_id, fields["line"]

    # -- build secrets -----------------------------------------------------------------------------
    # Build secrets (spec.secrets values) never ride in task arguments or job records: they wait
    # under their own key, readable by workers, until the job ends or the key expires.

    def put_secrets(self, job_id: str, values: dict[str, str], ttl: int) -> None:
        if values:
            def write() -> None:
                pipe = self.redis.pipeline()
                pipe.hset(keys.secrets(job_id), mapping=values)
                pipe.expire(keys.secrets(job_id), ttl)
                pipe.execute()
            self.call(write)

    def secrets(self, job_id: str) -> dict[str, str]:
        return dict(self.call(lambda: self.redis.hgetall(keys.secrets(job_id))))

    def drop_secrets(self, job_id: str) -> None:
        self.call(lambda: self.redis.delete(keys.secrets(job_id)))
