"""Celery tasks, thin: take the job -> materialise the context -> builder jobs -> run them -> record.

Taking a job (`JobStore.start`) is atomic: a redelivered message of a job that ended does nothing,
one whose job another live worker runs comes back later, and a job whose worker was lost (its lease
lapsed) runs again as the next attempt. The lease is renewed while the builder runs (`Lease`).
A failure keeps its class and its chain; the record says whether a retry may pass (`retryable`);
transient failures are retried by Celery's own mechanism with a bounded count and exponential
backoff, permanent ones are not. A cancel (the lease reports it, or it is seen right before each
builder step: the push never starts after a cancel) kills the builder and ends the job `cancelled`,
with the rest of its multi-platform Build. Each job that ends frees a slot: admission runs then.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Task

from farm import admission, keys, sealing
from farm.broker import MERGE_QUEUE, TASK_BUILD_PLATFORM, TASK_MERGE_INDEX, machine_platform, platform_slug, redis_client
from farm.context import BlobCache, Limits, materialise, open_store, update_tree
from farm.errors import BuildStopped, FarmError, PermanentBuildError
from farm.jobs import BuildRequest, JobStore, MergeRequest
from farm.registry import ecr, open_client
from farm.registry.platforms import image_platforms, mismatches
from workers import capabilities, keyring
from workers.app import app, settings
from workers.builder_job import Workspace
from workers.builders import builder_for
from workers.index import push_index
from workers.lease import Lease
from workers.pull_secrets import build_docker_config_dir
from workers.runtimes import container_runtime, runtime_for
from workers.runtimes.kubernetes import buildkit_for

_jobs: JobStore | None = None
_cache: BlobCache | None = None
logger = logging.getLogger(__name__)


def jobs() -> JobStore:
    global _jobs
    if _jobs is None:
        # A worker waits out a Redis restart longer than a CLI does: its build's result is at stake.
        _jobs = JobStore(redis_client(settings), reconnect_s=600, ttl=settings.history_ttl)
    return _jobs


def dispatch() -> None:
    """Admission: send the waiting jobs there is room for now (never fails the caller)."""
    try:
        admission.dispatch(app, jobs())
    except Exception:  # noqa: BLE001 - the presence thread dispatches again within seconds
        logger.warning("farm: dispatch failed", exc_info=True)


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
    _wait_if_foreign(self, req)
    digest = _run(self, req.job_id, req.image, subject, lambda log, stop: _build(req, log, stop),
                  on_end=lambda: jobs().drop_secrets(req.job_id),
                  on_failed=lambda error: _merge_fails(req, error),
                  on_cancelled=lambda why: _cancel_rest(req.job_id, why), shadow=admission.shadow(req))
    if digest and req.index:
        _fan_in(req.index, req.platform)
    return {"job_id": req.job_id, "image": req.image, "digest": digest, "platform": req.platform}


def _wait_if_foreign(task: Task, req: BuildRequest) -> None:
    """A foreign platform this worker cannot really build goes back to its queue, for a worker of that
    platform; the reason is on the job (`farm build` and `farm status` show it). Never a wrong image."""
    why = capabilities.foreign_reason(req.mode, req.platform, machine_platform(), req.steps,
                                      capabilities.emulation(req.platform))
    if why is None or jobs().get(req.job_id).get("status") in keys.ENDED:
        return
    if jobs().get(req.job_id).get("refused") != why:
        jobs().update(req.job_id, refused=why)
        jobs().log(req.job_id, f"farm: {why}")
    raise task.retry(countdown=5, max_retries=None, shadow=admission.shadow(req))


@app.task(bind=True, name=TASK_MERGE_INDEX)
def merge_index(self: Task, request: dict[str, Any]) -> dict[str, Any]:
    """Push the image index of a multi-platform Build once all its platforms are pushed."""
    req = MergeRequest.model_validate(request)
    subject = {"build": req.build, "platform": "index", "job_id": req.job_id, "ref": req.image}
    digest = _run(self, req.job_id, req.image, subject, lambda log, stop: _merge(req, log),
                  on_cancelled=lambda why: _cancel_rest(req.job_id, why), shadow=admission.merge_shadow(req))
    return {"job_id": req.job_id, "image": req.image, "digest": digest}


def _merge(req: MergeRequest, log: Callable[[str], None]) -> str:
    # The index is the Build's final tag: never pushed once a cancel was asked.
    if jobs().cancel_requested(req.job_id):
        raise BuildStopped("cancelled before the index was pushed")
    return push_index(req, settings.docker_config, log)


def _fan_in(index_ref: str, platform: str) -> None:
    """This platform is pushed; the last one of the Build's merge sends it (exactly once)."""
    merge_id = jobs().fanin(index_ref, [platform])
    if merge_id:
        request = jobs().get(merge_id).get("request", "")
        admission.send_merge(app, MergeRequest.model_validate_json(request), MERGE_QUEUE)


