"""Single flight: N identical `farm build` processes submitted at the same instant for a new version.
Prints how many times the builder ran (must be 1) and the wall time until all N have their digest,
against one submission alone, in the same run (ratio).

    .venv/bin/python bench/dedupe.py [--n 50] [--seconds 5]

The N CLIs are real processes on this machine: on 2 cores their own start-up (~0.5 s of CPU each)
is part of what is measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from farmbench import ROOT, stack_env, workers, write_project

from farm import keys


def project(tmpdir: Path, env: dict[str, str], seconds: int) -> Path:
    nonce = uuid.uuid4().hex
    files = {"Dockerfile": f"FROM {env['FARM_BASE_IMAGE']}\nRUN sleep {seconds} && echo {nonce} > /n\n"}
    return write_project(tmpdir / nonce[:8], {"app": files}, namespace="bench")


def submit(root: Path, n: int) -> tuple[float, list[int]]:
    argv = [sys.executable, "-m", "farm.cli", "build", "--project", str(root), "--json"]
    t0 = time.monotonic()
    procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(n)]
    codes = [p.wait() for p in procs]
    return time.monotonic() - t0, codes


def builder_runs(r: redis.Redis, image_prefix: str) -> int:
    """Times a builder ran for that image: `$ docker build` lines in the logs of its jobs."""
    runs = 0
    for key in r.scan_iter("farm:job:*"):
        if (r.hget(key, "image") or "").startswith(image_prefix):
            job = key.removeprefix("farm:job:")
            runs += sum(e["line"].startswith("$ docker build") for _, e in r.xrange(keys.log(job)))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=5, help="how long the build's RUN step takes")
    args = ap.parse_args()
    env = stack_env()
    r = redis.Redis.from_url(env["FARM_BROKER_URL"], decode_responses=True)
    with tempfile.TemporaryDirectory(prefix="farm-bench-dedupe-") as tmp, workers("linux/amd64", log_dir=Path(tmp)):
        one = project(Path(tmp), env, args.seconds)
        alone, codes = submit(one, 1)
        many = project(Path(tmp), env, args.seconds)
        together, codes_many = submit(many, args.n)
        if any(codes + codes_many):
            raise SystemExit(f"a submission failed: exit codes {sorted(set(codes + codes_many))}")
        runs = builder_runs(r, f"{env['FARM_REGISTRY']}/bench/app:{version(many)}")
    print(f"{args.n} identical submissions: the builder ran {runs} time(s) (must be 1)")
    print(f"one submission alone {alone:6.2f} s; {args.n} at once {together:6.2f} s (until all have the digest): "
          f"ratio {together / alone:.2f}x")


def version(root: Path) -> str:
    from farm import plan

    project, versions = plan.load(root)
    return versions["app"].version_string


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
