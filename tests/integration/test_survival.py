"""A farm that never loses or doubles a build, through REAL `farm build` processes, REAL worker processes
killed with SIGKILL, the REAL Redis restarted, the real engine and registry.

These tests use Redis databases of their own (2 and 3) so the session's shared worker never takes
their jobs, and short leases (FARM_LEASE=6, FARM_VISIBILITY_TIMEOUT=12) so a lost worker's job runs
again within seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from farm import keys, plan
from tests.conftest import ROOT, start_worker, stop_worker, write_project

pytestmark = pytest.mark.integration

LEASE = {"FARM_LEASE": "6", "FARM_VISIBILITY_TIMEOUT": "12"}


@pytest.fixture
def env(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The stack, on Redis databases no other test's worker listens to, emptied first."""
    base = stack_env["FARM_BROKER_URL"].rsplit("/", 1)[0]
    out = {**stack_env, **LEASE, "FARM_BROKER_URL": f"{base}/2", "FARM_RESULT_BACKEND": f"{base}/3"}
    for db in (2, 3):
        redis.Redis.from_url(f"{stack_env['FARM_REDIS_ADMIN_URL']}/{db}").flushdb()
    yield out


def rdb(env: dict[str, str]) -> redis.Redis:
    return redis.Redis.from_url(env["FARM_BROKER_URL"], decode_responses=True)


def slow_project(tmp_path: Path, env: dict[str, str], seconds: int, mode: str = "local-docker",
                 platforms: str = "", push_mb: int = 0) -> Path:
    """One Build whose RUN step takes `seconds` (and adds `push_mb` MB to push); a fresh nonce, so
    nothing is cached."""
    nonce = uuid.uuid4().hex
    blob = f" && dd if=/dev/urandom of=/blob bs=1M count={push_mb} 2>/dev/null" if push_mb else ""
    dockerfile = f"FROM {env['FARM_BASE_IMAGE']}\nRUN sleep {seconds} && echo {nonce} > /nonce{blob}\n"
    if platforms:
        dockerfile = "FROM scratch\nCOPY nonce /nonce\n"
    return write_project(tmp_path / f"p-{nonce[:8]}", {"api": {"Dockerfile": dockerfile, "nonce": nonce}},
                         mode=mode, extra_build_yaml=platforms)


def farm(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "farm.cli", *args], env={**os.environ, **env}, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, dict, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, json.loads(out) if out.strip() else {}, err


def jobs_of(r: redis.Redis, image_prefix: str) -> dict[str, dict[str, str]]:
    found = {}
    for key in r.scan_iter("farm:job:*"):
        record = r.hgetall(key)
        if record.get("image", "").startswith(image_prefix):
            found[key.removeprefix("farm:job:")] = record
    return found


def wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout} s")


def test_twenty_concurrent_submissions_share_one_build(env: dict[str, str], tmp_path: Path) -> None:
    root = slow_project(tmp_path, env, 3)
    worker = start_worker(env, ["linux/amd64"], tmp_path / "w.log", modes=["local-docker"])
    try:
        procs = [farm(env, "build", "--project", str(root), "--json") for _ in range(20)]
        outcomes = [result(p) for p in procs]
    finally:
        stop_worker(worker)
    assert all(code == 0 for code, _, _ in outcomes), [err[-500:] for code, _, err in outcomes if code]
    builds = [doc["builds"][0] for _, doc, _ in outcomes]
    followed = [b for b in builds if b["status"] == "built"]
    # A CLI slow to start may find the image already pushed: the registry's answer, the same digest.
    assert followed and all(b["status"] in ("built", "cached") for b in builds)
    assert len({b["digest"] for b in builds}) == 1
    assert len({b["platforms"][0]["job_id"] for b in followed}) == 1      # one job, followed by all
    assert sum(not b["platforms"][0]["shared"] for b in followed) == 1    # claimed by one submitter
    built = {j: rec for j, rec in jobs_of(rdb(env), builds[0]["image"]).items() if rec["status"] != "cached"}
    (job_id, record), = built.items()                                     # one build job in Redis
    assert record["status"] == "built" and record["attempts"] == "1"
    log = [e["line"] for _, e in rdb(env).xrange(keys.log(job_id))]
    assert sum(line.startswith("$ docker build") for line in log) == 1   # the builder ran once