def _cancel_rest(job_id: str, why: str) -> None:
    """A cancelled job of a multi-platform Build: its other platform jobs and its merge go too."""
    for other in jobs().group(job_id):
        if other != job_id:
            jobs().cancel(other, why)


def _merge_fails(req: BuildRequest, error: str) -> None:
    """A failed platform means the index is never pushed: end its merge job with the cause."""
    if req.index and (merge_id := jobs().flight_of(req.index)):
        jobs().end_unowned(merge_id, req.index, status="failed", finished_at=time.time(),
                           error=f"{req.platform} failed; the tag was not pushed: {error}")


Work = Callable[[Callable[[str], None], threading.Event], str]


def _run(task: Task, job_id: str, ref: str, subject: dict[str, str], work: Work,
         on_end: Callable[[], None] = lambda: None,
         on_failed: Callable[[str], None] = lambda error: None,
         on_cancelled: Callable[[str], None] = lambda why: None, shadow: str | None = None) -> str | None:
    """Take the job, run its work under a lease, record the end: the digest, or None when there was
    nothing to do here (it ended already or was cancelled, or another worker took it over)."""
    store = jobs()
    owner = uuid.uuid4().hex
    tag = str((task.request.delivery_info or {}).get("delivery_tag") or "")
    start = store.start(job_id, owner, settings.lease, task.request.hostname or "", tag)
    if start.verdict == "ended":
        if start.previous == "cancelled":     # cancelled while nobody ran it: the rest of its Build goes too
            on_cancelled(store.get(job_id).get("error") or "cancelled")
            on_end()
            dispatch()
        return store.get(job_id).get("digest") or None
    if start.verdict == "busy":       # a second delivery while its worker is alive: look again later
        raise task.retry(countdown=settings.lease / 2, max_retries=None, shadow=shadow)
    log = lambda line: store.log(job_id, line)  # noqa: E731
    if start.previous == "started":
        log(f"farm: {store.get(job_id).get('lost', 'the previous worker was lost')}; attempt {start.attempt}")
    if start.attempt > settings.retries + 1:
        record = store.get(job_id)      # the last attempt's end: a lost worker, or a retried failure
        message = f"gave up after {start.attempt - 1} attempts: {record.get('lost') or record.get('error') or ''}"
        _end(store, job_id, owner, ref, "failed", error=message, error_type="LostWorker", retryable=0)
        on_failed(message)
        on_end()
        return None
    lease = Lease(store, job_id, owner, tag, settings.lease)
    try:
        with lease:
            digest = work(log, lease.stop)
    except FarmError as exc:
        if lease.cancelled.is_set() or store.cancel_requested(job_id):
            why = store.get(job_id).get("error") or "cancelled"
            log(f"farm: {why}; the builder was stopped")
            if _end(store, job_id, owner, ref, "cancelled", error=why, retryable=0):
                on_cancelled(why)
                on_end()
            return None
        if isinstance(exc, BuildStopped):
            log("farm: this worker lost the job to another one; its result is discarded")
            return None
        exc.about(**subject)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if exc.retryable and start.attempt <= settings.retries:
            delay = settings.retry_delay(start.attempt)
            if _end(store, job_id, owner, ref, "retrying", error=message, error_type=type(exc).__name__,
                    retryable=1):
                log(f"farm: attempt {start.attempt} failed: {message}; retrying in {delay:.0f} s")
                raise task.retry(exc=exc, countdown=delay, max_retries=None, shadow=shadow) from exc
            return None
        if not _end(store, job_id, owner, ref, "failed", error=message, error_type=type(exc).__name__,
                    retryable=int(exc.retryable)):
            return None
        on_failed(message)
        on_end()
        raise
    except Exception as exc:  # a bug or an outside failure: the record still says what happened
        message = f"internal error in the worker: {exc.__class__.__name__}: {exc}".splitlines()[0]
        if not _end(store, job_id, owner, ref, "failed", error=message, error_type=type(exc).__name__,
                    retryable=0):
            return None
        on_failed(message)
        on_end()
        raise
    if _end(store, job_id, owner, ref, "built", digest=digest):
        on_end()
        return digest
    return None


