"""Celery tasks: thin wrappers that record the job and call a builder."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from farm.errors import BuildError, FarmError, PermanentBuildError
from farm.broker import redis_client
from farm.jobs import BuildRequest, JobStore
from workers.app import app, settings
from workers.builders import local_docker
from workers.runtimes.local import run_job

_jobs: JobStore | None = None


def jobs() -> JobStore:
    global _jobs
    if _jobs is None:
        _jobs = JobStore(redis_client(settings))
    return _jobs


@app.task(name="farm.build_platform", bind=True)
def build_platform(self: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Build one Build for one platform, push it, and return its digest."""
    req = BuildRequest.model_validate(request)
    store = jobs()
    store.update(req.job_id, status="started", started_at=time.time(),
                 worker=f"{socket.gethostname()}:{os.getpid()}")

    def log(line: str) -> None:
        store.log(req.job_id, line)

    try:
        digest = _build(req, log)
    except FarmError as exc:
        message = str(exc).splitlines()[0]
        store.update(req.job_id, status="failed", error=message, finished_at=time.time())
        store.expire_log(req.job_id)
        # Re-raised as a plain build error so Flower shows FAILURE with the one-line cause.
        raise BuildError(f"{req.build} ({req.platform}): {message}") from None
    store.update(req.job_id, status="built", digest=digest, finished_at=time.time())
    store.expire_log(req.job_id)
    return {"job_id": req.job_id, "image": req.image, "digest": digest, "platform": req.platform}


def _build(req: BuildRequest, log: Any) -> str:
    if req.mode != "local-docker":
        raise PermanentBuildError(f"build mode {req.mode!r} is not available on this worker yet")
    if not os.path.isdir(req.context_dir):
        raise PermanentBuildError(f"context directory {req.context_dir} does not exist on this worker")
    log(f"$ {' '.join(local_docker.build_job(req).argv)}")
    run_job(local_docker.build_job(req), log)
    log(f"$ docker push {req.image}")
    lines = run_job(local_docker.push_job(req), log)
    digest = local_docker.pushed_digest(lines)
    if not digest:
        raise PermanentBuildError("docker push reported no digest")
    return digest
