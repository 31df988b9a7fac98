"""The queue: submissions per second through the farm against raw Celery `send_task` of the same
message in the same run (ratio), and pick-up latency (submit -> builder started) with idle workers.

    .venv/bin/python bench/submissions.py [--n 20] [--latency-n 20]

Submissions (no worker consumes them: a stand-in worker announces capacity so admission sends each
one to Celery, as it would with idle workers):
  - `farm build --no-wait`, one process after another and N at once (a new version each time through
    a build arg, so the context is already uploaded and only the claim, admission and send remain
    after the CLI's start, the registry status check and the pre-build access check);
  - `farm.build.submit` in one process (claim + waiting room + DISPATCH + send), against
  - raw `send_task` of the same task message, in one process.
Pick-up latency: real local-docker workers, idle; one submission at a time; from the job's
`queued_at` to its START and to the builder's first line (`$ docker build`, its log entry's time).
Runs on Redis databases 6 and 7 of the stack, emptied first.
"""

from __future__ import annotations

import os
import sys

# This file is named like the standard library's `queue` (which redis-py and kombu import): keep its
# directory behind the standard library on the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE] + [_HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import redis  # noqa: E402
from farmbench import ROOT, stack_env, workers, write_project  # noqa: E402

from farm import build as flow  # noqa: E402
from farm import fleet, keys, plan  # noqa: E402
from farm.broker import TASK_BUILD_PLATFORM, producer_app, queue_for  # noqa: E402
from farm.jobs import JobStore  # noqa: E402
from farm.settings import Settings  # noqa: E402

DBS = (6, 7)


def project(tmpdir: Path, env: dict[str, str]) -> Path:
    """One Build whose version changes with $FARM_BENCH_N (a build arg), its files never."""
    files = {"Dockerfile": f"FROM {env['FARM_BASE_IMAGE']}\nARG N\nRUN echo $N > /n\n"}
    return write_project(tmpdir / f"q-{uuid.uuid4().hex[:8]}", {"app": files}, namespace="bench",
                         extra_build_yaml="spec:\n  buildArgs:\n    N: ${local.env.FARM_BENCH_N}\n")


def farm_no_wait(root: Path, n: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "farm.cli", "build", "--project", str(root), "--no-wait"],
                            cwd=ROOT, env={**os.environ, "FARM_BENCH_N": n},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def check(proc: subprocess.Popen[bytes]) -> None:
    _, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"farm build failed: {err.decode()[-2000:]}")