def image_of(root: Path) -> str:
    project, versions = plan.load(root)
    return plan.plan(project, versions).builds[0].outputs.deployment_image_id


def log_lines(r: redis.Redis, job_id: str) -> list[str]:
    return [entry["line"] for _, entry in r.xrange(keys.log(job_id))]


# When to kill the worker running the job: (name, a log line it has reached or None, then seconds).
# Before the builder starts, during the build, during the push.
KILLS = [("at start", None, 0.0), ("after materialising", "context ", 0.0),
         ("builder starting", "$ docker build", 0.0), ("early in the build", "$ docker build", 0.5),
         ("mid build", "$ docker build", 1.5), ("late in the build", "$ docker build", 2.5),
         ("end of the build", "$ docker build", 2.9), ("at the push", "$ docker push", 0.0),
         ("during the push", "The push refers to repository", 0.0), ("mid build again", "$ docker build", 2.0)]


def test_a_killed_worker_hands_its_build_over_ten_times(env: dict[str, str], tmp_path: Path) -> None:
    r = rdb(env)
    workers = {i: start_worker(env, ["linux/amd64"], tmp_path / f"w{i}.log", modes=["local-docker"])
               for i in range(2)}
    try:
        for n, (name, marker, delay) in enumerate(KILLS):
            root = slow_project(tmp_path, env, 3, push_mb=24)
            image = image_of(root)
            cli = farm(env, "build", "--project", str(root), "--json")
            job_id = wait_for(lambda: next((j for j, rec in jobs_of(r, image).items()
                                            if rec.get("status") == "started"), None), 60, f"{name}: started")
            if marker:
                wait_for(lambda: any(line.startswith(marker) for line in log_lines(r, job_id)), 60,
                         f"{name}: the job reached '{marker}'")
            time.sleep(delay)
            owner = r.hget(keys.job(job_id), "worker") or ""
            victim = next(i for i, p in workers.items() if owner.startswith(f"farm-{p.pid}@"))
            os.killpg(workers[victim].pid, signal.SIGKILL)           # the node is gone
            workers[victim].wait()
            killed_at = time.monotonic()
            workers[victim] = start_worker(env, ["linux/amd64"], tmp_path / f"w{victim}-{n}.log",
                                           modes=["local-docker"])
            wait_for(lambda: r.hget(keys.job(job_id), "attempts") == "2", 90, f"{name}: the job running again")
            recovery = time.monotonic() - killed_at
            print(f"{name}: running again {recovery:.1f} s after the kill")
            code, doc, err = result(cli)
            assert code == 0, f"{name}: {err[-2000:]}"
            record = r.hgetall(keys.job(job_id))
            assert record["status"] == "built" and record["digest"] == doc["builds"][0]["digest"], name
            assert record["attempts"] == "2" and "the worker was lost" in record["lost"], (name, record)
            assert recovery < 60, f"{name}: {recovery:.0f} s from the kill to the job running again"
            assert sum(line.startswith("farm: built") for line in log_lines(r, job_id)) == 1, name
        assert not list(r.scan_iter("farm:lease:*"))                        # no orphaned lease
        # Only just-built claims are left, each expiring. (The first builds' claims may expire while
        # this looks: a key gone between the scan and its reads is one that did expire.)
        claims = {k: (r.get(k), r.ttl(k)) for k in r.scan_iter("farm:flight:*")}
        left = {k: (j, ttl, r.hget(keys.job(j), "status") if j else None) for k, (j, ttl) in claims.items()
                if j is not None and ttl != -2}
        assert all(status == "built" and 0 < ttl <= keys.BUILT_GRACE for _, ttl, status in left.values()), left
        assert not r.hlen(keys.UNACKED)                                     # no message left behind
    finally:
        for p in workers.values():
            stop_worker(p)


