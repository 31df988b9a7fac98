"""The `kaniko` build mode: one Kaniko executor per build and platform, in a container of its own.

The job is `/kaniko/executor` with GARDEN-SPEC §4.3's arguments (`farm.kaniko.executor_args`, from
the KanikoOptions the producer resolved) in the executor image: the Build's `kaniko.image` when the
user set one, else the worker's own (FARM_KANIKO_IMAGE, the executor the stack builds from source).
A runtime runs it: `docker` as a container on the worker's engine, `kubernetes` as the Pod of §5.4.
Either way the context reaches the executor from the farm's context store, materialised by the
worker (no rsync `garden-util` Deployment): read-only at /workspace on an engine, streamed into the
Pod by the kubernetes runtime (see workers/runtimes/kubernetes_pod.py). The executor pushes itself;
the digest is read from the registry afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from farm.errors import ConfigError, PermanentBuildError
from farm.jobs import BuildRequest
from farm.kaniko import IMMUTABLE_TAG, SECRETS_REFUSED, KanikoOptions, executor_args, resolve_build_args
from workers.builder_job import BuilderJob, Placement, Workspace
from workers.k8s_objects import BUILDER_SERVICE_ACCOUNT

MODE = "kaniko"
# What the executor prints when a registry cannot be reached at all (a transient failure).
CAUSE = r"(?i)^error\b"          # the executor's own last word: `error building image: …`, `Error: …`
UNREACHABLE = r"dial tcp \S+: connect: connection refused|no such host|i/o timeout|connection reset by peer"


def executor_job(req: BuildRequest, ws: Workspace) -> BuilderJob:
    """The executor job for one request (one platform)."""
    if req.secret_ids:
        raise ConfigError(SECRETS_REFUSED, field=f"Build {req.build}: spec.secrets")
    options = req.kaniko or KanikoOptions()
    image = options.image or ws.kaniko_image
    if not image:
        raise PermanentBuildError("kaniko: this worker has no executor image (set FARM_KANIKO_IMAGE, or "
                                  "`farm stack up --project DIR` for a kaniko project)")
    argv = executor_args(destination=req.image, dockerfile=req.dockerfile, options=options,
                         build_args=resolve_build_args(req.build_args, ws.arg_env), target=req.target,
                         platform=req.platform or None, insecure=req.insecure)
    node_selector = dict(options.node_selector)
    if any(step.startswith("RUN") for step in req.steps) and req.platform and "kubernetes.io/arch" not in node_selector:
        # RUN executes natively: in a cluster, a node of the platform's architecture runs it
        node_selector["kubernetes.io/arch"] = req.platform.split("/")[1]
    placement = Placement(namespace=options.namespace, context=options.kube_context, build=req.build,
                          labels={"farm/job": req.job_id}, service_account=BUILDER_SERVICE_ACCOUNT,
                          service_account_annotations=options.service_account_annotations,
                          node_selector=node_selector, tolerations=options.tolerations,
                          annotations=options.annotations, resources=options.resources,
                          image_pull_secrets=options.image_pull_secrets)
    return BuilderJob(mode=MODE, argv=tuple(argv), context_dir=ws.context_dir, timeout=req.timeout,
                      unreachable=UNREACHABLE, cause=CAUSE, daemon="a registry", image=image, placement=placement,
                      docker_config=str(ws.docker_config),
                      accept=(tuple(re.escape(part) for part in IMMUTABLE_TAG),))


class Kaniko:
    mode = MODE

    def jobs(self, req: BuildRequest, ws: Workspace) -> list[BuilderJob]:
        return [executor_job(req, ws)]

    def secret_env(self, values: Mapping[str, str]) -> dict[str, str]:
        return {}       # refused at plan time: kaniko cannot mount build secrets

    def digest(self, lines: Sequence[str]) -> str | None:
        return None     # the registry says what the tag now names


BUILDER = Kaniko()
