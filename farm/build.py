"""The producer's flow for `farm build`: plan -> status check -> enqueue -> wait.

Data moves forward: the project config gives versions, versions give image refs, refs are checked
against the registry, the missing ones become jobs on the platform queues, and the jobs' records
and log streams give the results.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from farm.broker import (MERGE_QUEUE, TASK_BUILD_PLATFORM, TASK_MERGE_INDEX, check_broker, producer_app,
                         queue_for, redis_client)
from farm.context import HashIndex, UploadStats, build_manifest, open_store, upload_context
from farm.errors import UsageError
from farm.garden import Project
from farm.jobs import BuildRequest, BuildResult, JobStore, MergeRequest
from farm.plan import Plan, PlannedBuild
from farm.settings import Settings
from farm.status import Status, check_status

if TYPE_CHECKING:  # celery is imported only once something is enqueued
    from celery import Celery

def upload(project: Project, build: PlannedBuild, settings: Settings,
           on_progress: Callable[[int, int], None] | None = None) -> UploadStats:
    """Send the Build's context (the files of its version) to the store: only the blobs it lacks."""
    root = build.action.source_dir
    # Hashes of unchanged files are reused between runs, kept where Garden keeps its own state.
    index = HashIndex(project.root / ".garden" / "farm" / f"context-index-{build.name}.json")
    manifest = build_manifest(root, build.version.files, index=index)
    stats = upload_context(open_store(settings.context_store_url), root, manifest, on_progress, index=index)
    index.save()
    return stats


def jobs_for(project: Project, build: PlannedBuild, context: UploadStats, settings: Settings,
             skip: Collection[str] = ()) -> tuple[list[BuildRequest], MergeRequest | None]:
    """One request per platform still to build (`skip`: platforms the registry already has), and for
    several platforms the merge step, which each request carries so the last one can send it."""
    # One job per platform, or one job for them all (its key is the first platform: its queue).
    groups = {p: [p] for p in build.platforms if p not in skip} if build.fan_out else \
        {build.platforms[0]: list(build.platforms)}
    job_ids = {p: uuid.uuid4().hex for p in groups}
    merge = None
    if build.fan_out:
        merge = MergeRequest(
            job_id=uuid.uuid4().hex, project=project.name, build=build.name, version=build.version.version_string,
            image=build.outputs.deployment_image_id, insecure=build.insecure,
            platform_images=build.platform_images,
            needs=list(job_ids.values()),
        )
    spec = build.action.spec
    requests = [
        BuildRequest(
            job_id=job_ids[platform],
            project=project.name,
            build=build.name,
            version=build.version.version_string,
            platform=platform,
            platforms=groups[platform],
            mode=build.mode,
            image=build.platform_image(platform),
            insecure=build.insecure,
            context=context.digest,
            context_store=settings.context_store_url,
            dockerfile=spec.dockerfile,
            build_args=dict(build.build_args),
            target=spec.target_stage,
            extra_flags=list(spec.extra_flags or []),
            timeout=build.action.timeout,
            merge=merge,
            cache=list(build.cache),
            secret_ids=sorted(spec.secrets),
        )
        for platform in groups
    ]
    return requests, merge


def enqueue(app: Celery, jobs: JobStore, requests: Sequence[BuildRequest], merge: MergeRequest | None = None,
            secrets: dict[str, str] | None = None, secrets_ttl: int = 7200) -> None:
    """Record each job as queued, then send the tasks by name, each platform to its own queue.

    The fan-in of several platforms is a set in Redis: the platform job that completes it sends
    the merge (JobStore.platform_done). With no platform left to build, the merge goes now.
    """
    if merge is not None:
        jobs.update(merge.job_id, status="queued", build=merge.build, version=merge.version, platform="index",
                    image=merge.image, queued_at=time.time())
    for req in requests:
        jobs.update(req.job_id, status="queued", build=req.build, version=req.version, platform=req.platform,
                    image=req.image, queued_at=time.time())
        jobs.put_secrets(req.job_id, secrets or {}, secrets_ttl)
        app.send_task(TASK_BUILD_PLATFORM, args=[req.model_dump(mode="json")], task_id=req.job_id,
                      queue=queue_for(req.platform))
    if merge is not None and not requests:
        app.send_task(TASK_MERGE_INDEX, args=[merge.model_dump(mode="json")], task_id=merge.job_id,
                      queue=MERGE_QUEUE)


