"""Runtimes: where a BuilderJob runs. Each has one `run(job, secrets, on_line) -> lines`.

    process      a local process on the worker (buildctl, the docker CLI)
    docker       a container on the worker's engine (the Kaniko executor), workers.runtimes.docker
    kubernetes   the builder objects of a namespace in a cluster (workers.runtimes.kubernetes)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from workers.builder_job import BuilderJob
from workers.runtimes import process


class Runtime(Protocol):
    def __call__(self, job: BuilderJob, secrets: Mapping[str, str], on_line: Callable[[str], None] | None,
                 stop: threading.Event | None = None) -> list[str]:
        """Run `job`; its output lines, or a BuildError; `stop` set kills it (BuildStopped)."""


def container_runtime(configured: str, kubeconfig: str, context: str | None) -> str:
    """Where a job with an image runs: FARM_RUNTIME when set, else `kubernetes` for a worker with a
    kubeconfig building a project whose provider names a context, else `docker`."""
    if configured:
        return configured
    return "kubernetes" if kubeconfig and context else "docker"


def runtime_for(job: BuilderJob) -> Runtime:
    """A job with an image runs in a container (docker or kubernetes), any other as a process."""
    if job.image:
        from farm.settings import get_settings

        settings = get_settings()
        if container_runtime(settings.runtime, settings.kubeconfig, job.placement.context) == "kubernetes":
            from workers.runtimes import kubernetes_pod

            return kubernetes_pod.run
        from workers.runtimes import docker

        return docker.run
    return process.run
