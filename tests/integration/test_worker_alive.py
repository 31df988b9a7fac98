"""The workers' liveness probe (`python -m workers.alive`, used by docker-compose.yml and deploy/) on a
REAL worker: its presence beat touches FARM_HEARTBEAT_FILE while it runs, and the probe fails once
the worker is gone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, start_worker, stop_worker

pytestmark = pytest.mark.integration


def probe(heartbeat: Path, limit: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workers.alive", str(limit)], capture_output=True, text=True,
                          cwd=ROOT, env={"FARM_HEARTBEAT_FILE": str(heartbeat), "PATH": "/usr/bin:/bin"},
                          timeout=30, check=False)


def until(check: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_the_probe_follows_the_workers_own_beat(stack_env: dict[str, str], tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat"
    assert probe(heartbeat, 60).returncode == 1                  # no worker, no file
    worker = start_worker({**stack_env, "FARM_HEARTBEAT_FILE": str(heartbeat)}, ["linux/amd64"],
                          tmp_path / "worker.log")
    try:
        until(heartbeat.exists)
        first = heartbeat.stat().st_mtime
        until(lambda: heartbeat.stat().st_mtime > first)         # touched again: a beat, not a one-off
        assert probe(heartbeat, 60).returncode == 0
    finally:
        stop_worker(worker)
    until(lambda: probe(heartbeat, 2).returncode == 1)           # the beat stopped with the worker
    assert "last heartbeat" in probe(heartbeat, 2).stderr
