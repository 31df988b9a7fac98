"""Runtime settings, from the environment (FARM_*) — `eval "$(farm stack env)"` sets them for the local stack."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FARM_", extra="ignore")

    broker_url: str = "redis://127.0.0.1:6390/0"
    result_backend: str = "redis://127.0.0.1:6390/1"
    state_dir: Path = Path(".farm")
    # Above the longest build plus its longest wait in the queue, or Redis redelivers a running build.
    visibility_timeout: int = 7200
    # Where registry credentials live (a docker config.json); never passed through the queue.
    docker_config: Path = Field(
        default_factory=lambda: Path(os.path.expanduser("~/.docker")),
        validation_alias=AliasChoices("DOCKER_CONFIG", "FARM_DOCKER_CONFIG"),
    )
    docker_host: str = Field(
        default="unix:///var/run/docker.sock",
        validation_alias=AliasChoices("DOCKER_HOST", "FARM_DOCKER_HOST"),
    )
    flower_url: str = "http://127.0.0.1:5555"
    # cluster-buildkit: where the worker's buildkitd listens (the stack exports it).
    buildkit_host: str = Field(default="", validation_alias=AliasChoices("BUILDKIT_HOST", "FARM_BUILDKIT_HOST"))
    buildctl: str = "buildctl"
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

    @property
    def context_store_url(self) -> str:
        return self.context_store or f"file://{(self.state_dir / 'contexts').resolve()}"

    @property
    def worker_root(self) -> Path:
        return (self.worker_dir or self.state_dir / "worker").resolve()


def get_settings() -> Settings:
    return Settings()
