"""What every builder produces: a BuilderJob, pure data that a runtime executes.

A builder turns (provider config, build, platform, refs) into a BuilderJob; a runtime (a local
process, a container on the local engine, a Kubernetes Pod) runs it. Keeping it data means
command lines and manifests are unit-tested as values.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BuilderJob:
    mode: str                                   # "local-docker" | "cluster-buildkit" | "kaniko"
    argv: tuple[str, ...]                       # the builder's command line; never holds a secret value
    context_dir: str                            # where the materialised context lies (the cwd of argv)
    timeout: int                                # seconds, the Build's `timeout`
    image: str | None = None                    # builder container image when run in a container/Pod
    env: tuple[tuple[str, str], ...] = ()       # non-secret environment
    secret_env: tuple[str, ...] = ()            # env var names whose values the runtime injects at run time
    mounts: tuple[tuple[str, str], ...] = ()    # (host/volume path, container path), read-only
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    tolerations: tuple[dict[str, str], ...] = ()
    node_selector: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    service_account: str | None = None
