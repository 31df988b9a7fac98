"""Build requests and results, and their records in Redis: job states, leases, single flight, logs.

A job is one (Build, platform) image ref, or the index merge of a multi-platform Build. Concurrent
submissions of the same ref share one job (`claim`), which waits in the waiting room of its queue and
namespace until `dispatch` lets it into Celery's queue (priorities, fair shares: `farm.admission`).
A worker takes a delivered job (`start`), holds a lease on it that it renews while the builder runs
(`renew`, which also reports a cancel), and ends the attempt (`finish`); `cancel` ends a job nobody
runs or flags a running one. Every step is one Lua script of `farm.keys`, so a redelivered message
or a retried call does nothing twice, and a worker that was taken for lost can no longer change the
record. The builder's output goes to the job's log stream, which every submitter follows. Task
arguments hold no credential.

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
from farm.in_cluster import BuildkitOptions
from farm.kaniko import KanikoOptions

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


class PullSecretRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str = "default"


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
    kaniko: KanikoOptions | None = None  # kaniko mode: merged flags, cache repo, namespace, Pod settings
    buildkit: BuildkitOptions | None = None  # cluster-buildkit in a cluster: the Deployment's settings
    # The provider's imagePullSecrets, as references only: the worker reads them from the cluster
    # (its kubeconfig at `kube_context`, or its in-cluster identity) right before the build.
    pull_secrets: list[PullSecretRef] = []
    kube_context: str | None = None
    # The Dockerfile's steps (farm.dockerfile.steps): whether a worker can build them for a foreign
    # platform. Empty: not known (the worker builds, and the pushed image's platform is checked).
    steps: list[str] = []


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
class Admission:
    """Where a new build job waits for its turn: its Celery queue, its namespace's share, its priority."""

    queue: str
    namespace: str
    priority: str = "normal"


@dataclass(frozen=True)
class Dispatched:
    """A job DISPATCH let into flight: the caller sends its task request to `queue`."""

    job_id: str
    queue: str
    request: str
    priority: str
    dispatched_at: str = ""


# RENEW's answers.
LOST, HELD, CANCEL = 0, 1, 2


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


def cached_record(job_id: str, ttl: int, **fields: str | float | None) -> tuple[str, list[str], list[object]]:
    """The script call (script, keys, args) that writes a `cached` record: pure, so a cached answer
    can send it without redis-py (`farm.resp`)."""
    now = time.time()
    values: dict[str, str | float | None] = {"status": "cached", "queued_at": now, "finished_at": now, **fields}
    return keys.CACHED, [keys.job(job_id)], [ttl, *_fields(values)]


LOG_LINE_MAX = 4096      # characters of one log line kept: a builder echoing an 8 MB value stays readable


def cap_line(line: str, limit: int = LOG_LINE_MAX) -> str:
    """One log line, cut to `limit` characters with a note of how much was left out."""
    if len(line) <= limit:
        return line
    return f"{line[:limit]}… ({len(line) - limit:,} more characters cut)"


