"""What a builder hands a runtime: a BuilderJob, pure data, and the worker's side of the build.

A builder turns (request, materialised context, worker settings) into BuilderJobs; a runtime (a
local process, a container on a Docker engine, a Kubernetes Pod) runs them. Builders and runtimes
never import each other, only this module, so command lines and manifests are unit-tested as values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Workspace:
    """Where a build runs on this worker, and what the worker offers its builders."""

    context_dir: str                            # the materialised context
    docker_config: Path                         # the worker's registry credentials (a directory)
    buildkit_host: str = ""                     # cluster-buildkit: the daemon buildctl talks to
    buildctl: str = "buildctl"
    arg_env: Mapping[str, str] = field(default_factory=dict)  # where a build arg without value is read
    kaniko_image: str = ""                      # the executor image this worker runs (FARM_KANIKO_IMAGE)


@dataclass(frozen=True)
class Placement:
    """Where a containerised job runs in a cluster, and with what (GARDEN-SPEC §5.4); a container
    runtime on an engine reads only `resources` (its memory limit)."""

    namespace: str = "default"
    context: str | None = None                  # the provider's kubeconfig context
    build: str = ""                             # names the Pod
    labels: Mapping[str, str] = field(default_factory=dict)
    service_account: str | None = None
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    image_pull_secrets: tuple[str, ...] = ()


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
    # The line that says why the builder failed (its last match), when its output interleaves.
    cause: str | None = None
    # A containerised builder (kaniko): argv runs in this image, with the context at `context_mount`
    # and the worker's registry credentials at `docker_config_mount`, both read-only.
    image: str | None = None
    docker_config: str | None = None           # the build's docker config dir (else the worker's)
    context_mount: str = "/workspace"
    docker_config_mount: str = "/kaniko/.docker"
    placement: Placement = Placement()
    # Output that means success whatever the exit code: every regex of one tuple found in the output
    # (ECR's immutable tag that already holds the image, GARDEN-SPEC §4.3).
    accept: tuple[tuple[str, ...], ...] = ()


def accepted(job: BuilderJob, lines: Sequence[str]) -> bool:
    """A failed run whose output matches one of the job's `accept` patterns counts as success."""
    text = "\n".join(lines)
    return any(all(re.search(p, text) for p in patterns) for patterns in job.accept)