Job = BuildRequest | MergeRequest


def wait_for(app: Celery, jobs: JobStore, requests: Sequence[Job],
             on_line: Callable[[Job, str], None], poll_s: float = 1.0) -> dict[str, BuildResult]:
    """Follow the jobs' logs until each is built or failed; results by job id."""
    by_id = {r.job_id: r for r in requests}
    pending = set(by_id)
    cursors: dict[str, str] = {}
    results: dict[str, BuildResult] = {}
    while pending:
        for job_id, line in jobs.follow(sorted(pending), cursors, block_ms=int(poll_s * 1000)):
            on_line(by_id[job_id], line)
        for job_id in sorted(pending):
            result = _finished(app, jobs, by_id[job_id], results)
            if result is not None:
                # Drain what the worker wrote before it finished.
                for jid, line in jobs.follow([job_id], cursors, block_ms=1):
                    on_line(by_id[jid], line)
                results[job_id] = result
                pending.discard(job_id)
    return results


def _finished(app: Celery, jobs: JobStore, req: Job, done: dict[str, BuildResult]) -> BuildResult | None:
    record = jobs.get(req.job_id)
    status = record.get("status")
    is_merge = isinstance(req, MergeRequest)
    failed_needs = [done[j].platform for j in getattr(req, "needs", []) if j in done and done[j].status == "failed"]
    if is_merge and status not in ("built", "failed") and failed_needs:
        # A failed platform never completes the fan-in, so the merge is never sent: no tag.
        status = "failed"
        record = {**record, "error": f"{', '.join(map(str, failed_needs))} failed; the tag was not pushed"}
        jobs.update(req.job_id, status="failed", error=record["error"], finished_at=time.time())
    elif status not in ("built", "failed"):
        # A task that died before it could write its record still fails in the result backend.
        task = app.AsyncResult(req.job_id)
        if task.state != "FAILURE":
            return None
        status, record = "failed", {**record, "error": record.get("error") or str(task.result)}
    return BuildResult(
        build=req.build, version=req.version, image=req.image,
        platform=None if is_merge else req.platform, kind="index" if is_merge else "platform",  # type: ignore[union-attr]
        digest=record.get("digest") or None, status=status,  # type: ignore[arg-type]
        error=record.get("error") or None,
        log_tail=jobs.tail(req.job_id) if status == "failed" else [],
        job_id=req.job_id, timings=_timings(record),
    )


def _timings(record: dict[str, str]) -> dict[str, float]:
    def t(key: str) -> float | None:
        return float(record[key]) if record.get(key) else None

    queued, started, finished = t("queued_at"), t("started_at"), t("finished_at")
    out: dict[str, float] = {}
    if queued and started:
        out["queue_s"] = round(started - queued, 3)
    if started and finished:
        out["build_s"] = round(finished - started, 3)
    if queued and finished:
        out["total_s"] = round(finished - queued, 3)
    return out


