"""Multi-platform fan-out: wall time of a 2-platform build (one worker per platform queue, then the
index merge) against the slower of the two platforms built alone, in the same run. Goal <= 1.1x.

    .venv/bin/python bench/multi_platform.py [--mb 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from farmbench import farm_build, median, stack_env, workers, write_project

PLATFORMS = ("linux/amd64", "linux/arm64")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=64, help="size of the image's payload")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    stack_env()
    with tempfile.TemporaryDirectory(prefix="farm-bench-mp-") as tmp:
        tmpdir = Path(tmp)
        files = {"Dockerfile": b"FROM scratch\nCOPY payload /payload\n", "payload": os.urandom(args.mb * 1024 * 1024)}
        # --no-cache: every round builds and pushes for real instead of hitting the engine's layer cache.
        root = write_project(tmpdir / "p", {"multi": files}, extra_build_yaml='spec:\n  extraFlags: ["--no-cache"]\n')
        with workers("build.linux-amd64,build.merge", "build.linux-arm64,build.merge", log_dir=tmpdir):
            farm_build(root, "--force")  # warm-up: the context reaches the store once
            single = {p: [] for p in PLATFORMS}
            both = []
            for _ in range(args.rounds):
                for p in PLATFORMS:
                    single[p].append(farm_build(root, "--force", "--platform", p)[0])
                both.append(farm_build(root, "--force", *[a for p in PLATFORMS for a in ("--platform", p)])[0])
    slowest = max(median(v) for v in single.values())
    ratio = median(both) / slowest
    for p, v in single.items():
        print(f"{p:14} alone: {median(v):6.2f} s (median of {args.rounds})")
    print(f"{'both + index':14}      : {median(both):6.2f} s")
    print(f"ratio 2-platform / slowest single platform: {ratio:.2f}x (goal <= 1.10x)")


if __name__ == "__main__":
    main()
