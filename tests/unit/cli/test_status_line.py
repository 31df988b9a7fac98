"""`farm status` shows why a queued job waits, also when a worker sent it back (farm/cli/jobs.py)."""

from __future__ import annotations

from farm.cli.jobs import describe


def test_a_job_a_worker_sent_back_says_why() -> None:
    why = "this worker (linux/amd64) cannot build local-docker for linux/arm64: …; it waits for a linux/arm64 worker"
    line = describe("j1", {"status": "queued", "queued_at": "100", "refused": why}, now=130)
    assert f"waiting: {why}" in line
    assert "waiting" not in describe("j1", {"status": "queued", "queued_at": "100"}, now=130).split("queued", 1)[1]
