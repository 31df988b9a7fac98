"""Celery tasks, thin: materialise the context -> builder jobs -> run them -> record the result.

A failure keeps its class and its chain. The job record says whether it may pass on a retry
(`retryable`); transient failures (daemon unreachable, timeouts, registry 5xx) are retried by
Celery's own mechanism with a bounded count and exponential backoff, permanent ones are not.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Task
from celery.exceptions import Retry

from farm.broker import MERGE_QUEUE, TASK_BUILD_PLATFORM, TASK_MERGE_INDEX, redis_client
from farm.context import BlobCache, Limits, materialise, open_store
from farm.errors import FarmError, PermanentBuildError
from farm.jobs import BuildRequest, JobStore, MergeRequest
from farm.registry import open_client
from workers.app import app, settings
from workers.builder_job import Workspace
from workers.builders import builder_for
from workers.index import push_index
from workers.runtimes import runtime_for

_jobs: JobStore | None = None
_cache: BlobCache | None = None


def jobs() -> JobStore:
    global _jobs
    if _jobs is None:
        _jobs = JobStore(redis_client(settings))
    return _jobs


def blob_cache() -> BlobCache:
    global _cache
    if _cache is None:
        _cache = BlobCache(settings.worker_root / "blobs", settings.cache_max_bytes)
    return _cache


@app.task(bind=True, name=TASK_BUILD_PLATFORM)
def build_platform(self: Task, request: dict[str, Any]) -> dict[str, Any]:
    """Build one Build for one platform, push it, and return its digest."""
    req = BuildRequest.model_validate(request)
    subject = {"build": req.build, "platform": req.platform, "job_id": req.job_id, "ref": req.image}
    try:
        digest = _record(self, req.job_id, subject, lambda log: _build(req, log))
    except Retry:
        raise                       # the secrets wait for the next attempt
    except BaseException:
        jobs().drop_secrets(req.job_id)
        raise
    jobs().drop_secrets(req.job_id)
    if req.merge is not None and jobs().platform_done(req.merge, req.job_id):
        merge_index.apply_async(args=[req.merge.model_dump(mode="json")], task_id=req.merge.job_id,
                                queue=MERGE_QUEUE)
    return {"job_id": req.job_id, "image": req.image, "digest": digest, "platform": req.platform}


@app.task(bind=True, name=TASK_MERGE_INDEX)
def merge_index(self: Task, request: dict[str, Any]) -> dict[str, Any]:
    """Push the image index of a multi-platform Build once all its platforms are pushed."""
    req = MergeRequest.model_validate(request)
    subject = {"build": req.build, "platform": "index", "job_id": req.job_id, "ref": req.image}
    digest = _record(self, req.job_id, subject, lambda log: push_index(req, settings.docker_config, log))
    return {"job_id": req.job_id, "image": req.image, "digest": digest}


def _record(task: Task, job_id: str, subject: dict[str, str], work: Callable[[Callable[[str], None]], str]) -> str:
    """Run a job's work with its record kept: started, then built with a digest, retrying, or failed."""
    store = jobs()
    attempt = task.request.retries + 1
    store.update(job_id, status="started", started_at=time.time(), attempts=attempt,
                 worker=f"{socket.gethostname()}:{os.getpid()}")
    try:
        digest = work(lambda line: store.log(job_id, line))
    except FarmError as exc:
        exc.about(**subject)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if exc.retryable and task.request.retries < settings.retries:
            delay = settings.retry_backoff * 2 ** task.request.retries
            store.update(job_id, status="retrying", error=message, error_type=type(exc).__name__, retryable=1)
            store.log(job_id, f"farm: attempt {attempt} failed: {message}; retrying in {delay:.0f} s")
            raise task.retry(exc=exc, countdown=delay, max_retries=settings.retries) from exc
        _failed(store, job_id, message, type(exc).__name__, exc.retryable)
        raise
    except Exception as exc:  # a bug or an outside failure: the record still says what happened
        message = f"internal error in the worker: {exc.__class__.__name__}: {exc}".splitlines()[0]
        _failed(store, job_id, message, type(exc).__name__, False)
        raise
    store.update(job_id, status="built", digest=digest, finished_at=time.time())
    store.log(job_id, f"farm: built {digest}")
    store.expire_log(job_id)
    return digest


def _failed(store: JobStore, job_id: str, message: str, error_type: str, retryable: bool) -> None:
    store.update(job_id, status="failed", error=message, error_type=error_type, retryable=int(retryable),
                 finished_at=time.time())
    store.log(job_id, f"farm: failed: {message}")  # also wakes a CLI following the log
    store.expire_log(job_id)


@contextmanager
def workspace(req: BuildRequest, log: Callable[[str], None]) -> Iterator[Workspace]:
    """The request's context materialised into a fresh build directory, removed afterwards."""
    builds = settings.worker_root / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    build_dir = Path(tempfile.mkdtemp(prefix=f"{req.build}-", dir=builds))
    try:
        limits = Limits(max_files=settings.context_max_files, max_bytes=settings.context_max_bytes)
        context = materialise(open_store(req.context_store), req.context, build_dir, blob_cache(), limits)
        log(f"context {req.context} materialised")
        yield Workspace(context_dir=str(context), docker_config=settings.docker_config,
                        buildkit_host=settings.buildkit_host, buildctl=settings.buildctl, arg_env=dict(os.environ))
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)


def _build(req: BuildRequest, log: Callable[[str], None]) -> str:
    builder = builder_for(req.mode)
    values = jobs().secrets(req.job_id)
    missing = sorted(set(req.secret_ids) - set(values))
    if missing:
        raise PermanentBuildError(f"the values of build secrets {', '.join(missing)} are gone "
                                  "(expired before the build ran?); submit the build again")
    secrets = builder.secret_env(values)
    lines: list[str] = []
    with workspace(req, log) as ws:
        for job in builder.jobs(req, ws):
            log("$ " + " ".join(job.argv))
            lines += runtime_for(job)(job, secrets, log)
    return builder.digest(lines) or _pushed_digest(req)


def _pushed_digest(req: BuildRequest) -> str:
    """What the registry now serves under the pushed tag."""
    client, ref = open_client(req.image, settings.docker_config, insecure=req.insecure)
    with client:
        info = client.head_manifest(ref.repository, ref.ref)
    if info is None:
        raise PermanentBuildError(f"the builder finished but {req.image} is not in the registry")
    return info.digest
