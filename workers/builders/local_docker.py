"""local-docker mode: `docker build` on the worker's engine, then `docker push` (Garden's local build)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from farm.jobs import BuildRequest
from workers.builder_job import BuilderJob, Workspace

MODE = "local-docker"
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


def build_job(req: BuildRequest, context_dir: str) -> BuilderJob:
    """The `docker build` command for a request. The classic builder: this engine has no buildx."""
    argv = ["docker", "build", "--file", req.dockerfile, "--tag", req.image]
    for key, value in sorted(req.build_args.items()):
        argv += ["--build-arg", key if value is None else f"{key}={value}"]
    if req.target:
        argv += ["--target", req.target]
    if req.platform:
        argv += ["--platform", req.platform]
    argv += [*req.extra_flags, "."]
    return BuilderJob(mode=MODE, argv=tuple(argv), context_dir=context_dir,
                      timeout=req.timeout, env=(("DOCKER_BUILDKIT", "0"),))


def push_job(req: BuildRequest, context_dir: str) -> BuilderJob:
    """`docker push`: credentials come from DOCKER_CONFIG in the worker's environment, never argv."""
    return BuilderJob(mode=MODE, argv=("docker", "push", req.image), context_dir=context_dir, timeout=req.timeout)


def pushed_digest(lines: Sequence[str]) -> str | None:
    """The manifest digest `docker push` reports on its last line."""
    for line in reversed(lines):
        if match := _DIGEST.search(line):
            return match.group(1)
    return None


class LocalDocker:
    mode = MODE

    def jobs(self, req: BuildRequest, ws: Workspace) -> list[BuilderJob]:
        # The build's own docker config (the project's pull secrets merged in) for the pull and the push.
        config = (("DOCKER_CONFIG", str(ws.docker_config)),)
        return [replace(j, env=j.env + config) for j in (build_job(req, ws.context_dir),
                                                          push_job(req, ws.context_dir))]

    def secret_env(self, values: Mapping[str, str]) -> dict[str, str]:
        return {}       # the classic builder mounts no build secrets

    def digest(self, lines: Sequence[str]) -> str | None:
        return pushed_digest(lines)


BUILDER = LocalDocker()