def _end(store: JobStore, job_id: str, owner: str, ref: str, status: str, **fields: str | int) -> bool:
    """Record how this attempt ended; False (nothing written) when another worker owns the job now."""
    if not store.finish(job_id, owner, ref, status=status, finished_at=time.time(), **fields):
        store.log(job_id, f"farm: this worker's attempt ended ({status}) after another took the job over")
        return False
    detail = str(fields.get("digest") or fields.get("error") or "")
    store.log(job_id, f"farm: {detail}" if detail.startswith(status) else f"farm: {status} {detail}".rstrip())  # also wakes a CLI following the log
    if status in keys.ENDED:
        store.expire_log(job_id)
        dispatch()                      # a slot is free
    return True


@contextmanager
def workspace(req: BuildRequest, log: Callable[[str], None]) -> Iterator[Workspace]:
    """The request's context in a build directory: the directory kept for its Build and platform,
    brought to this context by the difference (`update_tree`), or, while another job of the same Build
    holds that one, a fresh one. A scratch directory (the fresh context, the build's docker config) is
    removed afterwards."""
    builds = settings.worker_root / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    limits = Limits(max_files=settings.context_max_files, max_bytes=settings.context_max_bytes)
    store = open_store(req.context_store)
    t0 = time.monotonic()
    kept = builds / "kept" / _tree_name(req)
    lock = _try_lock(kept)
    scratch = Path(tempfile.mkdtemp(prefix=f"{req.build}-", dir=builds))
    try:
        if lock is not None:
            done = update_tree(store, req.context, kept, blob_cache(), limits)
            context = kept
            how = "whole" if done.whole else f"{done.placed} placed, {done.rehashed} re-hashed, {done.removed} removed"
        else:
            context = materialise(store, req.context, scratch / "context", blob_cache(), limits)
            how = "whole, fresh directory"
        log(f"context {req.context} materialised ({how}; {time.monotonic() - t0:.2f} s)")
        # The build's private docker config goes in the scratch directory: never into a kept tree.
        buildkit_host = settings.buildkit_host
        if req.mode == "cluster-buildkit" and req.buildkit is not None and \
                container_runtime(settings.runtime, settings.kubeconfig, req.buildkit.kube_context) == "kubernetes":
            buildkit_host = buildkit_for(req.buildkit, req.image, settings, log)
        with build_docker_config_dir(req, settings.docker_config, Path(context), scratch) as docker_config:
            yield Workspace(context_dir=str(context), docker_config=docker_config,
                            buildkit_host=buildkit_host, buildctl=settings.buildctl,
                            arg_env=dict(os.environ), kaniko_image=settings.kaniko_image)
    finally:
        if lock is not None:
            os.close(lock)
        shutil.rmtree(scratch, ignore_errors=True)


