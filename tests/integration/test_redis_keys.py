"""farm.keys and farm.jobs against the stack's REAL Redis: records, logs, secrets, the fan-in script."""

from __future__ import annotations

import uuid

import pytest
import redis

from farm import keys
from farm.jobs import JobStore, MergeRequest
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


def test_the_fan_in_completes_exactly_once_under_concurrency(store: JobStore) -> None:
    needs = [uuid.uuid4().hex for _ in range(8)]
    merge = MergeRequest(job_id=uuid.uuid4().hex, project="p", build="api", version="v-1", image="r/ns/api:v-1",
                         platform_images={}, needs=needs)
    completions: list[str] = []
    pending = list(needs) * 3          # every platform job reports three times (redelivery)

    def report() -> None:
        job = pending.pop()
        if store.platform_done(merge, job):
            completions.append(job)

    assert run_together(len(pending), report) == []
    assert len(completions) == 1
    assert store.redis.scard(keys.merge(merge.job_id)) == 8
    assert not store.platform_done(merge, needs[0])       # a late redelivery completes nothing again
