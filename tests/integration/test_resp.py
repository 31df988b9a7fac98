"""farm.resp against the stack's real Redis: the one script call a cached answer makes without redis-py."""

from __future__ import annotations

import uuid

import pytest
import redis

from farm import resp
from farm.jobs import JobStore, cached_record

SCRIPT = "redis.call('SET', KEYS[1], ARGV[1]); return {ARGV[1], 7}"


def test_eval_script_loads_the_script_when_the_server_lacks_it(stack_env: dict[str, str]) -> None:
    url = stack_env["FARM_BROKER_URL"]
    client = redis.Redis.from_url(url, decode_responses=True)
    client.script_flush()
    key = f"farm-test:resp:{uuid.uuid4().hex}"
    try:
        assert resp.eval_script(url, SCRIPT, [key], ["one"]) == (True, ["one", 7])   # EVAL after NOSCRIPT
        assert resp.eval_script(url, SCRIPT, [key], ["two"]) == (True, ["two", 7])   # EVALSHA
        assert client.get(key) == "two"
    finally:
        client.delete(key)


def test_error_replies_and_other_schemes(stack_env: dict[str, str]) -> None:
    url = stack_env["FARM_BROKER_URL"]
    with pytest.raises(resp.RespError, match="ERR"):
        resp.eval_script(url, "return redis.call('NOSUCHCOMMAND')", [], [])
    assert resp.eval_script("rediss://127.0.0.1:1/0", SCRIPT, ["k"], ["v"]) == (False, None)
    with pytest.raises(OSError):
        resp.eval_script("redis://127.0.0.1:1/0", SCRIPT, ["k"], ["v"], timeout=1)


def test_a_cached_record_sent_without_redis_py_reads_back_like_one_sent_with_it(stack_env: dict[str, str]) -> None:
    url = stack_env["FARM_BROKER_URL"]
    store = JobStore(redis.Redis.from_url(url, decode_responses=True))
    ids = uuid.uuid4().hex, uuid.uuid4().hex
    fields = {"build": "api", "project": "p", "digest": "sha256:" + "a" * 64, "image": "r/p/api:v-1"}
    script, keys_, args = cached_record(ids[0], 3600, **fields)
    assert resp.eval_script(url, script, keys_, [str(a) for a in args])[0]
    store.record_cached(ids[1], **fields)
    first, second = store.get(ids[0]), store.get(ids[1])
    assert first["status"] == second["status"] == "cached"
    assert {k: first[k] for k in fields} == {k: second[k] for k in fields} == fields