class JobStore:
    """Job records (Redis hashes), leases, single-flight claims, fan-in sets and log streams."""

    def __init__(self, client: redis.Redis, *, reconnect_s: float = 120.0, ttl: int = keys.JOB_TTL) -> None:
        # A client made with decode_responses=True: redis-py's annotations cannot say it returns str.
        self.redis: Any = client
        self.reconnect_s = reconnect_s
        self.ttl = ttl                  # records, logs and history are kept this long (FARM_HISTORY_DAYS)
        self._scripts: dict[str, Any] = {}

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
        # EVALSHA, loading the script once per server (again after a restart: redis-py handles NOSCRIPT)
        if script not in self._scripts:
            self._scripts[script] = self.redis.register_script(script)
        fn = self._scripts[script]
        return self.call(lambda: fn(keys=keys_, args=args))

    # -- records ---------------------------------------------------------------------------------

    def update(self, job_id: str, **fields: str | float | None) -> None:
        values = {k: ("" if v is None else str(v)) for k, v in fields.items()}

        def write() -> None:
            pipe = self.redis.pipeline()
            pipe.hset(keys.job(job_id), mapping=values)
            pipe.expire(keys.job(job_id), self.ttl)
            pipe.execute()
        self.call(write)

    def get(self, job_id: str) -> dict[str, str]:
        return dict(self.call(lambda: self.redis.hgetall(keys.job(job_id))))

    def records(self, job_ids: Iterable[str]) -> list[dict[str, str]]:
        """The records of several jobs in one round trip ({} for one that expired)."""
        ids = list(job_ids)
        if not ids:
            return []

        def read() -> list[dict[str, str]]:
            pipe = self.redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.hgetall(keys.job(job_id))
            return [dict(r) for r in pipe.execute()]
        return self.call(read)

    # -- the job state machine -------------------------------------------------------------------

    def claim(self, ref: str, job_id: str, *, admit: Admission | None = None, branch_key: str = "",
              force: bool = False, **fields: str | float | None) -> tuple[str, bool]:
        """The job building `ref` now (or that just built it, unless `force`), or this new one (recorded
        `queued` with `fields`): (id, is new).
        A new job with `admit` waits in its queue's waiting room for `dispatch`; `branch_key` indexes
        it for `supersede`."""
        values: dict[str, str | float | None] = {"status": "queued", "ref": ref, **fields}
        values.setdefault("queued_at", time.time())
        if admit is not None:
            values.update(queue=admit.queue, namespace=admit.namespace, priority=admit.priority)
        klass = keys.PRIORITIES[admit.priority] if admit is not None else 0
        got, new = self._eval(
            keys.CLAIM, [keys.flight(ref), keys.job(job_id)],
            [job_id, self.ttl, admit.queue if admit else "", admit.namespace if admit else "", klass, branch_key,
             0 if force else 1, *_fields(values)])
        return str(got), bool(int(new))

    def dispatch(self, queues: Iterable[str] = ()) -> list[Dispatched]:
        """Let waiting jobs into flight while their queues have room (DISPATCH); the caller sends them."""
        flat = self._eval(keys.DISPATCH, [], [repr(now := time.time()), keys.WORKER_TTL, *queues])
        return [Dispatched(str(flat[i]), str(flat[i + 1]), str(flat[i + 2]), str(flat[i + 3]), repr(now))
                for i in range(0, len(flat), 4)]

    def mark_sent(self, job_id: str) -> None:
        """The dispatched job's message is in Celery's queue now."""
        self.call(lambda: self.redis.hset(keys.job(job_id), "sent_at", time.time()))

    def undispatch(self, job_id: str, dispatched_at: str) -> bool:
        """Back to its waiting room: a job dispatched at `dispatched_at` whose message never reached Celery."""
        return bool(self._eval(keys.UNDISPATCH, [keys.job(job_id)], [dispatched_at]))

    def reap(self) -> int:
        """Drop in-flight entries of jobs that ended or expired (REAP); how many."""
        return int(self._eval(keys.REAP, [], []))

    def start(self, job_id: str, owner: str, lease_s: float, worker: str, tag: str) -> Start:
        verdict, attempt, previous = self._eval(
            keys.START, [keys.job(job_id), keys.lease(job_id)],
            [owner, int(lease_s * 1000), time.time(), worker, tag, self.ttl])
        return Start(verdict, int(attempt), previous)

    def renew(self, job_id: str, owner: str, lease_s: float, tag: str) -> int:
        """Keep the lease (and the message's delivery time): HELD; LOST (0) when the job has another
        owner now; CANCEL when a cancel was asked (stop the builder, end the attempt cancelled)."""
        return int(self._eval(keys.RENEW, [keys.job(job_id), keys.lease(job_id), keys.UNACKED_INDEX],
                              [owner, int(lease_s * 1000), time.time(), tag]))

    def finish(self, job_id: str, owner: str, ref: str, **fields: str | float | None) -> bool:
        """End this owner's attempt (status first in `fields`); False for a stale owner (nothing written)."""
        return bool(self._eval(keys.FINISH, [keys.job(job_id), keys.lease(job_id), keys.flight(ref)],
                               [owner, self.ttl, *_fields(fields)]))

    def end_unowned(self, job_id: str, ref: str, **fields: str | float | None) -> bool:
        """End a job nobody runs (status first in `fields`) unless it has ended already."""
        return bool(self._eval(keys.END_UNOWNED, [keys.job(job_id), keys.flight(ref)],
                               [self.ttl, *_fields(fields)]))

    # -- cancel, supersede -----------------------------------------------------------------------

    def cancel(self, job_id: str, why: str, cause: str = "cancelled") -> tuple[str, str]:
        """CANCEL: (verdict, status before): `cancelled` (it ended now), `requested` (its worker stops
        it at its next renewal), `ended` (nothing to do) or `unknown`."""
        verdict, previous = self._eval(keys.CANCEL, [keys.job(job_id)], [time.time(), why, cause, self.ttl])
        return str(verdict), str(previous)

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.call(lambda: self.redis.hget(keys.job(job_id), "cancel_requested_at")))

    def group(self, job_id: str) -> list[str]:
        """The job and, for a multi-platform Build, every job of it: its platform jobs and its merge
        (a Build cancelled in part can never push its index)."""
        record = self.get(job_id)
        merge_id = self.flight_of(record["index"]) if record.get("index") else None
        if record.get("platform") == "index":
            merge_id, merge = job_id, record
        else:
            merge = self.get(merge_id) if merge_id else {}
        out = [job_id]
        if merge_id and merge.get("request"):
            images = MergeRequest.model_validate_json(merge["request"]).platform_images.values()
            for sibling in [merge_id, *(self.flight_of(image) for image in images)]:
                if sibling and sibling not in out:
                    out.append(sibling)
        return out

    def unfinished_before(self, branch_key: str, before: float) -> list[str]:
        """Jobs of a Build on a branch submitted before `before` that have not ended (supersede)."""
        ids = self.call(lambda: self.redis.zrangebyscore(branch_key, "-inf", f"({before}"))
        return [j for j, r in zip(ids, self.records(ids)) if r.get("status") not in (*keys.ENDED, None)]

    def record_cached(self, job_id: str, **fields: str | float | None) -> None:
        """A `cached` record: a Build the registry status check answered, for the history and metrics."""
        self._eval(*cached_record(job_id, self.ttl, **fields))

    def flight_of(self, ref: str) -> str | None:
        """The job building `ref` now (or last), if any."""
        return self.call(lambda: self.redis.get(keys.flight(ref))) or None

    def fanin(self, index_ref: str, platforms: Iterable[str] = ()) -> str | None:
        """Record platforms as pushed; the merge job to send now that its platforms are all there (once)."""
        merge = self._eval(keys.FANIN, [keys.fanin(index_ref), keys.flight(index_ref)],
                           [self.ttl, *platforms])
        return str(merge) or None

    # -- logs --------------------------------------------------------------------------------------

    def log(self, job_id: str, line: str) -> None:
        line = cap_line(line)
        self.call(lambda: self.redis.xadd(keys.log(job_id), {"line": line}, maxlen=keys.LOG_MAXLEN,
                                           approximate=True))

    def expire_log(self, job_id: str) -> None:
        self.call(lambda: self.redis.expire(keys.log(job_id), self.ttl))

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

    def sealing_key(self) -> str:
        """The public sealing key the workers announced ('' when none has)."""
        return str(self.call(lambda: self.redis.get(keys.SEALING_KEY)) or "")

    def announce_sealing_key(self, public: str) -> None:
        self.call(lambda: self.redis.set(keys.SEALING_KEY, public))

    def secrets(self, job_id: str) -> dict[str, str]:
        return dict(self.call(lambda: self.redis.hgetall(keys.secrets(job_id))))

    def drop_secrets(self, job_id: str) -> None:
        self.call(lambda: self.redis.delete(keys.secrets(job_id)))
