"""The live workers and what they serve: each worker announces its queues and concurrency every few
seconds, so a producer can tell a job that waits for a busy worker from one that no live worker can
run, and admission knows each queue's capacity (`farm:serving:<queue>`, `farm:concurrency`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from farm import keys
from farm.broker import parse_queue, platform_slug

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    host: str
    pid: int
    queues: tuple[str, ...]
    started_at: float
    concurrency: int = 1


def announce(client: redis.Redis, info: WorkerInfo, policy: Mapping[str, str] | None = None) -> None:
    """This worker is alive and serves `info.queues` with `info.concurrency` builds at once (call
    every few seconds); `policy`: the farm's fair-share settings (`farm:policy`) it runs with."""
    now = time.time()
    pipe: Any = client.pipeline()
    pipe.set(keys.worker(info.name), json.dumps(asdict(info)), ex=keys.WORKER_TTL)
    pipe.zadd(keys.WORKERS, {info.name: now})
    pipe.zremrangebyscore(keys.WORKERS, 0, now - keys.WORKER_TTL)
    pipe.hset(keys.CONCURRENCY, info.name, info.concurrency)
    for queue in info.queues:
        pipe.zadd(keys.serving(queue), {info.name: now})
    if policy is not None:
        pipe.delete(keys.POLICY)
        pipe.hset(keys.POLICY, mapping=dict(policy))
    pipe.execute()


def retire(client: redis.Redis, name: str, queues: Iterable[str] = ()) -> None:
    pipe: Any = client.pipeline()
    pipe.delete(keys.worker(name))
    pipe.zrem(keys.WORKERS, name)
    pipe.hdel(keys.CONCURRENCY, name)
    for queue in queues:
        pipe.zrem(keys.serving(queue), name)
    pipe.execute()


def live(client: redis.Redis) -> list[WorkerInfo]:
    r: Any = client
    names = r.zrangebyscore(keys.WORKERS, time.time() - keys.WORKER_TTL, "+inf")
    out = []
    for raw in r.mget([keys.worker(n) for n in names]) if names else []:
        if raw:
            data = json.loads(raw)
            out.append(WorkerInfo(**{**data, "queues": tuple(data["queues"]),
                                     "concurrency": int(data.get("concurrency", 1))}))
    return out


def why_waiting(queue: str, workers: Iterable[WorkerInfo]) -> str | None:
    """None when a live worker serves `queue`, else why a job on it cannot start."""
    served = {q for w in workers for q in w.queues}
    if queue in served:
        return None
    parsed = parse_queue(queue)
    if parsed is None:
        return f"no worker serves {queue}"
    mode, slug = parsed
    where = f"{mode} on {slug.replace('-', '/')}"
    if not served:
        return f"no worker is running (none for {where})"
    others = sorted({p[0] for q in served if (p := parse_queue(q)) and p[1] == slug})
    return f"no worker for {where}" + (f" (the workers for that platform run {', '.join(others)})" if others else "")
