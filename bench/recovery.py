"""Recovery from a lost worker: a ~20 s build whose worker is killed with SIGKILL at a random point,
five times. Prints the seconds from the kill to the build running again on the other worker (median,
max) and each disturbed build's wall time against an undisturbed one, in the same run.

    .venv/bin/python bench/recovery.py [--rounds 5] [--seconds 20]

The farm's default settings are used (FARM_LEASE=20, FARM_VISIBILITY_TIMEOUT=30): the lost job runs
again once kombu re-delivers its message (the visibility timeout after the last lease renewal,
plus kombu's 5 s sweep) and its lease has lapsed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from farmbench import ROOT, stack_env, write_project

from farm import keys
from tests.conftest import start_worker, stop_worker


def build(env: dict[str, str], tmp: Path, seconds: int) -> tuple[Path, str]:
    nonce = uuid.uuid4().hex
    files = {"Dockerfile": f"FROM {env['FARM_BASE_IMAGE']}\nRUN sleep {seconds} && echo {nonce} > /n\n"}
    root = write_project(tmp / nonce[:8], {"app": files}, namespace="bench")
    from farm import plan

    project, versions = plan.load(root)
    return root, plan.plan(project, versions).builds[0].outputs.deployment_image_id


def started_job(r: redis.Redis, image: str) -> str | None:
    for key in r.scan_iter("farm:job:*"):
        if r.hget(key, "image") == image and r.hget(key, "status") == "started":
            return key.removeprefix("farm:job:")
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=20)
    args = ap.parse_args()
    env = stack_env()
    r = redis.Redis.from_url(env["FARM_BROKER_URL"], decode_responses=True)
    argv = [sys.executable, "-m", "farm.cli", "build", "--json", "--project"]
    recoveries, disturbed = [], []
    with tempfile.TemporaryDirectory(prefix="farm-bench-recovery-") as tmp:
        tmpdir = Path(tmp)
        workers = [start_worker(env, ["linux/amd64"], tmpdir / f"w{i}.log", modes=["local-docker"]) for i in range(2)]
        try:
            root, _ = build(env, tmpdir, args.seconds)
            t0 = time.monotonic()
            subprocess.run([*argv, str(root)], cwd=ROOT, check=True, capture_output=True)
            undisturbed = time.monotonic() - t0
            for n in range(args.rounds):
                root, image = build(env, tmpdir, args.seconds)
                t0 = time.monotonic()
                cli = subprocess.Popen([*argv, str(root)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                while not (job := started_job(r, image)):
                    time.sleep(0.1)
                time.sleep(random.uniform(0, args.seconds))
                owner = r.hget(keys.job(job), "worker") or ""
                victim = next(i for i, w in enumerate(workers) if owner.startswith(f"farm-{w.pid}@"))
                os.killpg(workers[victim].pid, signal.SIGKILL)
                workers[victim].wait()
                killed = time.monotonic()
                workers[victim] = start_worker(env, ["linux/amd64"], tmpdir / f"w{victim}-{n}.log",
                                               modes=["local-docker"])
                while r.hget(keys.job(job), "attempts") != "2":
                    time.sleep(0.1)
                recoveries.append(time.monotonic() - killed)
                out, _ = cli.communicate()
                if cli.returncode or json.loads(out)["builds"][0]["status"] != "built":
                    raise SystemExit(f"round {n}: the build did not complete")
                disturbed.append(time.monotonic() - t0)
                print(f"round {n + 1}: running again {recoveries[-1]:.1f} s after the kill; "
                      f"build took {disturbed[-1]:.1f} s")
        finally:
            for w in workers:
                stop_worker(w)
    print(f"kill -> running again: median {statistics.median(recoveries):.1f} s, max {max(recoveries):.1f} s "
          f"(target <= 60 s)")
    print(f"undisturbed build {undisturbed:.1f} s; disturbed builds median {statistics.median(disturbed):.1f} s: "
          f"ratio {statistics.median(disturbed) / undisturbed:.2f}x")


if __name__ == "__main__":
    main()
