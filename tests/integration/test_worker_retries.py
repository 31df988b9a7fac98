"""Retries through a REAL worker process on the REAL Redis: a transient failure (the worker's buildkitd
is unreachable) is retried by Celery a bounded number of times and ends failed with the attempts and
the cause on the job record; a permanent failure (a Dockerfile error) is tried once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from farm import build as flow
from farm import plan
from farm.broker import redis_client
from farm.jobs import JobStore
from farm.settings import get_settings
from tests.conftest import start_worker, stop_worker, write_project

pytestmark = pytest.mark.integration


def _build(root: Path):  # type: ignore[no-untyped-def]
    planned = plan.plan(*plan.load(root))
    lines: list[str] = []
    outcome = flow.run(planned, get_settings(), force=True, wait=True, say=lambda _: None,
                       progress=lambda _: None,  # type: ignore[arg-type,return-value]
                       on_line=lambda job, line: lines.append(line))
    (result,) = outcome.results["api"]
    return result, lines


def test_transient_failures_are_retried_then_fail_with_the_cause(stack_env: dict[str, str], tmp_path: Path) -> None:
    # A platform only this test's worker serves, so no other worker takes the job.
    env = {**stack_env, "BUILDKIT_HOST": "unix:///tmp/farm-no-such-buildkitd.sock", "FARM_RETRIES": "2",
           "FARM_RETRY_BACKOFF": "0.2"}
    proc = start_worker(env, ["linux/s390x"], tmp_path / "worker.log", modes=["cluster-buildkit"])
    try:
        root = write_project(tmp_path / "p", {"api": {"Dockerfile": f"FROM scratch\nLABEL t={uuid.uuid4().hex}\n"}},
                             mode="cluster-buildkit", extra_build_yaml="spec:\n  platforms: [linux/s390x]\n")
        result, lines = _build(root)
    finally:
        stop_worker(proc)
    assert result.status == "failed"
    assert "buildkitd at unix:///tmp/farm-no-such-buildkitd.sock is unreachable" in (result.error or "")
    record = JobStore(redis_client(get_settings())).get(result.job_id or "")
    assert record["attempts"] == "3" and record["retryable"] == "1"
    assert record["error_type"] == "TransientBuildError"
    assert sum("retrying in" in line for line in lines) == 2


def test_a_permanent_failure_is_tried_once(worker: object, tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"api": {
        "Dockerfile": f"FROM scratch\nLABEL t={uuid.uuid4().hex}\nCOPY missing.txt /\n"}})
    result, lines = _build(root)
    assert result.status == "failed"
    record = JobStore(redis_client(get_settings())).get(result.job_id or "")
    assert record["attempts"] == "1" and record["retryable"] == "0"
    assert record["error_type"] == "PermanentBuildError"
    assert not any("retrying in" in line for line in lines)
