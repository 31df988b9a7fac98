"""Builders, one module per build mode, found by mode in one table.

A builder turns a request and a materialised context (a Workspace) into BuilderJobs that a runtime
runs; it maps the build's secrets onto the environment names its jobs read, and may read the
pushed digest from its own output (else the registry is asked).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from farm.errors import PermanentBuildError
from farm.jobs import BuildRequest
from workers.builder_job import BuilderJob, Workspace
from workers.builders import cluster_buildkit, kaniko, local_docker


class Builder(Protocol):
    mode: str

    def jobs(self, req: BuildRequest, ws: Workspace) -> list[BuilderJob]:
        """The jobs to run, in order, to build and push `req`."""

    def secret_env(self, values: Mapping[str, str]) -> dict[str, str]:
        """Secret id -> value, as the environment its jobs' `secret_env` names."""

    def digest(self, lines: Sequence[str]) -> str | None:
        """The digest the builder reported pushing, if its output says."""


BUILDERS: dict[str, Builder] = {b.mode: b for b in (local_docker.BUILDER, cluster_buildkit.BUILDER, kaniko.BUILDER)}


def builder_for(mode: str) -> Builder:
    try:
        return BUILDERS[mode]
    except KeyError:
        raise PermanentBuildError(f"build mode {mode!r} is not available on this worker "
                                  f"(it has {', '.join(sorted(BUILDERS))})") from None
