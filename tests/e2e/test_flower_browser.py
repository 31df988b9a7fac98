"""Flower as an operator sees it: Debian's Chromium, headless, against the stack's REAL Flower after a
real build through a real worker. The task list and the task's page show the farm's readable task
name; neither shows the build secret nor the registry login. The screenshot is kept (its path is
printed) in the stack's state dir, artifacts/flower-tasks.png."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from farm.stack._packages import ensure_binaries, which
from tests.conftest import ROOT, write_project

pytestmark = pytest.mark.e2e
# What this machine's closed network needs (no background connections, no sandbox as root).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--run-all-compositor-stages-before-draw", "--virtual-time-budget=20000"]


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{uuid.uuid4().hex[:6]}"
    binary = which("chromium")
    assert binary
    return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=180, check=False)


def wait_for_task(flower: str, job: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tasks = httpx.get(f"{flower}/api/tasks", timeout=5, trust_env=False).json()
        if tasks.get(job, {}).get("state") == "SUCCESS":
            return dict(tasks[job])
        time.sleep(0.5)
    raise AssertionError(f"Flower did not show task {job} as SUCCESS in 60 s")


def test_flower_in_chromium_shows_readable_task_names_and_no_secret(
        worker: object, stack_env: dict[str, str], tmp_path: Path) -> None:
    ensure_binaries(["chromium"])
    secret = f"s3cret-{uuid.uuid4().hex}"
    proj = write_project(tmp_path / "p", {"api": {"Dockerfile": f"FROM {stack_env['FARM_BASE_IMAGE']}\n"
                                                                f"RUN echo {uuid.uuid4().hex} > /nonce\n"}},
                         extra_build_yaml="spec:\n  secrets:\n    api-token: ${local.env.FARM_TEST_TOKEN}\n")
    built = subprocess.run([sys.executable, "-m", "farm.cli", "build", "--project", str(proj), "--json"],
                           capture_output=True, text=True, cwd=ROOT, timeout=600, check=False,
                           env={**os.environ, "FARM_TEST_TOKEN": secret})
    assert built.returncode == 0, built.stderr
    build = json.loads(built.stdout)["builds"][0]
    job = build["platforms"][0]["job_id"]
    flower = stack_env["FARM_FLOWER_URL"]
    info = wait_for_task(flower, job)
    name = f"build api linux/amd64 {build['version']}"
    assert info["name"] == name

    auth = json.loads((Path(stack_env["DOCKER_CONFIG"]) / "config.json").read_text())["auths"][
        stack_env["FARM_REGISTRY"]]["auth"]
    secrets = [secret, auth, base64.b64decode(auth).decode().partition(":")[2]]

    # Kept beside the stack's logs: pytest's tmp dirs of this machine rotate between runs.
    shot = Path(stack_env["FARM_STATE_DIR"]) / "artifacts" / "flower-tasks.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.unlink(missing_ok=True)
    taken = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1600,1000", f"{flower}/tasks")
    assert shot.exists() and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    print(f"\nFlower screenshot: {shot}")

    listing = chromium(tmp_path, "--dump-dom", f"{flower}/tasks")
    assert listing.returncode == 0, listing.stderr[-2000:]
    # The rows are filled in by the page's own script (DataTables over /tasks/datatable): the DOM
    # holds them only if the browser ran it.
    assert job in listing.stdout and name in listing.stdout, listing.stdout[-3000:]
    page = chromium(tmp_path, "--dump-dom", f"{flower}/task/{job}")
    assert page.returncode == 0 and name in page.stdout and job in page.stdout
    for text in (listing.stdout, page.stdout):
        for s in secrets:
            assert s not in text


def start_flower(env: dict[str, str], port: int, db: Path, auth: str) -> subprocess.Popen[bytes]:
    """Flower as docker-compose.yml and deploy/base/flower.yaml run it: basic auth, persistent state."""
    proc = subprocess.Popen([sys.executable, "-m", "celery", "--broker", env["FARM_BROKER_URL"], "flower",
                             "--address=127.0.0.1", f"--port={port}", "--persistent=True", f"--db={db}",
                             "--state_save_interval=1000"],
                            env={**{k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")},
                                 "FLOWER_BASIC_AUTH": auth}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2, trust_env=False).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise AssertionError("Flower did not start in 60 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_flower_with_auth_and_persistent_state_in_chromium(
        worker: object, stack_env: dict[str, str], tmp_path: Path) -> None:
    ensure_binaries(["chromium"])
    from tests.integration.registry_services import free_port

    port, password = free_port(), uuid.uuid4().hex
    auth = f"admin:{password}"
    db = tmp_path / "flower.db"
    flower = start_flower(stack_env, port, db, auth)
    try:
        proj = write_project(tmp_path / "p", {"api": {"Dockerfile": f"FROM {stack_env['FARM_BASE_IMAGE']}\n"
                                                                    f"RUN echo {uuid.uuid4().hex} > /nonce\n"}})
        built = subprocess.run([sys.executable, "-m", "farm.cli", "build", "--project", str(proj), "--json"],
                               capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
        assert built.returncode == 0, built.stderr
        build = json.loads(built.stdout)["builds"][0]
        job = build["platforms"][0]["job_id"]
        assert httpx.get(f"http://127.0.0.1:{port}/api/tasks", timeout=5, trust_env=False).status_code == 401
        deadline = time.monotonic() + 60
        while job not in httpx.get(f"http://127.0.0.1:{port}/api/tasks", auth=("admin", password), timeout=5,
                                   trust_env=False).json():
            assert time.monotonic() < deadline, "Flower did not see the task"
            time.sleep(0.5)
    finally:
        stop(flower)                     # SIGTERM: Flower saves its state to the db
    # A new Flower on the same db shows the task without having seen it happen.
    flower = start_flower(stack_env, port, db, auth)
    try:
        refused = chromium(tmp_path, "--dump-dom", f"http://127.0.0.1:{port}/tasks")
        assert job not in refused.stdout and "build api" not in refused.stdout
        shown = chromium(tmp_path, "--dump-dom", f"http://admin:{password}@127.0.0.1:{port}/tasks")
        assert job in shown.stdout and f"build api linux/amd64 {build['version']}" in shown.stdout, \
            shown.stdout[-2000:]
    finally:
        stop(flower)
