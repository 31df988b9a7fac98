"""Celery tasks: thin wrappers that record the job and call a builder."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from farm.broker import MERGE_QUEUE, redis_client
from farm.context import BlobCache, Limits, materialise, open_store
from farm.errors import BuildError, FarmError, PermanentBuildError, TransientBuildError
from farm.jobs import BuildRequest, JobStore, MergeRequest
from farm.registry import RegistryClient, load_credentials, parse_reference
from workers.app import app, settings
from workers.builders import cluster_buildkit, local_docker
from workers.index import push_index
from workers.runtimes.local import run_job

_jobs: JobStore | None = None


def jobs() -> JobStore:
    global _jobs
    if _jobs is None:
        _jobs = JobStore(redis_client(settings))
    return _jobs


@app.task(name="farm.build_platform")
def build_platform(request: dict[str, Any]) -> dict[str, Any]:
    """Build one Build for one platform, push it, and return its digest."""
    req = BuildRequest.model_validate(request)
    try:
        digest = _run(req.job_id, f"{req.build} ({req.platform})", lambda log: _build(req, log))
    finally:
        jobs().drop_secrets(req.job_id)
    if req.merge is not None and jobs().platform_done(req.merge, req.job_id):
        merge_index.apply_async(args=[req.merge.model_dump(mode="json")], task_id=req.merge.job_id,
                                queue=MERGE_QUEUE)
    return {"job_id": req.job_id, "image": req.image, "digest": digest, "platform": req.platform}


@app.task(name="farm.merge_index")
def merge_index(request: dict[str, Any]) -> dict[str, Any]:
    """Push the image index of a multi-platform Build once all its platforms are pushed."""
    req = MergeRequest.model_validate(request)
    digest = _run(req.job_id, f"{req.build} (index)", lambda log: push_index(req, settings.docker_config, log))
    return {"job_id": req.job_id, "image": req.image, "digest": digest}


def _run(job_id: str, what: str, work: Callable[[Callable[[str], None]], str]) -> str:
    """Run a job's work with its record kept: started, then built with a digest or failed with a cause."""
    store = jobs()
    store.update(job_id, status="started", started_at=time.time(), worker=f"{socket.gethostname()}:{os.getpid()}")
    try:
        digest = work(lambda line: store.log(job_id, line))
    except FarmError as exc:
        message = str(exc).splitlines()[0]
        store.update(job_id, status="failed", error=message, finished_at=time.time())
        store.log(job_id, f"farm: failed: {message}")  # also wakes a CLI following the log
        store.expire_log(job_id)
        # Re-raised as a plain build error so Flower shows FAILURE with the one-line cause.
        raise BuildError(f"{what}: {message}") from None
    except Exception as exc:  # a bug or an outside failure: the record still says what happened
        message = f"internal error in the worker: {exc.__class__.__name__}: {exc}".splitlines()[0]
        store.update(job_id, status="failed", error=message, finished_at=time.time())
        store.log(job_id, f"farm: failed: {message}")
        raise
    store.update(job_id, status="built", digest=digest, finished_at=time.time())
    store.log(job_id, f"farm: built {digest}")
    store.expire_log(job_id)
    return digest


_cache: BlobCache | None = None


def blob_cache() -> BlobCache:
    global _cache
    if _cache is None:
        _cache = BlobCache(settings.worker_root / "blobs", settings.cache_max_bytes)
    return _cache


def _build(req: BuildRequest, log: Callable[[str], None]) -> str:
    """Materialise the context into a fresh build directory, run the mode's builder, push."""
    builds = settings.worker_root / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    build_dir = Path(tempfile.mkdtemp(prefix=f"{req.build}-", dir=builds))
    try:
        limits = Limits(max_files=settings.context_max_files, max_bytes=settings.context_max_bytes)
        context = materialise(open_store(req.context_store), req.context, build_dir, blob_cache(), limits)
        log(f"context {req.context} materialised")
        return _run_builder(req, str(context), log)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)


def _run_builder(req: BuildRequest, context_dir: str, log: Callable[[str], None]) -> str:
    if req.mode == "cluster-buildkit":
        return _buildkit(req, context_dir, log)
    if req.mode != "local-docker":
        raise PermanentBuildError(f"build mode {req.mode!r} is not available on this worker yet")
    build = local_docker.build_job(req, context_dir)
    log(f"$ {' '.join(build.argv)}")
    run_job(build, log)
    log(f"$ docker push {req.image}")
    lines = run_job(local_docker.push_job(req, context_dir), log)
    digest = local_docker.pushed_digest(lines)
    if not digest:
        raise PermanentBuildError("docker push reported no digest")
    return digest


def _buildkit(req: BuildRequest, context_dir: str, log: Callable[[str], None]) -> str:
    """buildctl against this worker's buildkitd; it pushes (and exports caches) itself."""
    if not settings.buildkit_host:
        raise TransientBuildError("this worker has no buildkitd (set BUILDKIT_HOST, or `farm stack up --with buildkitd`)")
    spec = cluster_buildkit.BuildSpec(dockerfile=req.dockerfile, target_stage=req.target,
                                      extra_flags=tuple(req.extra_flags))
    job = cluster_buildkit.buildctl_job(
        req.cache, spec, platforms=req.platforms or [req.platform], deployment_image_id=req.image,
        build_args=req.build_args, secret_ids=req.secret_ids, context_dir=context_dir, timeout=req.timeout,
        insecure=req.insecure, arg_env=os.environ)
    values = jobs().secrets(req.job_id)
    missing = sorted(set(req.secret_ids) - set(values))
    if missing:
        raise PermanentBuildError(f"the values of build secrets {', '.join(missing)} are gone "
                                  "(expired before the build ran?); submit the build again")
    log("$ " + " ".join(job.argv))
    cluster_buildkit.run_buildctl(job, buildkit_host=settings.buildkit_host, docker_config=str(settings.docker_config),
                                  secret_values=cluster_buildkit.secret_environment(values), on_line=log,
                                  buildctl=settings.buildctl)
    return _pushed_digest(req)


def _pushed_digest(req: BuildRequest) -> str:
    """What the registry now serves under the pushed tag."""
    ref = parse_reference(req.image)
    with RegistryClient(ref.host, load_credentials(settings.docker_config, ref.host), insecure=req.insecure) as reg:
        info = reg.head_manifest(ref.repository, ref.ref)
    if info is None:
        raise PermanentBuildError(f"the builder finished but {req.image} is not in the registry")
    return info.digest