def stand_in_capacity(r: redis.Redis, queue: str, stop: threading.Event) -> None:
    """A worker that announces room for everything and consumes nothing."""
    info = fleet.WorkerInfo("bench-stand-in", "bench", os.getpid(), (queue,), time.time(), 100_000)
    while not stop.is_set():
        fleet.announce(r, info)
        stop.wait(5)
    fleet.retire(r, info.name, info.queues)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20, help="submissions per measurement")
    ap.add_argument("--latency-n", type=int, default=20, help="builds for the pick-up latency")
    args = ap.parse_args()
    env = stack_env()
    base = env["FARM_BROKER_URL"].rsplit("/", 1)[0]
    os.environ.update(FARM_BROKER_URL=f"{base}/{DBS[0]}", FARM_RESULT_BACKEND=f"{base}/{DBS[1]}")
    admin = env.get("FARM_REDIS_ADMIN_URL", base)          # FLUSHDB is an admin command (Redis ACLs)
    for db in DBS:
        redis.Redis.from_url(f"{admin}/{db}").flushdb()
    r = redis.Redis.from_url(os.environ["FARM_BROKER_URL"], decode_responses=True)
    settings = Settings()
    queue = queue_for("local-docker", "linux/amd64")
    with tempfile.TemporaryDirectory(prefix="farm-bench-queue-") as tmp:
        root = project(Path(tmp), env)
        stop = threading.Event()
        announcer = threading.Thread(target=stand_in_capacity, args=(r, queue, stop), daemon=True)
        announcer.start()
        try:
            check(farm_no_wait(root, "warm-up"))            # uploads the context once
            t0 = time.monotonic()
            for i in range(args.n):
                check(farm_no_wait(root, f"seq-{i}"))
            cli_seq = args.n / (time.monotonic() - t0)
            t0 = time.monotonic()
            for proc in [farm_no_wait(root, f"par-{i}") for i in range(args.n)]:
                check(proc)
            cli_par = args.n / (time.monotonic() - t0)

            # in one process: the farm's submit against raw send_task of the same message
            os.environ["FARM_BENCH_N"] = "in-process"
            proj, versions = plan.load(root)
            b = plan.plan(proj, versions).builds[0]
            stats = flow.upload(proj, b, settings)
            (req,), _ = flow.jobs_for(proj, b, stats, settings)
            app, store = producer_app(settings), JobStore(r)
            app.send_task(TASK_BUILD_PLATFORM, args=[req.model_dump(mode="json")], queue="bench.raw")  # connect
            who = flow.Submission(namespace="bench", branch="main", submitter="bench")
            t0 = time.monotonic()
            for i in range(args.n * 5):
                one = req.model_copy(update={"job_id": uuid.uuid4().hex, "image": f"{req.image}-{i}"})
                flow.submit(app, store, [one], None, who=who)
            farm_rate = args.n * 5 / (time.monotonic() - t0)
            t0 = time.monotonic()
            for i in range(args.n * 5):
                one = req.model_copy(update={"job_id": uuid.uuid4().hex, "image": f"{req.image}-{i}"})
                app.send_task(TASK_BUILD_PLATFORM, args=[one.model_dump(mode="json")], task_id=one.job_id,
                              queue="bench.raw")
            raw_rate = args.n * 5 / (time.monotonic() - t0)
        finally:
            stop.set()
            announcer.join(timeout=10)
        sent = sum(r.llen(f"{queue}{suffix}") for suffix in ("", "\x06\x163"))
        for db in DBS:                                        # nobody will run these
            redis.Redis.from_url(f"{admin}/{db}").flushdb()

        # pick-up latency with idle workers
        waits, starts = [], []
        with workers("linux/amd64", "linux/amd64", log_dir=Path(tmp)):
            time.sleep(6)                                     # both announced: capacity 2, idle
            for i in range(args.latency_n + 1):
                proc = subprocess.run([sys.executable, "-m", "farm.cli", "build", "--project", str(root),
                                       "--no-wait"], cwd=ROOT, env={**os.environ, "FARM_BENCH_N": f"lat-{i}"},
                                      capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(proc.stderr[-2000:])
                job = proc.stdout.split()[-1]
                deadline = time.monotonic() + 120
                while r.hget(keys.job(job), "status") not in ("built", "failed"):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"job {job} did not finish")
                    time.sleep(0.05)
                rec = r.hgetall(keys.job(job))
                first = next(eid for eid, e in r.xrange(keys.log(job)) if e["line"].startswith("$ docker build"))
                if i == 0:
                    continue                                  # the first build warms the workers up
                waits.append(float(rec["started_at"]) - float(rec["queued_at"]))
                starts.append(int(first.split("-")[0]) / 1000 - float(rec["queued_at"]))
    print(json.dumps({"submissions": args.n, "admitted_and_sent": sent}))
    print(f"farm build --no-wait, one after another: {cli_seq:.2f} submissions/s")
    print(f"farm build --no-wait, {args.n} at once:     {cli_par:.2f} submissions/s")
    print(f"farm submit in one process:            {farm_rate:.1f} submissions/s")
    print(f"raw Celery send_task, same message:    {raw_rate:.1f} sends/s")
    print(f"ratio farm submit / raw send_task:     {farm_rate / raw_rate:.2f}x")
    print(f"ratio farm build --no-wait (at once) / raw send_task: {cli_par / raw_rate:.3f}x")
    print(f"pick-up, submit -> job started (idle workers, n={len(waits)}): "
          f"p50 {statistics.median(waits) * 1000:.0f} ms, p95 {pct(waits, 95) * 1000:.0f} ms")
    print(f"pick-up, submit -> builder started: p50 {statistics.median(starts) * 1000:.0f} ms, "
          f"p95 {pct(starts, 95) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