class Broker:
    """The queue, reached only once something must be enqueued: a run where every Build is cached needs none."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._conn: tuple[Celery, JobStore] | None = None

    def connect(self) -> tuple[Celery, JobStore]:
        if self._conn is None:
            client = redis_client(self.settings)
            check_broker(client, self.settings.broker_url)
            self._conn = (producer_app(self.settings), JobStore(client))
        return self._conn


@dataclass
class Outcome:
    results: dict[str, list[BuildResult]] = field(default_factory=dict)
    contexts: dict[str, dict[str, int | str]] = field(default_factory=dict)   # per Build, for --json
    queued: list[dict[str, str]] = field(default_factory=list)                # jobs sent, for --no-wait


def run(plan: Plan, settings: Settings, *, force: bool, wait: bool,
        say: Callable[[str], None], progress: Callable[[str], Callable[[int, int], None]],
        on_line: Callable[[Job, str], None]) -> Outcome:
    """Check, upload, enqueue and (with `wait`) follow every planned Build, wave after wave.

    A Build whose dependency failed fails without being sent; without `wait`, dependent waves
    cannot be ordered, so that is a usage error.
    """
    project, waves = plan.project, plan.waves
    broker = Broker(settings)
    out = Outcome()
    failed: set[str] = set()
    for index, wave in enumerate(waves):
        waiting: list[Job] = []
        for b in wave:
            blocked = [d for d in b.depends_on if d in failed]
            if blocked:
                failed.add(b.name)
                out.results[b.name] = [BuildResult(build=b.name, version=b.version.version_string,
                                                   image=b.outputs.deployment_image_id, status="failed",
                                                   error=f"dependency {', '.join(blocked)} failed")]
                continue
            t0 = time.monotonic()
            status = Status(digest=None) if force else check_status(b, settings)
            if status.digest:
                say(f"{b.name}: {b.outputs.deployment_image_id} is already built (registry status check)")
                out.results[b.name] = [BuildResult(build=b.name, version=b.version.version_string,
                                                   image=b.outputs.deployment_image_id, digest=status.digest,
                                                   status="cached", timings={"check_s": round(time.monotonic() - t0, 3)})]
                continue
            if not wait and index < len(waves) - 1:
                later = sorted({x.name for w in waves[index + 1:] for x in w})
                raise UsageError(f"--no-wait cannot order dependent builds: {', '.join(later)} need "
                                 f"{b.name} built first; run without --no-wait")
            out.results[b.name] = [BuildResult(build=b.name, version=b.version.version_string, platform=p,
                                               image=b.platform_image(p), digest=d, status="cached")
                                   for p, d in status.platforms.items()]
            for link in b.version.skipped_symlinks:
                say(f"{b.name}: warning: symlink {link} points outside the build context; left out")
            context = upload(project, b, settings, progress(b.name))
            say(f"{b.name}: context {context.files} files, {context.bytes} B; sent {context.uploaded_files} "
                f"files, {context.uploaded_bytes} B ({context.skipped_files} already in the store)")
            out.contexts[b.name] = {"digest": context.digest, "files": context.files, "bytes": context.bytes,
                                    "uploaded_files": context.uploaded_files,
                                    "uploaded_bytes": context.uploaded_bytes}
            requests, merge = jobs_for(project, b, context, settings, skip=status.platforms)
            app, jobs = broker.connect()
            enqueue(app, jobs, requests, merge, secrets=dict(b.action.spec.secrets),
                    secrets_ttl=settings.visibility_timeout)
            for req in requests:
                say(f"{req.build}: queued {req.platform} as job {req.job_id} on {req.image}")
            for p in status.platforms:
                say(f"{b.name}: {p} is already in the registry ({b.platform_image(p)})")
            if merge:
                say(f"{b.name}: the index {merge.image} is pushed when all platforms are (job {merge.job_id})")
            sent: list[Job] = [*requests, *([merge] if merge else [])]
            waiting += sent
            out.queued += [{"build": j.build, "platform": getattr(j, "platform", "index"), "job_id": j.job_id}
                           for j in sent]
        if not wait or not waiting:
            continue
        app, jobs = broker.connect()
        for res in wait_for(app, jobs, waiting, on_line).values():
            out.results.setdefault(res.build, []).append(res)
            if res.status == "failed":
                failed.add(res.build)
    return out
