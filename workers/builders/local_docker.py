"""local-docker mode: `docker build` on the worker's engine, then `docker push` (Garden's local build)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from farm.broker import platform_slug
from farm.jobs import BuildRequest
from workers.builder_job import BuilderJob, Workspace

MODE = "local-docker"
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


# Names the docker CLI (or the dynamic linker, Go's runtime, its HTTP client) reads from its own
# environment: a build arg of that name stays on the command line (bounded by the producer's size
# check) rather than change how the CLI runs.
_CLI_ENV = re.compile(r"^(?:DOCKER_.*|LD_.*|GO.*|PATH|HOME|TMPDIR|SSL_CERT_.*|XDG_.*|.*_PROXY|BUILDKIT_.*)$",
                      re.IGNORECASE)


def cache_tag(req: BuildRequest) -> str:
    """A local tag per Build and platform: the only image `--cache-from` offers a build, so a
    platform never reuses another platform's layers on a shared engine."""
    return f"farm-cache/{req.project}-{req.build}:{platform_slug(req.platform or 'default')}"


def build_job(req: BuildRequest, context_dir: str) -> BuilderJob:
    """The `docker build` command for a request. The classic builder: this engine has no buildx.

    Build args travel in the CLI's environment (`--build-arg KEY` reads it), never on its command
    line. The classic builder's local cache ignores the platform; with `--cache-from` it takes only
    layers of that image's chain, and the image is this platform's own earlier build."""
    argv = ["docker", "build", "--file", req.dockerfile, "--tag", req.image, "--tag", cache_tag(req),
            "--cache-from", cache_tag(req)]
    env = [("DOCKER_BUILDKIT", "0")]
    for key, value in sorted(req.build_args.items()):
        if value is None or not _CLI_ENV.match(key):
            argv += ["--build-arg", key]
            if value is not None:
                env.append((key, value))
        else:
            argv += ["--build-arg", f"{key}={value}"]
    if req.target:
        argv += ["--target", req.target]
    if req.platform:
        argv += ["--platform", req.platform]
    argv += [*req.extra_flags, "."]
    return BuilderJob(mode=MODE, argv=tuple(argv), context_dir=context_dir,
                      timeout=req.timeout, env=tuple(env))


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
