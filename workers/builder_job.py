"""What a builder hands a runtime: a BuilderJob, pure data, and the worker's side of the build.

A builder turns (request, materialised context, worker settings) into BuilderJobs; a runtime (a
local process, a container on a Docker engine, a Kubernetes Pod) runs them. Builders and runtimes
never import each other, only this module, so command lines and manifests are unit-tested as values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    """Where a build runs on this worker, and what the worker offers its builders."""

    context_dir: str                            # the materialised context
    docker_config: Path                         # the worker's registry credentials (a directory)
    buildkit_host: str = ""                     # cluster-buildkit: the daemon buildctl talks to
    buildctl: str = "buildctl"
    arg_env: Mapping[str, str] = field(default_factory=dict)  # where a build arg without value is read


@dataclass(frozen=True)
class BuilderJob:
    mode: str                                   # "local-docker" | "cluster-buildkit" | "kaniko"
    argv: tuple[str, ...]                       # the builder's command line; never holds a secret value
    context_dir: str                            # where the materialised context lies (the cwd of argv)
    timeout: int                                # seconds, the Build's `timeout`
    env: tuple[tuple[str, str], ...] = ()       # non-secret environment
    secret_env: tuple[str, ...] = ()            # env var names whose values the runtime injects at run time
    # Output that means the builder's daemon is unreachable (a transient failure), and that daemon.
    unreachable: str | None = None
    daemon: str | None = None
