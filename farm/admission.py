"""Admission: the farm decides what enters Celery's queues, and when; Celery stays the transport.

A new build job waits in the waiting room of its (queue, namespace), ordered by priority class then
submission (`JobStore.claim`). `dispatch` lets jobs into flight while their queue has room (the
concurrency of the live workers serving it), taking namespaces in round-robin order within the best
priority class waiting and holding back a namespace at its cap, and sends each task by name, with a
Celery priority and a readable name (`shadow`). It runs after a submission (the producer), after a
job ends (its worker) and every few seconds (each worker's presence thread), so nothing depends on
one process staying alive. `maintain` also returns dispatched jobs whose message never reached
Celery to their waiting room, drops in-flight entries of jobs that are gone, and trims the history.
Celery's queues stay shallow, so priority and fairness are decided here, not by the order of a list.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from farm import keys
from farm.broker import TASK_BUILD_PLATFORM, TASK_MERGE_INDEX
from farm.jobs import BuildRequest, JobStore, MergeRequest

if TYPE_CHECKING:
    from celery import Celery

# kombu's Redis transport pops priority 0 first (its lists `queue`, `queue\x06\x163`, …).
CELERY_PRIORITY = {"high": 0, "normal": 3, "low": 6}
KOMBU_SEP = "\x06\x16"
KOMBU_STEPS = (0, 3, 6, 9)
# A dispatched job not started this long after its dispatch is checked: never sent, or its message
# not in Celery's queue nor delivered to a worker, it goes back to its waiting room.
STALE_S = 30.0
TRIM_EVERY_S = 60


def shadow(req: BuildRequest) -> str:
    """The task's name as Flower and the worker's log show it: `build api linux/arm64 v-…`."""
    return f"build {req.build} {req.platform} {req.version}"


def merge_shadow(req: MergeRequest) -> str:
    return f"merge {req.build} {req.version}"


def _argsrepr(req: BuildRequest | MergeRequest) -> str:
    """What Flower shows of the arguments: who, what, where (task arguments hold no secret anyway)."""
    return json.dumps({"job_id": req.job_id, "project": req.project, "build": req.build, "version": req.version,
                       "image": req.image, "platform": getattr(req, "platform", "index")})


def send_build(app: Celery, req: BuildRequest, queue: str, priority: str = "normal") -> None:
    app.send_task(TASK_BUILD_PLATFORM, args=[req.model_dump(mode="json")], task_id=req.job_id, queue=queue,
                  priority=CELERY_PRIORITY.get(priority, 3), shadow=shadow(req), argsrepr=_argsrepr(req))


def send_merge(app: Celery, req: MergeRequest, queue: str) -> None:
    app.send_task(TASK_MERGE_INDEX, args=[req.model_dump(mode="json")], task_id=req.job_id, queue=queue,
                  shadow=merge_shadow(req), argsrepr=_argsrepr(req))


def dispatch(app: Celery, store: JobStore, queues: Iterable[str] = ()) -> list[str]:
    """Let waiting jobs into flight where there is room, and send them; the ids sent."""
    sent = []
    for d in store.dispatch(queues):
        try:
            req = BuildRequest.model_validate_json(d.request)
        except ValidationError as exc:
            store.end_unowned(d.job_id, store.get(d.job_id).get("ref", ""), status="failed",
                              finished_at=time.time(), error=f"the job's task request is unreadable: {exc}")
            continue
        send_build(app, req, d.queue, d.priority)
        store.mark_sent(d.job_id)
        sent.append(d.job_id)
    return sent


def celery_ids(store: JobStore, queue: str) -> set[str]:
    """Task ids of the messages in a Celery queue (every priority list) or delivered and unacknowledged."""
    def read() -> list[Any]:
        pipe = store.redis.pipeline(transaction=False)
        for step in KOMBU_STEPS:
            pipe.lrange(queue if step == 0 else f"{queue}{KOMBU_SEP}{step}", 0, -1)
        pipe.hvals(keys.UNACKED)
        return list(pipe.execute())
    out = set()
    *lists, unacked = store.call(read)
    for raw in [m for lst in lists for m in lst] + [json.loads(u)[0] for u in unacked]:
        message = json.loads(raw) if isinstance(raw, str) else raw
        task_id = (message.get("headers") or {}).get("id")
        if task_id:
            out.add(task_id)
    return out


def requeue_stale(store: JobStore, now: float | None = None) -> list[str]:
    """Dispatched jobs whose message never reached Celery, back to their waiting rooms; their ids."""
    now = time.time() if now is None else now
    queues = sorted(store.call(lambda: store.redis.smembers(keys.QUEUES)))
    out = []
    for queue in queues:
        def dispatched_before(q: str = queue) -> list[str]:
            return list(store.redis.zrangebyscore(keys.in_flight(q), "-inf", now - STALE_S))
        ids = store.call(dispatched_before)
        stale = [(j, r) for j, r in zip(ids, store.records(ids)) if r.get("status") == "queued"]
        if not stale:
            continue
        in_celery = celery_ids(store, queue) if any(r.get("sent_at") for _, r in stale) else set()
        for job_id, record in stale:
            if job_id not in in_celery and store.undispatch(job_id, record.get("dispatched_at", "")):
                out.append(job_id)
    return out


def trim_history(store: JobStore, now: float | None = None) -> None:
    """Drop index entries older than the retention period (their records expire with it)."""
    cutoff = (time.time() if now is None else now) - store.ttl
    indexes = store.call(lambda: store.redis.smembers(keys.HISTORY_INDEXES))

    def trim() -> None:
        pipe = store.redis.pipeline(transaction=False)
        for key in [keys.HISTORY, *(keys.history_state(s) for s in keys.STATES), *indexes]:
            pipe.zremrangebyscore(key, "-inf", cutoff)
        pipe.execute()
        empty = [k for k in indexes if not store.redis.exists(k)]
        if empty:
            store.redis.srem(keys.HISTORY_INDEXES, *empty)
    store.call(trim)


def forget_gone_workers(store: JobStore, now: float | None = None) -> None:
    """Drop the concurrency of workers no longer heard from (their serving entries expire in DISPATCH)."""
    now = time.time() if now is None else now
    live = set(store.call(lambda: store.redis.zrangebyscore(keys.WORKERS, now - keys.WORKER_TTL, "+inf")))
    gone = [w for w in store.call(lambda: store.redis.hkeys(keys.CONCURRENCY)) if w not in live]
    if gone:
        store.call(lambda: store.redis.hdel(keys.CONCURRENCY, *gone))


def maintain(app: Celery, store: JobStore) -> list[str]:
    """The periodic round: reap, requeue what was never sent, trim the history and forget gone workers
    (once a minute across the farm), dispatch. The ids sent."""
    store.reap()
    requeue_stale(store)
    if store.call(lambda: store.redis.set(keys.TRIMMED, "1", nx=True, ex=TRIM_EVERY_S)):
        trim_history(store)
        forget_gone_workers(store)
    return dispatch(app, store)


def parse_caps(text: str) -> dict[str, int]:
    """`team-a=4,team-b=1` -> {"team-a": 4, "team-b": 1}; ValueError naming a bad entry."""
    out: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip().isdigit():
            raise ValueError(f"FARM_NAMESPACE_CAPS: {item!r} is not namespace=number")
        out[name.strip()] = int(value)
    return out


def policy(cap: int, caps: Mapping[str, int]) -> dict[str, str]:
    """The fair-share policy as the workers announce it (`farm:policy`)."""
    return {"cap": str(cap), **{f"cap:{ns}": str(n) for ns, n in caps.items()}}
