"""Scheduling and visibility against the REAL Redis, REAL worker processes, the real engine and registry:
priorities, fair shares and caps, cancel and supersede, the job history, the metrics endpoint, Flower.

Every test uses Redis databases of its own (4 and 5, emptied first) so no other test's worker takes
its jobs. Builds are `RUN sleep N` over the stack's base image (local-docker). Nothing asserts a
wall-clock time: orders, counts and states, read from the job records.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from farm import admission, fleet, keys, plan
from farm.jobs import Admission, JobStore
from farm.settings import Settings
from farm.status import check_status
from tests.conftest import ROOT, start_worker, stop_worker, write_project

pytestmark = pytest.mark.integration

DBS = (4, 5)
COUNTED_DB = 8
AMD64 = "build.local-docker.linux-amd64"


@pytest.fixture
def env(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The stack, on Redis databases no other test's worker listens to, emptied first."""
    base = stack_env["FARM_BROKER_URL"].rsplit("/", 1)[0]
    out = {**stack_env, "FARM_LEASE": "6", "FARM_VISIBILITY_TIMEOUT": "12",
           "FARM_BROKER_URL": f"{base}/{DBS[0]}", "FARM_RESULT_BACKEND": f"{base}/{DBS[1]}"}
    for db in DBS:
        redis.Redis.from_url(f"{stack_env['FARM_REDIS_ADMIN_URL']}/{db}").flushdb()
    yield out


def rdb(env: dict[str, str]) -> redis.Redis:
    return redis.Redis.from_url(env["FARM_BROKER_URL"], decode_responses=True)


def store_of(env: dict[str, str]) -> JobStore:
    return JobStore(rdb(env))


CLIS: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def no_leftover_cli() -> Iterator[None]:
    """A `farm` process a failed test left following its jobs is stopped before the next test."""
    yield
    while CLIS:
        proc = CLIS.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def farm(env: dict[str, str], *args: str, extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "farm.cli", *args], env={**os.environ, **env, **(extra or {})},
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    CLIS.append(proc)
    return proc


def done(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def run(env: dict[str, str], *args: str, extra: dict[str, str] | None = None) -> tuple[int, str, str]:
    return done(farm(env, *args, extra=extra))


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if got := check():
            return got
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout} s")


def sleepy(tmp_path: Path, env: dict[str, str], seconds: float, *, names: tuple[str, ...] = ("api",),
           namespace: str = "farmtest", extra_yaml: str = "") -> Path:
    """A project of Builds whose RUN step sleeps; a fresh nonce (and each Build its own RUN line), so
    nothing is cached, by the registry or by the engine's layer cache."""
    nonce = uuid.uuid4().hex
    builds: dict[str, dict[str, str | bytes]] = {
        name: {"Dockerfile": f"FROM {env['FARM_BASE_IMAGE']}\nRUN sleep {seconds} && echo {nonce} {name} > /nonce\n"}
        for name in names}
    return write_project(tmp_path / f"p-{nonce[:8]}", builds, namespace=namespace, extra_build_yaml=extra_yaml)


