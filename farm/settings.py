"""Runtime settings, from the environment (FARM_*) — `eval "$(farm stack env)"` sets them for the local stack.

A plain pydantic model that reads the environment itself: pydantic-settings cost every `farm`
command ~0.1 s of imports for what is a dictionary lookup per field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Fields read from other variables than FARM_<NAME> (first set wins), as docker and buildctl name them.
_ENV_NAMES = {
    "docker_config": ("DOCKER_CONFIG", "FARM_DOCKER_CONFIG"),
    "docker_host": ("DOCKER_HOST", "FARM_DOCKER_HOST"),
    "buildkit_host": ("BUILDKIT_HOST", "FARM_BUILDKIT_HOST"),
    "kubeconfig": ("KUBECONFIG", "FARM_KUBECONFIG"),
}


def from_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings the environment sets, by field name (names compared case-insensitively)."""
    upper = {k.upper(): v for k, v in environ.items()}
    out = {}
    for name in Settings.model_fields:
        for var in _ENV_NAMES.get(name, (f"FARM_{name.upper()}",)):
            if var in upper:
                out[name] = upper[var]
                break
    return out


class Settings(BaseModel):
    """Keyword arguments win over the environment."""

    model_config = ConfigDict(extra="ignore")

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**from_environ(os.environ), **values})

    broker_url: str = "redis://127.0.0.1:6390/0"
    result_backend: str = "redis://127.0.0.1:6390/1"
    state_dir: Path = Path(".farm")
    # A running job's lease (seconds): its worker renews it (and its message's delivery time) every
    # third of it; a worker not heard from for this long is taken for lost and its job handed out again.
    lease: int = 20
    # kombu re-delivers a message unacknowledged for this long; running jobs keep theirs fresh, so this
    # bounds how soon a lost worker's job runs again (plus kombu's 5 s sweep), not how long a build runs.
    visibility_timeout: int = 30
    # The longest `timeout` a Build may ask for; the worker's hard time limit is a little above it.
    max_build_timeout: int = 4 * 3600
    # On SIGTERM a worker's running builds get this long to finish (Celery's soft shutdown) before
    # they are handed back; a pod's terminationGracePeriodSeconds must be a little longer.
    soft_shutdown_timeout: float = 60.0
    # Where registry credentials live (a docker config.json); never passed through the queue.
    docker_config: Path = Field(default_factory=lambda: Path(os.path.expanduser("~/.docker")))
    docker_host: str = "unix:///var/run/docker.sock"
    # May carry Flower's basic-auth login (`http://user:password@host:port`, as `farm stack env` gives
    # it); messages show `public_flower_url`.
    flower_url: str = "http://127.0.0.1:5555"
    # A worker's own Redis ACL user (`user:password`): `farm worker` connects with it to the broker
    # and result backend named by FARM_BROKER_URL / FARM_RESULT_BACKEND (producers use theirs).
    worker_redis_auth: str = Field(default="", repr=False)
    # Build secrets are sealed for the workers (farm.sealing): producers need the public key (else
    # the one the workers announce in Redis), workers the private key file (the same on all of them;
    # default: made under the worker directory).
    sealing_public_key: str = ""
    sealing_key_file: Path | None = None
    # cluster-buildkit: where the worker's buildkitd listens (the stack exports it).
    buildkit_host: str = ""
    buildctl: str = "buildctl"
    # kaniko: the executor image a worker runs when a project keeps Garden's default `kaniko.image`
    # (the stack exports the one it builds from source), and where executors run: `docker` (a
    # container on DOCKER_HOST's engine) or `kubernetes` (a Pod, with KUBECONFIG). Empty: kubernetes
    # when a kubeconfig is set and the project's provider names a context, else docker.
    kaniko_image: str = ""
    runtime: Literal["", "docker", "kubernetes"] = ""
    kubeconfig: str = ""
    # kubernetes runtime: a build Pod no node took within this many seconds fails with the scheduler's reason.
    kube_schedule_timeout: float = 60.0
    # cluster-buildkit on the local stack's node: the node-network port its buildkitd listens on (127.0.0.1).
    cluster_buildkit_port: int = 1234
    # How buildctl reaches the in-cluster buildkitd: auto (node for a loopback registry, the Service from
    # inside the cluster, else a port-forward through the API server), node, service or port-forward.
    cluster_buildkit_access: Literal["auto", "node", "service", "port-forward"] = "auto"
    # Several platforms: one job per platform on per-arch pools ("fan-out"), or, for cluster-buildkit
    # without per-arch pools, one emulated buildctl call for all of them ("one-call").
    multi_platform: Literal["fan-out", "one-call"] = "fan-out"
    registry_timeout: float = 30.0
    # Transient build failures (daemon unreachable, timeout, registry 5xx) are retried this many
    # times, `retry_backoff` seconds after the first failure and twice as long after each next.
    retries: int = 3
    retry_backoff: float = 5.0
    # Where build contexts go: file:///shared/dir or s3://bucket/prefix (FARM_S3_ENDPOINT_URL for
    # any S3-compatible store). Empty: a directory in the state dir, for the local stack.
    context_store: str = ""
    # Worker side: the local blob cache and the build directories contexts are materialised into.
    worker_dir: Path | None = None
    cache_max_bytes: int = 5 * 1024**3
    context_max_files: int = 100_000
    context_max_bytes: int = 10 * 1024**3
    # A build arg or secret value travels in a process environment (Linux: at most 128 KiB a string),
    # so the producer refuses larger ones before anything is sent.
    build_arg_max_bytes: int = 64 * 1024
    build_args_max_bytes: int = 256 * 1024
    # Scheduling. A submission's priority (high > normal > low) unless `farm build --priority` says;
    # per project: `project_priorities` (`release-app=high,sandbox=low`).
    priority: Literal["high", "normal", "low"] = "normal"
    project_priorities: str = ""
    # Fair shares, read by the workers (they announce them to the farm, so a submitter cannot raise
    # its own cap): the most builds of one namespace in flight at once (0: no cap), and overrides
    # per namespace (`team-a=4,team-b=1`).
    namespace_cap: int = 0
    namespace_caps: str = ""
    # Job records, logs and the job history are kept this many days.
    history_days: float = 7
    metrics_url: str = "http://127.0.0.1:9808/metrics"

    @property
    def public_flower_url(self) -> str:
        """The Flower URL without its login, for messages."""
        scheme, sep, rest = self.flower_url.partition("://")
        return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else self.flower_url

    @property
    def context_store_url(self) -> str:
        return self.context_store or f"file://{(self.state_dir / 'contexts').resolve()}"

    @property
    def worker_root(self) -> Path:
        return (self.worker_dir or self.state_dir / "worker").resolve()

    @property
    def history_ttl(self) -> int:
        return max(int(self.history_days * 24 * 3600), 3600)

    def priority_for(self, project: str) -> str:
        """The default priority of a project's builds: its entry in `project_priorities`, else `priority`.
        ValueError names an entry that is not `project=high|normal|low`."""
        for item in filter(None, (part.strip() for part in self.project_priorities.split(","))):
            name, _, value = item.partition("=")
            if value.strip() not in ("high", "normal", "low") or not name.strip():
                raise ValueError(f"FARM_PROJECT_PRIORITIES: {item!r} is not project=high|normal|low")
            if name.strip() == project:
                return value.strip()
        return self.priority


    def retry_delay(self, attempt: int) -> float:
        """Seconds before retrying after failed attempt `attempt` (1, 2, ...): doubling from
        `retry_backoff`, capped below the visibility timeout (a message waiting longer than that
        would be delivered again early)."""
        return float(min(self.retry_backoff * 2 ** (attempt - 1), self.visibility_timeout / 2))

    def time_problems(self) -> list[str]:
        """Settings that bound time must agree, or builds die at once or run twice."""
        out = []
        if self.lease < 6:
            out.append(f"FARM_LEASE={self.lease}: a lease under 6 s cannot be renewed reliably")
        if self.visibility_timeout < self.lease + 5:
            out.append(f"FARM_VISIBILITY_TIMEOUT={self.visibility_timeout} must be at least FARM_LEASE + 5 "
                       f"({self.lease + 5}): kombu would re-deliver a running job before its lease lapses")
        if self.max_build_timeout < 1:
            out.append(f"FARM_MAX_BUILD_TIMEOUT={self.max_build_timeout} must be at least 1 s")
        return out


def get_settings() -> Settings:
    return Settings()