def _tree_name(req: BuildRequest) -> str:
    """One kept directory per project, Build and platform (their names, made safe as one path part)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{req.project}--{req.build}--{platform_slug(req.platform)}")


def _try_lock(tree: Path) -> int | None:
    """An exclusive lock on a kept tree (released when the fd is closed, also if the worker dies);
    None when another job holds it."""
    tree.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(tree.parent / f"{tree.name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _build(req: BuildRequest, log: Callable[[str], None], stop: threading.Event) -> str:
    builder = builder_for(req.mode)
    values = _open_secrets(req)
    missing = sorted(set(req.secret_ids) - set(values))
    if missing:
        raise PermanentBuildError(f"the values of build secrets {', '.join(missing)} are gone "
                                  "(expired before the build ran?); submit the build again")
    secrets = builder.secret_env(values)
    lines: list[str] = []
    with workspace(req, log) as ws:
        try:
            for job in builder.jobs(req, ws):
                # Looked at right before each step, so a push never starts after a cancel was asked.
                if jobs().cancel_requested(req.job_id):
                    raise BuildStopped(f"cancelled before `{' '.join(job.argv[:2])}`")
                log("$ " + " ".join(job.argv))
                seen: list[str] = []

                def on_line(line: str) -> None:
                    seen.append(line)
                    log(line)
                try:
                    lines += runtime_for(job)(job, secrets, on_line, stop)
                except PermanentBuildError:
                    served = _served_digest(req) if ecr.immutable_refusal(seen) else None
                    if served is None or not ecr.refused_but_same(seen, served):
                        raise
                    log(f"farm: {req.image} is immutable and already holds this build's manifest {served}: done")
                    _check_platforms(req, served, log)
                    return served
        finally:
            _forget(builder, req, ws, log)
    digest = builder.digest(lines) or _pushed_digest(req)
    _check_platforms(req, digest, log)
    return digest


def _forget(builder: object, req: BuildRequest, ws: Workspace, log: Callable[[str], None]) -> None:
    """A builder that keeps a history of its own (buildkitd) drops this build's record: its logs do
    not outlive the job's (best effort; buildkitd's own history limit is the backstop)."""
    forget = getattr(builder, "forget", None)
    job = forget(req, ws) if forget is not None else None
    if job is None:
        return
    try:
        runtime_for(job)(job, {}, None, None)
    except FarmError as exc:
        log(f"farm: the builder's history record was not deleted: {str(exc).splitlines()[0]}")


def _check_platforms(req: BuildRequest, digest: str, log: Callable[[str], None]) -> None:
    """The pushed image is for the platform it was built for (its config's os/architecture/variant),
    else this platform fails, naming both, and is neither recorded nor merged."""
    wanted = req.platforms or [req.platform]
    client, ref = open_client(req.image, settings.docker_config, insecure=req.insecure)
    with client:
        wrong = mismatches(wanted, image_platforms(client, ref.repository, digest))
    if wrong:
        raise PermanentBuildError(f"wrong platform: {'; '.join(wrong)}, not {', '.join(wanted)}; "
                                  "the image is not recorded (a shared cache or a builder that cannot "
                                  "build for that platform)")
    log(f"platform checked: {req.image}@{digest} is {', '.join(wanted)}")


def _open_secrets(req: BuildRequest) -> dict[str, str]:
    """The job's build secrets, unsealed in this process only (Redis holds them sealed)."""
    stored = jobs().secrets(req.job_id)
    if not stored:
        return {}
    if set(stored) != {"sealed"}:
        raise PermanentBuildError("build secrets arrived unsealed; refused (submit with a current farm)")
    try:
        return sealing.unseal(keyring.sealing_key(), stored["sealed"], req.job_id)
    except sealing.SealingError as exc:
        raise PermanentBuildError(str(exc)) from None


def _served_digest(req: BuildRequest) -> str | None:
    """What the registry serves under the pushed tag, if anything."""
    client, ref = open_client(req.image, settings.docker_config, insecure=req.insecure)
    with client:
        info = client.head_manifest(ref.repository, ref.ref)
    return None if info is None else info.digest


def _pushed_digest(req: BuildRequest) -> str:
    digest = _served_digest(req)
    if digest is None:
        raise PermanentBuildError(f"the builder finished but {req.image} is not in the registry")
    return digest
