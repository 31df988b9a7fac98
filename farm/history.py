"""The job history: who submitted what, how long it waited and ran, how it ended (`farm jobs`).

Read from the sorted-set indexes the job scripts keep (`farm.keys`: every job by submission time,
per namespace, per Build and per state), never by scanning keys: a query takes the most selective
index for its filters (one ZCOUNT each), pages through it newest first with ZREVRANGEBYSCORE and
LIMIT, keeps the ids the other filters' indexes hold (one ZMSCORE each per page), and reads only
those records, in one pipeline.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from farm import keys
from farm.jobs import JobStore

_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str) -> float:
    """`90s`, `15m`, `1h`, `2d`, `1w` (or plain seconds) -> seconds; ValueError otherwise."""
    match = _SINCE.match(text)
    if not match:
        raise ValueError(f"--since {text!r}: expected a duration such as 30m, 1h or 2d")
    return float(match.group(1)) * _UNIT[match.group(2)]


@dataclass(frozen=True)
class Query:
    namespace: str | None = None
    build: str | None = None
    state: str | None = None
    since_s: float | None = None    # submitted at most this many seconds ago
    limit: int = 50

    def indexes(self) -> list[str]:
        out = []
        if self.namespace:
            out.append(keys.history_namespace(self.namespace))
        if self.build:
            out.append(keys.history_build(self.build))
        if self.state:
            out.append(keys.history_state(self.state))
        return out or [keys.HISTORY]

    def matches(self, record: dict[str, str]) -> bool:
        return bool(record) and all(want is None or record.get(field) == want for field, want in
                                    (("namespace", self.namespace), ("build", self.build), ("status", self.state)))


def query(store: JobStore, q: Query, now: float | None = None) -> list[dict[str, str]]:
    """The newest records matching `q` (each with its `job_id`), at most `q.limit`."""
    now = time.time() if now is None else now
    low: float | str = now - q.since_s if q.since_s is not None else "-inf"
    candidates = q.indexes()
    if len(candidates) > 1:
        def counts() -> list[int]:
            pipe = store.redis.pipeline(transaction=False)
            for key in candidates:
                pipe.zcount(key, low, "+inf")
            return list(pipe.execute())
        sizes = store.call(counts)
        index = min(zip(sizes, candidates))[1]
    else:
        index = candidates[0]
    others = [key for key in candidates if key != index]
    # A page holds what the index gives; with filters it did not apply, read a little ahead.
    page = q.limit if not others else max(q.limit * 4, 50)
    out: list[dict[str, str]] = []
    offset = 0
    while len(out) < q.limit:
        def page_at(o: int = offset) -> list[Any]:
            pipe = store.redis.pipeline(transaction=False)
            pipe.zrevrangebyscore(index, "+inf", low, start=o, num=page)
            return list(pipe.execute())
        (ids,) = store.call(page_at)
        if others and ids:
            def in_others(page_ids: list[str] = ids) -> list[Any]:
                pipe = store.redis.pipeline(transaction=False)
                for key in others:
                    pipe.zmscore(key, page_ids)
                return list(pipe.execute())
            scores = store.call(in_others)
            wanted = [j for n, j in enumerate(ids) if all(s[n] is not None for s in scores)]
        else:
            wanted = list(ids)
        wanted = wanted[: q.limit - len(out)]
        for job_id, record in zip(wanted, store.records(wanted)):
            if q.matches(record):
                out.append({"job_id": job_id, **record})
        if len(ids) < page:
            break
        offset += page
    return out


def _f(record: dict[str, str], key: str) -> float | None:
    try:
        return float(record[key]) if record.get(key) else None
    except ValueError:
        return None


def entry(record: dict[str, str]) -> dict[str, Any]:
    """One record as `farm jobs --json` shows it: what was built, for whom, how long, how it ended."""
    queued, started, attempt, finished = (_f(record, k) for k in
                                          ("queued_at", "started_at", "attempt_started_at", "finished_at"))
    try:
        labels = json.loads(record.get("labels") or "{}")
    except ValueError:
        labels = {}
    status = record.get("status", "")
    return {
        "job_id": record.get("job_id"), "status": status, "namespace": record.get("namespace", ""),
        "project": record.get("project", ""), "build": record.get("build", ""),
        "version": record.get("version", ""), "platform": record.get("platform", ""),
        "image": record.get("image", ""), "priority": record.get("priority", ""),
        "branch": record.get("branch", ""), "commit": record.get("commit", ""), "labels": labels,
        "submitter": record.get("submitter", ""), "submitted_at": queued,
        "queue_wait_s": round(started - queued, 3) if queued and started else None,
        "run_s": round(finished - attempt, 3) if attempt and finished else None,
        "attempts": int(record.get("attempts") or 0), "worker": record.get("worker") or None,
        "digest": record.get("digest") or None if status in ("built", "cached") else None,
        "error": record.get("error") or None if status in ("failed", "cancelled", "retrying") else None,
        "cause": record.get("cause") or record.get("error_type") or None,
    }


def table(entries: list[dict[str, Any]], now: float | None = None) -> list[str]:
    """Aligned lines for a terminal, newest first."""
    now = time.time() if now is None else now

    def secs(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}s" if v < 100 else f"{v / 60:.1f}m"

    rows = [("SUBMITTED", "JOB", "NAMESPACE", "BUILD", "PLATFORM", "VERSION", "BRANCH", "COMMIT", "PRIO",
             "STATE", "WAIT", "RUN", "TRIES", "RESULT")]
    for e in entries:
        ago = now - e["submitted_at"] if e["submitted_at"] else None
        result = e["digest"] or e["error"] or ""
        labels = " ".join(f"{k}={v}" for k, v in sorted(e["labels"].items()))
        rows.append((f"{secs(ago)} ago", (e["job_id"] or "")[:12], e["namespace"], e["build"], e["platform"],
                     e["version"], e["branch"] or "-", (e["commit"] or "-")[:8], e["priority"] or "-",
                     e["status"], secs(e["queue_wait_s"]), secs(e["run_s"]), str(e["attempts"]),
                     (result.splitlines()[0][:60] if result else "") + (f"  [{labels}]" if labels else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
