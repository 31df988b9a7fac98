"""The farm's overhead on top of the raw builder: the same context built by the builder directly and by
`farm build` through the queue (CLI, status check, context upload, Redis, worker, materialise), cold
and with a warm cache, in the same run. Goal: <= 1.05x cold; a no-change rebuild is answered by the
registry status check without running the builder.

    cluster-buildkit   `buildctl` against the stack's buildkitd, with the flags the farm generates
    kaniko             the Kaniko executor image run with `docker run` on the stack's engine (the
                       context and the docker config mounted read-only, as the farm's docker runtime
                       does), with the arguments the farm generates; its registry cache warms the rerun

    .venv/bin/python bench/builders.py [--rounds 3] [--mb 3000] [--mode cluster-buildkit|kaniko|all]

The default RUN step (hashing 3000 MB, ~25 s here) stands for a modest real build; the farm adds a
roughly fixed ~1 s (CLI start, status check, upload, queue), so shorter builds show a larger ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from farmbench import farm_build, median, stack_env, workers, write_project

from farm import plan
from farm.images import cache_refs
from farm.jobs import BuildRequest
from workers.builder_job import Workspace
from workers.builders import cluster_buildkit, kaniko

DOCKERFILE = """\
FROM {base}
ARG NONCE
# The expensive step: hashes {mb} MB, a stand-in for compiling.
RUN dd if=/dev/zero bs=1M count={mb} 2>/dev/null | sha256sum > /work.sum && echo "$NONCE" > /nonce
COPY app.txt /app.txt
"""


def set_nonce(root: Path, nonce: str) -> None:
    (root / "app" / "garden.yml").write_text(
        f"kind: Build\ntype: container\nname: app\nspec:\n  buildArgs:\n    NONCE: {nonce}\n")


def buildctl_direct(root: Path, env: dict[str, str], nonce: str, tag: str) -> float:
    """buildctl as a user would run it by hand, with the very flags the farm's builder generates."""
    project, _ = plan.load(root)
    build = project.builds["app"]
    image = f"{env['FARM_REGISTRY']}/bench/app"
    job = cluster_buildkit.buildctl_job(
        cache_refs(build, project.provider), cluster_buildkit.BuildSpec(), platforms=["linux/amd64"],
        deployment_image_id=f"{image}:{tag}", build_args={"NONCE": nonce}, secret_ids=[],
        context_dir=str(root / "app"), insecure=True)
    t0 = time.monotonic()
    subprocess.run([env["FARM_BUILDCTL"], *job.argv[1:]], cwd=root / "app", check=True, capture_output=True,
                   env={**os.environ, "BUILDKIT_HOST": env["BUILDKIT_HOST"], "DOCKER_CONFIG": env["DOCKER_CONFIG"]})
    return time.monotonic() - t0


def kaniko_direct(root: Path, env: dict[str, str], nonce: str, tag: str) -> float:
    """The executor as a user would run it by hand on the same engine, with the farm's own arguments."""
    project, versions = plan.load(root)
    (build,) = plan.plan(project, versions).builds
    req = BuildRequest(job_id="bench", project=project.name, build="app", version=tag, platform="linux/amd64",
                       mode="kaniko", image=f"{env['FARM_REGISTRY']}/bench/app:{tag}", insecure=True,
                       context="-", context_store="-", build_args={"NONCE": nonce}, kaniko=build.kaniko)
    ws = Workspace(context_dir=str(root / "app"), docker_config=Path(env["DOCKER_CONFIG"]),
                   kaniko_image=env["FARM_KANIKO_IMAGE"])
    (job,) = kaniko.BUILDER.jobs(req, ws)
    t0 = time.monotonic()
    subprocess.run(["/usr/bin/docker", "run", "--rm", "--network", "host",
                    "-v", f"{root / 'app'}:/workspace:ro", "-v", f"{env['DOCKER_CONFIG']}:/kaniko/.docker:ro",
                    "--entrypoint", job.argv[0], job.image or "", *job.argv[1:]],
                   check=True, capture_output=True, env={**os.environ, "DOCKER_HOST": env["DOCKER_HOST"]})
    return time.monotonic() - t0


