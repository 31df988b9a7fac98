"""Benchmark: the farm's version computation against git's own listing + hashing, same tree, same run.

    .venv/bin/python bench/version_hash.py [--files 10000] [--mb 200] [--modified 100] [--repeat 3]

Builds a git repo of N files (~MB in total) holding one container Build, then times, for
(a) everything committed and (b) `--modified` files changed in the worktree:
  ours: farm.plan.load (git listing, index hashes reused, changed files hashed here)
  git:  `git ls-files -s` + `git hash-object --stdin-paths` over every file
and prints both times (best of --repeat, warm page cache) and ours/git. Goal: ratio <= 1.25.
A third, informational line hashes every file in-process (no git index to reuse).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm import plan  # noqa: E402

PROJECT = """\
apiVersion: garden.io/v1
kind: Project
name: bench
environments: [{name: dev}]
providers:
  - name: kubernetes
    context: bench
    buildMode: local-docker
"""


def make_tree(root: Path, files: int, total_mb: int, seed: int = 7) -> None:
    rnd = random.Random(seed)
    app = root / "app"
    app.mkdir(parents=True)
    (root / "project.garden.yml").write_text(PROJECT)
    (app / "garden.yml").write_text("kind: Build\ntype: container\nname: app\n")
    (app / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    mean = total_mb * 1024 * 1024 // files
    block = os.urandom(4 * mean + 65536)
    for i in range(files):
        d = app / f"d{i % 100:02d}" / f"s{i % 7}"
        d.mkdir(parents=True, exist_ok=True)
        size = max(1, int(rnd.expovariate(1 / mean)))
        size = min(size, len(block) - 16)
        start = rnd.randrange(0, len(block) - size)
        (d / f"f{i}.bin").write_bytes(i.to_bytes(8, "little") + block[start:start + size])
    git = ["git", "-c", "user.email=b@b", "-c", "user.name=b"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(git + ["add", "-A"], cwd=root, check=True)
    subprocess.run(git + ["commit", "-qm", "tree"], cwd=root, check=True)


def ours(root: Path) -> tuple[float, str]:
    t = time.perf_counter()
    v = plan.load(root)[1]["app"]
    return time.perf_counter() - t, v.version_string


def git_baseline(root: Path) -> float:
    t = time.perf_counter()
    listing = subprocess.run(["git", "ls-files", "-s", "-z"], cwd=root, check=True, capture_output=True).stdout
    paths = [e.split(b"\t", 1)[1] for e in listing.split(b"\0") if e]
    subprocess.run(["git", "hash-object", "--stdin-paths"], cwd=root, check=True, capture_output=True,
                   input=b"\n".join(paths) + b"\n")
    return time.perf_counter() - t


def best(fn, repeat: int):  # type: ignore[no-untyped-def]
    fn()  # warm the page cache and imports
    results = [fn() for _ in range(repeat)]
    return min(results, key=lambda r: r[0] if isinstance(r, tuple) else r)


def run(root: Path, label: str, repeat: int) -> float:
    ours_t, version = best(lambda: ours(root), repeat)
    git_t = best(lambda: git_baseline(root), repeat)
    ratio = ours_t / git_t
    print(f"{label:<28} ours {ours_t * 1000:8.1f} ms   git {git_t * 1000:8.1f} ms   "
          f"ratio {ratio:5.2f}   ({version})")
    return ratio


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--modified", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="build the tree here (kept) instead of a temp dir")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="farm-bench-")) if args.dir is None else args.dir
    root = tmp / "repo"
    try:
        t = time.perf_counter()
        make_tree(root, args.files, args.mb)
        size = sum(f.stat().st_size for f in (root / "app").rglob("*") if f.is_file())
        print(f"tree: {args.files} files, {size / 1e6:.0f} MB, git repo ({time.perf_counter() - t:.1f} s to make)")
        ratios = [run(root, "all committed", args.repeat)]
        files = sorted((root / "app").rglob("*.bin"))
        for f in random.Random(1).sample(files, min(args.modified, len(files))):
            with open(f, "ab") as fh:
                fh.write(b"modified")
        ratios.append(run(root, f"{args.modified} files modified", args.repeat))
        # Throughput of our own hashing: with .git moved away every file is read and hashed here.
        git_t = best(lambda: git_baseline(root), args.repeat)
        (root / ".git").rename(tmp / "git-aside")
        try:
            ours_t, version = best(lambda: ours(root), args.repeat)
        finally:
            (tmp / "git-aside").rename(root / ".git")
        print(f"{'not a git repo (all hashed)':<28} ours {ours_t * 1000:8.1f} ms   git {git_t * 1000:8.1f} ms   "
              f"ratio {ours_t / git_t:5.2f}   ({version}; informational)")
        worst = max(ratios)
        print(f"worst ratio {worst:.2f} (goal <= 1.25): {'OK' if worst <= 1.25 else 'MISSED'}")
        return 0
    finally:
        if args.dir is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
