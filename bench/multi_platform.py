"""Multi-platform fan-out: wall time of a 2-platform build (one worker per platform queue, then the
index merge) against the slower of the two platforms built alone, in the same run. Goal <= 1.1x.

Per-arch pools run on separate nodes; here both workers share one 2-core machine, one dockerd and
one registry. So two workloads are measured:
- `wait`: a build step that waits (RUN sleep), as a build on its own node would not compete for this
  machine's CPU: the ratio shows what the farm adds (fan-out, fan-in, index merge);
- `payload`: a CPU- and disk-bound COPY and push of random data, where the two platforms also
  compete for this one machine.

    .venv/bin/python bench/multi_platform.py [--seconds 4] [--mb 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from farmbench import farm_build, median, stack_env, workers, write_project

PLATFORMS = ("linux/amd64", "linux/arm64")


def measure(root: Path, rounds: int) -> tuple[float, float]:
    """(slowest platform alone, both platforms + index), medians over `rounds`."""
    farm_build(root, "--force")  # warm-up: the context reaches the store once
    single: dict[str, list[float]] = {p: [] for p in PLATFORMS}
    both = []
    for _ in range(rounds):
        for p in PLATFORMS:
            single[p].append(farm_build(root, "--force", "--platform", p)[0])
        both.append(farm_build(root, "--force", *[a for p in PLATFORMS for a in ("--platform", p)])[0])
    return max(median(v) for v in single.values()), median(both)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=int, default=4, help="how long the `wait` build step waits")
    ap.add_argument("--mb", type=int, default=64, help="size of the `payload` image's data")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    env = stack_env()
    # --no-cache: every round builds and pushes for real instead of hitting the engine's layer cache.
    no_cache = 'spec:\n  extraFlags: ["--no-cache"]\n'
    workloads = {
        "wait": {"Dockerfile": f"FROM {env['FARM_BASE_IMAGE']}\nRUN sleep {args.seconds} && date > /built\n"},
        "payload": {"Dockerfile": "FROM scratch\nCOPY payload /payload\n", "payload": os.urandom(args.mb << 20)},
    }
    with tempfile.TemporaryDirectory(prefix="farm-bench-mp-") as tmp:
        tmpdir = Path(tmp)
        with workers("linux/amd64", "linux/arm64", log_dir=tmpdir):
            for name, files in workloads.items():
                root = write_project(tmpdir / name, {"multi": files}, extra_build_yaml=no_cache)
                slowest, both = measure(root, args.rounds)
                print(f"{name:8} slowest platform alone {slowest:6.2f} s, both + index {both:6.2f} s "
                      f"(medians of {args.rounds}): ratio {both / slowest:.2f}x (goal <= 1.10x)")


if __name__ == "__main__":
    main()