DIRECT = {"cluster-buildkit": ("buildctl", buildctl_direct), "kaniko": ("executor", kaniko_direct)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mb", type=int, default=3000, help="size the RUN step hashes")
    ap.add_argument("--mode", choices=["cluster-buildkit", "kaniko", "all"], default="all")
    args = ap.parse_args()
    env = stack_env()
    from farm.stack import DEFAULT_SERVICES, Stack

    st = Stack(Path(env["FARM_STATE_DIR"]))
    if "BUILDKIT_HOST" not in env:
        st.up([*DEFAULT_SERVICES, "buildkitd"])
    if args.mode in ("kaniko", "all"):
        st.kaniko_image()
    env = stack_env()
    for mode in (["cluster-buildkit", "kaniko"] if args.mode == "all" else [args.mode]):
        bench_mode(mode, env, args.rounds, args.mb)


def bench_mode(mode: str, env: dict[str, str], rounds: int, mb: int) -> None:
    tool, direct = DIRECT[mode]
    print(f"== {mode}: {tool} direct vs farm build")
    times: dict[str, list[float]] = {k: [] for k in ("direct-cold", "farm-cold", "direct-warm", "farm-warm", "nochange",
                                                      "worker-cold")}
    with tempfile.TemporaryDirectory(prefix="farm-bench-builders-") as tmp:
        tmpdir = Path(tmp)
        files = {"Dockerfile": DOCKERFILE.format(base=env["FARM_BASE_IMAGE"], mb=mb), "app.txt": "v0\n"}
        root = write_project(tmpdir / "p", {"app": files}, namespace="bench", mode=mode)
        with workers("linux/amd64", log_dir=tmpdir):
            for _ in range(rounds):
                # Cold: a fresh NONCE, so the RUN step runs; warm: only the last COPY changes.
                nonce = uuid.uuid4().hex
                set_nonce(root, nonce)
                (root / "app" / "app.txt").write_text(f"{nonce}\n")
                times["direct-cold"].append(direct(root, env, nonce, f"direct-{nonce[:8]}"))
                (root / "app" / "app.txt").write_text(f"{nonce} warm\n")
                times["direct-warm"].append(direct(root, env, nonce, f"direct-{nonce[:8]}-w"))

                nonce = uuid.uuid4().hex
                set_nonce(root, nonce)
                (root / "app" / "app.txt").write_text(f"{nonce}\n")
                elapsed, doc = farm_build(root)
                times["farm-cold"].append(elapsed)
                times["worker-cold"].append(doc["builds"][0]["timings"]["build_s"])
                (root / "app" / "app.txt").write_text(f"{nonce} warm\n")
                times["farm-warm"].append(farm_build(root)[0])
                elapsed, doc = farm_build(root)
                if doc["builds"][0]["status"] != "cached":
                    raise SystemExit("a no-change rebuild was not answered by the status check")
                times["nochange"].append(elapsed)
    for key, values in times.items():
        print(f"{key:12} {median(values):7.2f} s  (median of {len(values)})")
    print(f"of farm-cold, the worker's job took {median(times['worker-cold']):.2f} s (materialise + {tool} + "
          "digest check); the rest is the CLI, the status check, the context upload and the queue")
    print(f"ratio farm / {tool}, cold: {median(times['farm-cold']) / median(times['direct-cold']):.2f}x (goal <= 1.05x)")
    print(f"ratio farm / {tool}, warm: {median(times['farm-warm']) / median(times['direct-warm']):.2f}x")
    print(f"no-change rebuild: {median(times['nochange']):.2f} s, answered by the registry status check (no {tool} run)")


if __name__ == "__main__":
    main()