def test_redis_restarts_under_queued_and_running_builds(env: dict[str, str], stack_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    from farm.stack import Stack

    worker = start_worker(env, ["linux/amd64"], tmp_path / "w.log", modes=["local-docker"])
    r = rdb(env)
    try:
        roots = [slow_project(tmp_path, env, 4) for _ in range(3)]          # one runs, two wait
        clis = [farm(env, "build", "--project", str(root), "--json") for root in roots]
        wait_for(lambda: any(rec.get("status") == "started" for rec in jobs_of(r, "").values()), 60,
                 "a build running")
        Stack(Path(stack_env["FARM_STATE_DIR"])).restart("redis")           # down for a few seconds
        outcomes = [result(cli, timeout=400) for cli in clis]
    finally:
        stop_worker(worker)
    failures = [[line for line in err.splitlines() if "FAILED" in line or "error" in line.lower()][-5:]
                for code, _, err in outcomes if code]
    assert [code for code, _, _ in outcomes] == [0, 0, 0], failures
    assert all(doc["builds"][0]["status"] == "built" for _, doc, _ in outcomes)
    records = jobs_of(r, "")
    assert len(records) == 3 and all(rec["status"] == "built" for rec in records.values())


def test_a_job_no_worker_can_run_waits_with_the_reason_then_runs(env: dict[str, str], tmp_path: Path) -> None:
    root = slow_project(tmp_path, env, 0, mode="cluster-buildkit", platforms="spec:\n  platforms: [linux/s390x]\n")
    cli = farm(env, "build", "--project", str(root), "--json")
    r = rdb(env)
    job_id = wait_for(lambda: next(iter(jobs_of(r, "")), None), 60, "the job queued")
    wait_for(lambda: r.hget(keys.job(job_id), "waiting"), 30, "a waiting reason")
    assert r.hget(keys.job(job_id), "waiting") == "no worker is running (none for cluster-buildkit on linux/s390x)"
    status = subprocess.run([sys.executable, "-m", "farm.cli", "status", job_id], env={**os.environ, **env},
                            capture_output=True, text=True, cwd=ROOT)
    assert "waiting: no worker is running (none for cluster-buildkit on linux/s390x)" in status.stdout
    worker = start_worker(env, ["linux/s390x"], tmp_path / "w.log", modes=["cluster-buildkit"])
    try:
        code, doc, err = result(cli)
    finally:
        stop_worker(worker)
    assert code == 0, err
    assert "linux/s390x is waiting: no worker is running (none for cluster-buildkit on linux/s390x)" in err
    assert doc["builds"][0]["status"] == "built"


def test_the_stack_worker_takes_only_what_it_can_run(stack_env: dict[str, str]) -> None:
    """`make demo` then `make test`: the stack's worker, started before buildkitd, serves only
    local-docker; `farm stack up --with buildkitd` restarts it with cluster-buildkit too."""
    from farm.stack import DEFAULT_SERVICES, Stack, _worker

    st = Stack(Path(stack_env["FARM_STATE_DIR"]))
    was_running = st.worker_status().startswith("running")
    before_buildkitd = {k: v for k, v in stack_env.items() if k not in ("BUILDKIT_HOST", "FARM_BUILDCTL")}
    path = st.paths.log("worker")
    offset = path.stat().st_size if path.exists() else 0

    def log() -> str:                       # what the worker wrote during this test
        return path.read_text()[offset:] if path.exists() else ""

    try:
        _worker.stop_worker(st.paths)
        _worker.start(st.paths, before_buildkitd)                          # as `make demo` starts it
        wait_for(lambda: "farm worker: serving" in log(), 60, "the worker started")
        assert "not serving cluster-buildkit: BUILDKIT_HOST is not set" in log()
        assert "build.cluster-buildkit." not in log()
        st.up([*DEFAULT_SERVICES, "buildkitd"])                            # `make test`'s stack up
        wait_for(lambda: log().count("farm worker: serving") == 2, 60, "the worker restarted")
        assert "build.cluster-buildkit.linux-amd64" in log().rsplit("farm worker: serving", 1)[-1]
    finally:
        if not was_running:
            _worker.stop_worker(st.paths)
