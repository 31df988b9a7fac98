"""farm.keys and farm.jobs against the stack's REAL Redis: records, logs, secrets, the fan-in script."""

from __future__ import annotations

import time
import uuid

import pytest
import redis

from farm import keys
from farm.jobs import JobStore
from tests.conftest import run_together

pytestmark = pytest.mark.integration


@pytest.fixture
def store(stack_env: dict[str, str]) -> JobStore:
    return JobStore(redis.Redis.from_url(stack_env["FARM_BROKER_URL"], decode_responses=True))


def test_a_record_lives_under_its_key_with_a_ttl(store: JobStore) -> None:
    job = uuid.uuid4().hex
    store.update(job, status="queued", build="api", queued_at=1.5, digest=None)
    assert store.get(job) == {"status": "queued", "build": "api", "queued_at": "1.5", "digest": ""}
    assert store.redis.hgetall(keys.job(job))["build"] == "api"
    assert 0 < store.redis.ttl(keys.job(job)) <= keys.JOB_TTL


def test_log_lines_are_followed_from_a_cursor(store: JobStore) -> None:
    job = uuid.uuid4().hex
    for n in range(3):
        store.log(job, f"line {n}")
    cursors: dict[str, str] = {}
    assert [line for _, line in store.follow([job], cursors, block_ms=10)] == ["line 0", "line 1", "line 2"]
    store.log(job, "line 3")
    assert list(store.follow([job], cursors, block_ms=10)) == [(job, "line 3")]
    assert store.tail(job, 2) == ["line 2", "line 3"]


def test_secrets_wait_under_their_own_key_until_dropped(store: JobStore) -> None:
    job = uuid.uuid4().hex
    store.put_secrets(job, {"tok": "s3cret"}, ttl=60)
    assert store.secrets(job) == {"tok": "s3cret"} and 0 < store.redis.ttl(keys.secrets(job)) <= 60
    store.drop_secrets(job)
    assert store.secrets(job) == {} and not store.redis.exists(keys.secrets(job))


def _claim(store: JobStore, ref: str, **fields: str) -> tuple[str, bool]:
    return store.claim(ref, uuid.uuid4().hex, build="api", **fields)


def test_single_flight_one_claim_wins_and_the_rest_follow_it(store: JobStore) -> None:
    ref = f"reg/ns/api:v-{uuid.uuid4().hex[:10]}"
    got: list[tuple[str, bool]] = []
    assert run_together(20, lambda: got.append(_claim(store, ref))) == []
    winners = [job for job, new in got if new]
    assert len(winners) == 1 and {job for job, _ in got} == set(winners)
    assert store.get(winners[0])["status"] == "queued" and store.flight_of(ref) == winners[0]


def test_a_job_runs_once_is_renewed_and_ends_once(store: JobStore) -> None:
    ref = f"reg/ns/api:v-{uuid.uuid4().hex[:10]}"
    job, _ = _claim(store, ref)
    first = store.start(job, "owner-a", 5, "worker-a", "tag-a")
    assert (first.verdict, first.attempt) == ("run", 1)
    assert store.start(job, "owner-b", 5, "worker-b", "tag-b").verdict == "busy"   # a second delivery
    store.redis.zadd(keys.UNACKED_INDEX, {"tag-a": 1})
    assert store.renew(job, "owner-a", 5, "tag-a")
    assert store.redis.zscore(keys.UNACKED_INDEX, "tag-a") > 1                    # the message stays fresh
    assert not store.renew(job, "owner-b", 5, "")
    assert not store.finish(job, "owner-b", ref, status="built", digest="sha256:b")  # not its job
    assert store.finish(job, "owner-a", ref, status="built", digest="sha256:a")
    record = store.get(job)
    assert record["status"] == "built" and record["digest"] == "sha256:a" and record["attempts"] == "1"
    assert not store.redis.exists(keys.lease(job))
    assert store.flight_of(ref) == job and 0 < store.redis.ttl(keys.flight(ref)) <= keys.BUILT_GRACE
    assert store.start(job, "owner-c", 5, "worker-c", "tag-c").verdict == "ended"   # redelivered: nothing
    assert _claim(store, ref) == (job, False)          # a late submitter follows the finished build
    new, is_new = store.claim(ref, uuid.uuid4().hex, force=True, build="api")
    assert is_new and new != job                                                     # --force builds again
    store.redis.zrem(keys.UNACKED_INDEX, "tag-a")


def test_a_lapsed_lease_hands_the_job_to_the_next_worker(store: JobStore) -> None:
    ref = f"reg/ns/api:v-{uuid.uuid4().hex[:10]}"
    job, _ = _claim(store, ref)
    assert store.start(job, "owner-a", 0.2, "worker-a", "").verdict == "run"
    time.sleep(0.3)                                                                  # worker-a died
    second = store.start(job, "owner-b", 5, "worker-b", "")
    assert (second.verdict, second.attempt, second.previous) == ("run", 2, "started")
    assert "attempt 1 on worker-a: the worker was lost" in store.get(job)["lost"]
    assert not store.renew(job, "owner-a", 5, "")                                    # a and its builder stop
    assert not store.finish(job, "owner-a", ref, status="built", digest="sha256:stale")
    assert store.finish(job, "owner-b", ref, status="built", digest="sha256:b")
    assert store.get(job)["digest"] == "sha256:b"


def test_the_fan_in_sends_the_merge_once_whatever_the_order(store: JobStore) -> None:
    index = f"reg/ns/api:v-{uuid.uuid4().hex[:10]}"
    platforms = [f"linux/p{n}" for n in range(8)]
    assert store.fanin(index, ["linux/p0"]) is None                                  # no merge yet
    merge, _ = _claim(store, index, platforms=",".join(platforms))
    assert store.fanin(index) is None                                                # 1 of 8
    sent: list[str] = []
    pending = platforms * 3              # every platform job reports three times (redelivery)

    def report() -> None:
        if got := store.fanin(index, [pending.pop()]):
            sent.append(got)

    assert run_together(len(pending), report) == []
    assert sent == [merge]
    assert store.fanin(index, ["linux/p1"]) is None                                  # never again
    store.end_unowned(merge, index, status="failed", error="x")
    assert store.get(merge)["status"] == "failed" and store.flight_of(index) is None