def records(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Every job record in the test's database, by id (through the history index, not a scan)."""
    r = rdb(env)
    ids = r.zrange(keys.HISTORY, 0, -1)
    return {j: rec for j, rec in zip(ids, store_of(env).records(ids)) if rec}


def job_ids(out: str) -> list[str]:
    return [line for line in out.split() if len(line) == 32]


def image_of(root: Path, name: str = "api") -> str:
    project, versions = plan.load(root)
    return next(b for b in plan.plan(project, versions).builds if b.name == name).outputs.deployment_image_id


def in_registry(root: Path, name: str = "api") -> str | None:
    project, versions = plan.load(root)
    b = next(b for b in plan.plan(project, versions).builds if b.name == name)
    return check_status(b, Settings()).digest


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., list[subprocess.Popen[bytes]]]]:
    """Start real `farm worker` processes (local-docker, linux/amd64, concurrency 1); all stopped after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(n: int = 1, extra: dict[str, str] | None = None, platforms: tuple[str, ...] = ("linux/amd64",)
              ) -> list[subprocess.Popen[bytes]]:
        procs = [start_worker({**env, **(extra or {})}, platforms, tmp_path / f"w{len(started) + i}.log",
                              modes=["local-docker"]) for i in range(n)]
        started.extend(procs)
        return procs

    yield start
    for proc in started:
        stop_worker(proc)


# --- the scripts alone: admission order, caps, requeue (no worker: a worker's announcement) ---------

def announce(r: redis.Redis, name: str, queues: tuple[str, ...], concurrency: int,
             policy: dict[str, str] | None = None) -> None:
    fleet.announce(r, fleet.WorkerInfo(name, "host", 1, queues, time.time(), concurrency), policy)


def claim(store: JobStore, namespace: str, priority: str, queue: str = AMD64) -> str:
    job = uuid.uuid4().hex
    request = json.dumps({"job_id": job})
    got, new = store.claim(f"reg/{namespace}/api:{job[:10]}", job, admit=Admission(queue, namespace, priority),
                           build="api", request=request)
    assert new and got == job
    return job


def test_dispatch_takes_priority_then_namespaces_in_turn_within_capacity_and_caps(env: dict[str, str]) -> None:
    r, store = rdb(env), store_of(env)
    flood = [claim(store, "flood", "normal") for _ in range(6)]
    low = claim(store, "calm", "low")
    calm = claim(store, "calm", "normal")
    high = claim(store, "other", "high")
    assert store.dispatch() == []                                           # no worker: no capacity
    announce(r, "w1", (AMD64,), 3, {"cap": "0", "cap:flood": "2"})
    first = [d.job_id for d in store.dispatch()]
    # the best class first; then each namespace in turn (new ones by name), first come first served
    assert first == [high, calm, flood[0]]
    assert store.dispatch() == []                                           # full: idempotent
    for job in first[:2]:                                                   # two end
        store.end_unowned(job, "", status="failed", finished_at=time.time())
    # flood was served longest ago and beats calm's low job; then its cap (2) lets calm's low one in
    assert [d.job_id for d in store.dispatch()] == [flood[1], low]
    assert r.zcard(keys.running("flood")) == 2 and r.zcard(keys.in_flight(AMD64)) == 3
    # dispatched but never sent, or sent but not in Celery's queue: back to its place; in the queue: stays
    store.mark_sent(flood[0])
    store.mark_sent(flood[1])
    r.lpush(AMD64, json.dumps({"headers": {"id": flood[0]}, "body": ""}))
    assert sorted(admission.requeue_stale(store, now=time.time() + admission.STALE_S + 1)) == sorted([flood[1], low])
    assert r.zscore(keys.waiting(AMD64, "flood"), flood[1]) is not None
    assert r.zcard(keys.in_flight(AMD64)) == 1 and r.zcard(keys.running("flood")) == 1
    assert [d.job_id for d in store.dispatch()] == [flood[1], low]          # the same order again
    assert r.hget(keys.COUNTERS, "redispatches") == "2"


def test_a_cancel_ends_waiting_jobs_at_once_and_flags_running_ones(env: dict[str, str]) -> None:
    r, store = rdb(env), store_of(env)
    announce(r, "w1", (AMD64,), 1)
    running, waiting = claim(store, "ns", "normal"), claim(store, "ns", "normal")
    assert [d.job_id for d in store.dispatch()] == [running]
    assert store.start(running, "owner", 5, "w1", "").verdict == "run"
    assert store.cancel(waiting, "cancelled by test") == ("cancelled", "queued")
    assert r.zcard(keys.waiting(AMD64, "ns")) == 0 and r.zscore(keys.history_state("cancelled"), waiting)
    assert store.cancel(running, "cancelled by test") == ("requested", "started")
    assert store.renew(running, "owner", 5, "") == 2                        # the worker's next beat
    assert store.finish(running, "owner", "", status="cancelled")
    assert store.get(running)["status"] == "cancelled" and r.zcard(keys.in_flight(AMD64)) == 0
    assert store.cancel(running, "again") == ("ended", "cancelled")
    counters = r.hgetall(keys.COUNTERS)
    assert counters["builds|result=cancelled|cause=cancelled"] == "2"


def test_the_history_is_trimmed_to_its_retention_period(env: dict[str, str]) -> None:
    r, store = rdb(env), JobStore(rdb(env), ttl=3600)                      # FARM_HISTORY_DAYS, in seconds
    old, new = uuid.uuid4().hex, uuid.uuid4().hex
    store.claim("reg/ns/api:1", old, build="api", namespace="ns", queued_at=time.time() - 7200)
    store.claim("reg/ns/api:2", new, build="api", namespace="ns", queued_at=time.time())
    admission.trim_history(store)
    for key in (keys.HISTORY, keys.history_namespace("ns"), keys.history_build("api"), keys.history_state("queued")):
        assert r.zrange(key, 0, -1) == [new], key
    assert 0 < r.ttl(keys.job(new)) <= 3600


# --- priorities ---------------------------------------------------------------------------------

def test_a_backlog_of_mixed_priorities_is_started_in_priority_order_by_one_worker(
        env: dict[str, str], tmp_path: Path, workers: Callable[..., list[subprocess.Popen[bytes]]]) -> None:
    order = ["low", "normal", "high", "low", "high", "normal"]
    submitted = []
    for priority in order:                          # no worker yet: the backlog waits, in Redis
        code, out, err = run(env, "build", "--project", str(sleepy(tmp_path, env, 1)), "--no-wait",
                             "--priority", priority)
        assert code == 0, err
        submitted += job_ids(out)
    assert len(submitted) == 6
    workers(1)
    wait_until(lambda: all(rec.get("status") == "built" for rec in records(env).values())
               and len(records(env)) == 6, 240, "the backlog built")
    recs = records(env)
    started = sorted(submitted, key=lambda j: float(recs[j]["started_at"]))
    expected = [submitted[i] for i in (2, 4, 1, 5, 0, 3)]                    # high, high, normal, normal, low, low
    assert started == expected, [recs[j]["priority"] for j in started]
    assert [recs[j]["priority"] for j in started] == ["high", "high", "normal", "normal", "low", "low"]


# --- fair shares -----------------------------------------------------------------------------------

def test_a_flooding_namespace_does_not_starve_another_ones_build(
        env: dict[str, str], tmp_path: Path, workers: Callable[..., list[subprocess.Popen[bytes]]]) -> None:
    workers(2)
    flood = sleepy(tmp_path, env, 3, names=tuple(f"b{i}" for i in range(8)), namespace="flood")
    code, out, err = run(env, "build", "--project", str(flood), "--no-wait")
    assert code == 0, err
    r = rdb(env)
    wait_until(lambda: r.zcard(keys.running("flood")) == 2 and all(
        rec.get("status") == "started" for rec in store_of(env).records(r.zrange(keys.running("flood"), 0, -1))),
               120, "two flood builds running")
    code, out, err = run(env, "build", "--project", str(sleepy(tmp_path, env, 1, namespace="calm")), "--json")
    assert code == 0, err
    recs = records(env)
    (calm,) = [rec for rec in recs.values() if rec["namespace"] == "calm"]
    floods = [rec for rec in recs.values() if rec["namespace"] == "flood"]
    calm_queued, calm_sent = float(calm["queued_at"]), float(calm["dispatched_at"])
    # served at the next free slot: no flood build was let in while it waited (round robin)...
    assert not [f for f in floods if f.get("dispatched_at") and calm_queued < float(f["dispatched_at"]) < calm_sent]
    # ...it waited for a running build to end (the slots were full), not for the flood's backlog
    assert [f for f in floods if f.get("finished_at") and calm_queued < float(f["finished_at"]) <= calm_sent]
    assert len([f for f in floods if not f.get("dispatched_at") or float(f["dispatched_at"]) > calm_sent]) >= 3
    run(env, "cancel", *[j for j, rec in recs.items() if rec["namespace"] == "flood"   # the rest of the flood
                         and rec["status"] not in keys.ENDED], "--timeout", "60")


def test_a_namespace_cap_holds_under_three_workers(
        env: dict[str, str], tmp_path: Path, workers: Callable[..., list[subprocess.Popen[bytes]]]) -> None:
    workers(3, extra={"FARM_NAMESPACE_CAPS": "flood=2"})
    flood = sleepy(tmp_path, env, 2, names=tuple(f"b{i}" for i in range(6)), namespace="flood")
    calm = sleepy(tmp_path, env, 2, names=("c0", "c1", "c2"), namespace="calm")
    procs = [farm(env, "build", "--project", str(flood), "--json"), farm(env, "build", "--project", str(calm), "--json")]
    r, peak = rdb(env), [0]
    while any(p.poll() is None for p in procs):
        peak[0] = max(peak[0], sum(rec.get("status") == "started" and rec.get("namespace") == "flood"
                                   for rec in records(env).values()))
        time.sleep(0.2)
    assert [done(p)[0] for p in procs] == [0, 0]
    recs = [rec for rec in records(env).values() if rec["namespace"] == "flood"]
    # the cap, from the records: never more than two flood builds running at once
    events = sorted([(float(x["attempt_started_at"]), 1) for x in recs] + [(float(x["finished_at"]), -1) for x in recs])
    overlap = max(sum(step for _, step in events[: i + 1]) for i in range(len(events)))
    assert overlap == 2 and peak[0] <= 2
    calm_recs = [rec for rec in records(env).values() if rec["namespace"] == "calm"]
    assert all(rec["status"] == "built" for rec in recs + calm_recs)
    assert r.zcard(keys.running("flood")) == 0 and r.zcard(keys.in_flight(AMD64)) == 0


# --- cancel ----------------------------------------------------------------------------------------

def test_cancel_a_queued_build_that_two_submitters_share(env: dict[str, str], tmp_path: Path) -> None:
    root = sleepy(tmp_path, env, 1)
    first = farm(env, "build", "--project", str(root), "--json")              # no worker: it waits
    r = rdb(env)
    job = wait_until(lambda: next(iter(records(env)), None), 60, "the job queued")
    second = farm(env, "build", "--project", str(root), "--json")             # the same ref: shared
    wait_until(lambda: r.hget(keys.COUNTERS, "single_flight_hits") == "1", 60, "the second submitter following")
    code, out, err = run(env, "cancel", job)
    assert code == 0, err
    assert out.split() == [job, "cancelled"]
    for proc in (first, second):
        code, out, err = done(proc)
        assert code == 1
        doc = json.loads(out)["builds"][0]
        assert doc["status"] == "cancelled" and "cancelled by" in doc["error"], doc
        assert "api: CANCELLED" not in err                                    # --json: the document says it
    rec = store_of(env).get(job)
    assert rec["status"] == "cancelled" and not r.exists(keys.flight(image_of(root)))
    assert r.zcard(keys.waiting(AMD64, "farmtest")) == 0
    code, _, err = run(env, "build", "--project", str(root), "--no-wait")     # a new submission: a new job
    assert code == 0 and len(records(env)) == 2


def _docker(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["docker", *args], env={**os.environ, **env}, capture_output=True, text=True,
                          check=True).stdout


def test_cancel_a_running_build_kills_its_builder_and_pushes_nothing(
        env: dict[str, str], tmp_path: Path, workers: Callable[..., list[subprocess.Popen[bytes]]]) -> None:
    workers(1)
    root = sleepy(tmp_path, env, 40)
    cli = farm(env, "build", "--project", str(root))
    r = rdb(env)
    job = wait_until(lambda: next((j for j, rec in records(env).items() if rec.get("status") == "started"), None),
                     120, "the build running")
    wait_until(lambda: any(e["line"].startswith("Step 2/2") for _, e in r.xrange(keys.log(job))), 60,
               "the RUN step running")
    wait_until(lambda: "sleep 40" in _docker(env, "ps", "--no-trunc"), 60, "the build's container")
    code, out, err = run(env, "cancel", job, "--timeout", "60")
    assert code == 0, err
    assert out.split() == [job, "cancelled"]
    code, _, err = done(cli)
    assert code == 1 and "api: CANCELLED: linux/amd64: cancelled by" in err, err[-2000:]
    # the builder is gone: no docker build client, no build container; nothing pushed under the tag
    assert not [line for line in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
                if line.startswith("docker build") and image_of(root) in line]
    wait_until(lambda: "sleep 40" not in _docker(env, "ps", "--no-trunc"), 30, "the build container gone")
    assert in_registry(root) is None
    rec = store_of(env).get(job)
    assert rec["status"] == "cancelled" and rec["attempts"] == "1"
    log = [e["line"] for _, e in r.xrange(keys.log(job))]
    assert not any(line.startswith("$ docker push") for line in log)
    assert r.zcard(keys.in_flight(AMD64)) == 0 and not r.exists(keys.lease(job))


def test_cancel_one_platform_cancels_the_build_and_its_index(
        env: dict[str, str], tmp_path: Path, workers: Callable[..., list[subprocess.Popen[bytes]]]) -> None:
    workers(1)                                        # amd64 only: the arm64 job waits for a worker
    nonce = uuid.uuid4().hex
    root = write_project(tmp_path / "multi", {"api": {"Dockerfile": "FROM scratch\nCOPY nonce /nonce\n", "nonce": nonce}},
                         extra_build_yaml="spec:\n  platforms: [linux/amd64, linux/arm64]\n")
    cli = farm(env, "build", "--project", str(root), "--json")
    r = rdb(env)
    arm = wait_until(lambda: next((j for j, rec in records(env).items() if rec.get("platform") == "linux/arm64"), None),
                     60, "the arm64 job queued")
    wait_until(lambda: any(rec.get("platform") == "linux/amd64" and rec.get("status") == "built"
                           for rec in records(env).values()), 120, "amd64 built")
    code, out, err = run(env, "cancel", arm)
    assert code == 0, err
    code, out, err = done(cli)
    assert code == 1
    doc = json.loads(out)["builds"][0]
    assert doc["status"] == "cancelled" and doc["digest"] is None
    by_platform = {rec["platform"]: rec["status"] for rec in records(env).values()}
    assert by_platform == {"linux/amd64": "built", "linux/arm64": "cancelled", "index": "cancelled"}
    assert in_registry(root) is None                  # the index was never pushed
    assert not r.exists(keys.sent(next(j for j, rec in records(env).items() if rec["platform"] == "index")))


# --- supersede ---------------------------------------------------------------------------------------

def _commit(root: Path, branch: str | None, change: str) -> None:
    if branch:
        subprocess.run(["git", "checkout", "-q", "-B", branch], cwd=root, check=True)
    (root / "api" / "change.txt").write_text(change)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", change], cwd=root, check=True)


def test_supersede_cancels_older_builds_on_the_same_branch_only(
        env: dict[str, str], tmp_path: Path, workers: Callable[..., list[subprocess.Popen[bytes]]]) -> None:
    workers(1)
    root = sleepy(tmp_path, env, 40)
    _commit(root, "feature", "one")
    old = farm(env, "build", "--project", str(root), "--json")
    job_old = wait_until(lambda: next((j for j, rec in records(env).items() if rec.get("status") == "started"), None),
                         120, "the first commit's build running")
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", "-b", "feature", str(root), str(other)], check=True)
    _commit(other, "elsewhere", "other branch")
    code, out, err = run(env, "build", "--project", str(other), "--no-wait")    # another branch: waits its turn
    assert code == 0, err
    (job_other,) = job_ids(out)
    (root / "api" / "Dockerfile").write_text(f"FROM {env['FARM_BASE_IMAGE']}\nRUN echo {uuid.uuid4().hex} > /n\n")
    _commit(root, None, "two, quick")                                           # a newer commit on feature
    code, out, err = run(env, "build", "--project", str(root), "--supersede", "--json")
    assert code == 0, err
    assert f"cancelling job {job_old} (superseded on branch feature)" in err
    code, out_old, err_old = done(old)
    assert code == 1 and json.loads(out_old)["builds"][0]["status"] == "cancelled"
    recs = records(env)
    assert recs[job_old]["status"] == "cancelled" and recs[job_old]["cause"] == "superseded"
    assert "superseded by a newer build of api on feature" in recs[job_old]["error"]
    new = next(rec for rec in recs.values() if rec["status"] == "built" and rec["branch"] == "feature")
    assert new["commit"] != recs[job_old]["commit"]
    wait_until(lambda: store_of(env).get(job_other).get("status") == "built", 120, "the other branch's build")


# --- history ---------------------------------------------------------------------------------------

class CommandCounter:
    """Every command the server runs on one database, seen through MONITOR, until `stop()`."""

    def __init__(self, env: dict[str, str], db: int) -> None:
        self.url, self.db = env["FARM_BROKER_URL"], db
        self.commands: list[str] = []
        self._monitor = redis.Redis.from_url(env["FARM_REDIS_ADMIN_URL"]).monitor()   # MONITOR: admin only
        self._monitor.__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        marker = f"end-{id(self)}"
        while True:
            seen = self._monitor.next_command()
            if marker in seen["command"]:
                return
            if int(seen["db"]) == self.db and seen["client_type"] != "lua":
                self.commands.append(seen["command"])

    def stop(self) -> list[str]:
        redis.Redis.from_url(self.url).echo(f"end-{id(self)}")
        self._thread.join(timeout=10)
        self._monitor.__exit__(None, None, None)
        return self.commands


def test_farm_jobs_filters_a_thousand_records_without_scanning(env: dict[str, str]) -> None:
    # a database of its own: the only client on it while counting is `farm jobs`
    env = {**env, "FARM_BROKER_URL": env["FARM_BROKER_URL"].rsplit("/", 1)[0] + f"/{COUNTED_DB}"}
    redis.Redis.from_url(f"{env['FARM_REDIS_ADMIN_URL']}/{COUNTED_DB}").flushdb()
    store, r = store_of(env), rdb(env)
    now = time.time()
    made: list[dict[str, Any]] = []
    for n in range(1000):
        job, ns, build = uuid.uuid4().hex, f"team-{n % 5}", f"b{n % 7}"
        queued = now - (7200 + n if n % 10 == 0 else 60 + n)      # every tenth two hours ago
        store.claim(f"reg/{ns}/{build}:{job[:10]}", job, admit=Admission(AMD64, ns, "normal"),
                    build=build, queued_at=queued, labels=json.dumps({"ci": f"https://ci/{n}"}))
        state = "queued"
        if n % 3 == 0:
            store.end_unowned(job, "", status="failed", error="boom", finished_at=now)
            state = "failed"
        made.append({"job": job, "ns": ns, "build": build, "queued": queued, "state": state})
    r.delete(*r.scan_iter("farm:wait:*"))                           # not dispatchable: nobody serves them
    cases = [
        (["--namespace", "team-3", "--state", "failed"], lambda m: m["ns"] == "team-3" and m["state"] == "failed"),
        (["--build", "b2", "--since", "1h"], lambda m: m["build"] == "b2" and m["queued"] > now - 3600),
        (["--state", "queued", "--namespace", "team-0", "--build", "b4"],
         lambda m: m["state"] == "queued" and m["ns"] == "team-0" and m["build"] == "b4"),
    ]
    for args, wanted in cases:
        expected = [m["job"] for m in sorted(made, key=lambda m: -m["queued"]) if wanted(m)][:20]
        counter = CommandCounter(env, COUNTED_DB)
        code, out, err = run(env, "jobs", *args, "--limit", "20", "--json")
        commands = counter.stop()
        assert code == 0, err
        got = json.loads(out)["jobs"]
        assert [j["job_id"] for j in got] == expected, args
        assert all(j["labels"]["ci"].startswith("https://ci/") for j in got)
        names = [c.split()[0].strip('"').upper() for c in commands]
        assert not {"SCAN", "KEYS", "HSCAN", "SSCAN", "ZSCAN"} & set(names), names
        # the records returned, and a handful of index reads: never the thousand
        assert names.count("HGETALL") == len(expected) and len(names) <= len(expected) + 12, (args, names)
    code, out, err = run(env, "jobs", "--namespace", "team-1", "--limit", "3")
    assert code == 0 and len(out.splitlines()) == 4 and "team-1" in out.splitlines()[1], out


# --- metrics ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=10, trust_env=False).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_metrics_endpoint_matches_a_run(
        env: dict[str, str], stack_env: dict[str, str], tmp_path: Path,
        workers: Callable[..., list[subprocess.Popen[bytes]]]) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "farm.metrics", "--port", str(port)], env={**os.environ, **env},
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_until(lambda: _answers(url), 30, "the metrics endpoint")
        workers(1)
        good = sleepy(tmp_path, env, 1)
        bad = write_project(tmp_path / "bad", {"api": {"Dockerfile": f"FROM {env['FARM_BASE_IMAGE']}\n"
                                                                      f"RUN exit 3 # {uuid.uuid4().hex}\n"}})
        procs = [farm(env, "build", "--project", str(good)), farm(env, "build", "--project", str(good)),
                 farm(env, "build", "--project", str(bad))]
        assert [done(p)[0] for p in procs] == [0, 0, 1]
        assert run(env, "build", "--project", str(good))[0] == 0            # the registry answers: cached
        arm = sleepy(tmp_path, env, 1)                                      # nobody serves arm64: it waits
        code, out, _ = run(env, "build", "--project", str(arm), "--platform", "linux/arm64", "--no-wait",
                           "--priority", "high")
        (waiting,) = job_ids(out)
        store = store_of(env)
        lost = uuid.uuid4().hex                                             # a lost worker, then a retry
        store.claim("reg/x/lost:1", lost, build="lost", mode="local-docker", platform="linux/amd64")
        store.start(lost, "a", 0.2, "wa", "")
        time.sleep(0.3)
        store.start(lost, "b", 5, "wb", "")
        store.finish(lost, "b", "reg/x/lost:1", status="retrying")
        m = scrape(url)
        arm_queue = "build.local-docker.linux-arm64"
        assert m[("farm_queue_waiting", (("priority", "high"), ("queue", arm_queue)))] == 1
        assert m[("farm_queue_capacity", (("queue", AMD64),))] == 1 and m[("farm_workers", ())] == 1
        assert run(env, "cancel", waiting)[0] == 0
        m = scrape(url)
        recs = [rec for rec in records(env).values() if rec.get("mode") == "local-docker" and rec.get("wait_key")]
        ran = [rec for rec in recs if rec.get("started_at")]
        assert len(ran) == 2
        assert m[("farm_builds_total", (("cause", ""), ("result", "built")))] == 1
        assert m[("farm_builds_total", (("cause", "PermanentBuildError"), ("result", "failed")))] == 1
        assert m[("farm_builds_total", (("cause", "cancelled"), ("result", "cancelled")))] == 1
        assert m[("farm_status_check_hits_total", (("namespace", "farmtest"),))] == 1
        assert m[("farm_single_flight_hits_total", ())] == 1
        assert m[("farm_lease_expiries_total", ())] == 1
        assert m[("farm_retries_total", (("mode", "local-docker"), ("platform", "linux/amd64")))] == 1
        labels = (("mode", "local-docker"), ("platform", "linux/amd64"))
        assert m[("farm_queue_wait_seconds_count", labels)] == 2
        waits = sum(float(rec["started_at"]) - float(rec["queued_at"]) for rec in ran)
        assert abs(m[("farm_queue_wait_seconds_sum", labels)] - waits) < 1e-3
        runs = sum(float(rec["finished_at"]) - float(rec["attempt_started_at"]) for rec in ran)
        assert m[("farm_build_run_seconds_count", labels)] == 2
        assert abs(m[("farm_build_run_seconds_sum", labels)] - runs) < 1e-3
        assert m[("farm_queue_waiting", (("priority", "high"), ("queue", arm_queue)))] == 0
        assert m[("farm_namespace_running", (("namespace", "farmtest"),))] == 0
    finally:
        server.terminate()
        server.wait(timeout=30)
    # the stack's own endpoint (its Redis database 0), as `farm stack env` exports it
    assert ("farm_workers", ()) in scrape(stack_env["FARM_METRICS_URL"])


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


# --- Flower ----------------------------------------------------------------------------------------

def test_flower_shows_readable_task_names_and_no_secret_values(
        env: dict[str, str], tmp_path: Path, workers: Callable[..., list[subprocess.Popen[bytes]]]) -> None:
    port = free_port()
    flower_env = {**os.environ, **env, "FLOWER_UNAUTHENTICATED_API": "true"}
    flower = subprocess.Popen([sys.executable, "-m", "celery", "--broker", env["FARM_BROKER_URL"], "flower",
                               "--address=127.0.0.1", f"--port={port}"], env=flower_env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthcheck"), 60, "Flower")
        workers(1)
        secret = f"s3cret-{uuid.uuid4().hex}"
        root = sleepy(tmp_path, env, 1, extra_yaml="spec:\n  secrets:\n    api-token: ${local.env.FARM_TEST_TOKEN}\n")
        code, out, err = run(env, "build", "--project", str(root), "--json", extra={"FARM_TEST_TOKEN": secret})
        assert code == 0, err
        build = json.loads(out)["builds"][0]
        job = build["platforms"][0]["job_id"]

        def task() -> dict[str, Any] | None:
            tasks = httpx.get(f"http://127.0.0.1:{port}/api/tasks", timeout=5, trust_env=False).json()
            got = tasks.get(job)
            return got if got and got.get("state") == "SUCCESS" else None

        info = wait_until(task, 60, "Flower to show the task")
        assert info["name"] == f"build api linux/amd64 {build['version']}"
        page = httpx.get(f"http://127.0.0.1:{port}/api/tasks", timeout=5, trust_env=False).text
        assert secret not in page and job in page
        assert secret not in httpx.get(f"http://127.0.0.1:{port}/task/{job}", timeout=5, trust_env=False).text
    finally:
        flower.terminate()
        flower.wait(timeout=30)


# --- what a user gets wrong: one line, exit 2 ---------------------------------------------------------

def test_usage_errors_are_one_line_and_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    root = sleepy(tmp_path, env, 1)
    cases = [(("jobs", "--since", "soon"), "--since 'soon': expected a duration such as 30m, 1h or 2d"),
             (("cancel", "0" * 32), "no such job: " + "0" * 32 + " (job records are kept 7 days: FARM_HISTORY_DAYS)"),
             (("build", "--project", str(root), "--label", "novalue"), "--label needs KEY=VALUE (got 'novalue')")]
    for args, message in cases:
        code, out, err = run(env, *args)
        assert (code, err.strip().splitlines()) == (2, [f"error: {message}"]), (args, err)
    code, _, err = run(env, "build", "--project", str(root), "--no-wait", extra={"FARM_PROJECT_PRIORITIES": "farmtest=asap"})
    assert code == 2 and "FARM_PROJECT_PRIORITIES: 'farmtest=asap' is not project=high|normal|low" in err
    subprocess.run(["git", "checkout", "-q", "--detach"], cwd=root, check=True)
    code, _, err = run(env, "build", "--project", str(root), "--supersede", "--no-wait")
    assert code == 2 and "--supersede needs the git branch" in err and "pass --branch" in err
    assert records(env) == {}                                                 # nothing was submitted
    code, _, err = run(env, "build", "--project", str(root), "--supersede", "--no-wait", "--branch", "mr-7")
    assert code == 0, err
    assert [rec["branch"] for rec in records(env).values()] == ["mr-7"]
