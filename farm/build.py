"""The producer's flow for `farm build`: status check -> upload -> claim and admit -> follow.

Data moves forward: the plan gives image refs, refs are checked against the registry (a hit is
recorded `cached` for the job history), the missing ones are claimed (single flight: a ref already
being built is followed, not built again) and the new ones wait in the waiting room of their queue
(build mode and platform) and namespace, with their priority, until admission sends them
(`farm.admission`); the jobs' records and log streams give the results. A job no live worker can run
is reported as waiting, with the reason. `--supersede` cancels older unfinished jobs of the same
Build on the same branch.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from farm import keys
from farm.broker import MERGE_QUEUE, check_broker, producer_app, queue_for, redis_client
from farm.errors import BrokerError, UsageError
from farm.jobs import Admission, BuildRequest, BuildResult, Job, JobStore, MergeRequest, PullSecretRef, cached_record
from farm.plan import Plan, PlannedBuild
from farm.settings import Settings
from farm.status import Clients, Status, check_status

if TYPE_CHECKING:
    # Imported where they are used: a run the registry status check answers (a cached answer) needs
    # neither the context store, the pre-build access check, admission nor celery.
    from celery import Celery

    from farm import fleet
    from farm.context import UploadStats
    from farm.garden import Project

SECRETS_TTL = 24 * 3600      # build secrets wait at most this long for their worker
WAITING_AFTER_S = 2.0        # a job still queued this long is checked against the live workers
CONNECT_WAIT_S = 20.0        # how long the first connection waits for a Redis that refuses (a restart)


def upload(project: Project, build: PlannedBuild, settings: Settings,
           on_progress: Callable[[int, int], None] | None = None) -> UploadStats:
    """Send the Build's context (the files of its version) to the store: only the blobs it lacks."""
    from farm.context import HashIndex, build_manifest, open_store, upload_context

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
    several platforms the merge step, sent when the last of them is pushed."""
    # One job per platform, or one job for them all (its key is the first platform: its queue).
    groups = {p: [p] for p in build.platforms if p not in skip} if build.fan_out else \
        {build.platforms[0]: list(build.platforms)}
    index = build.outputs.deployment_image_id if build.fan_out else None
    merge = None
    if build.fan_out:
        merge = MergeRequest(
            job_id=uuid.uuid4().hex, project=project.name, build=build.name, version=build.version.version_string,
            image=build.outputs.deployment_image_id, insecure=build.insecure, platform_images=build.platform_images)
    spec = build.action.spec
    provider = build.provider
    requests = [
        BuildRequest(
            job_id=uuid.uuid4().hex,
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
            index=index,
            cache=list(build.cache),
            secret_ids=sorted(spec.secrets),
            pull_secrets=[PullSecretRef(name=s.name, namespace=s.namespace) for s in provider.image_pull_secrets]
            if provider else [],
            kube_context=provider.context if provider else None,
            kaniko=build.kaniko,
            buildkit=build.buildkit,
            steps=_steps(build),
        )
        for platform in groups
    ]
    return requests, merge


def _steps(build: PlannedBuild) -> list[str]:
    from farm import dockerfile

    try:
        text = (build.action.source_dir / (build.action.spec.dockerfile or "Dockerfile")).read_text()
    except (OSError, UnicodeDecodeError):
        return []             # the build itself reports a missing Dockerfile
    return dockerfile.steps(text)


@dataclass(frozen=True)
class Submission:
    """Who submits, and how the farm schedules it; recorded on every job it claims (the history)."""

    namespace: str = ""             # the team's share (default: the Build's registry namespace)
    priority: str = "normal"
    branch: str = ""
    commit: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    submitter: str = ""
    supersede: bool = False
    force: bool = False             # build again even what was just built (--force)

    def fields(self) -> dict[str, str]:
        return {"namespace": self.namespace, "priority": self.priority, "branch": self.branch,
                "commit": self.commit, "labels": json.dumps(dict(self.labels), sort_keys=True),
                "submitter": self.submitter}


def submitter() -> str:
    """`user@host` of this process, for the history."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"{user}@{socket.gethostname()}"


def namespace_of(project: Project, build: PlannedBuild) -> str:
    """The namespace a Build's jobs count against: its registry namespace (the team's), else the
    provider's Kubernetes namespace, else the project name."""
    provider = build.provider
    registry = provider.deployment_registry if provider else None
    if registry and registry.namespace:
        return registry.namespace
    if provider and provider.namespace:
        return provider.namespace.name
    return project.name


@dataclass(frozen=True)
class Followed:
    """A job this submitter follows: its own, or another submitter's building the same ref."""

    job: Job
    job_id: str
    shared: bool
    queue: str

    @property
    def platform(self) -> str:
        return self.job.platform if isinstance(self.job, BuildRequest) else "index"


def submit(app: Celery, jobs: JobStore, requests: Sequence[BuildRequest], merge: MergeRequest | None,
           skipped: Collection[str] = (), secrets: dict[str, str] | None = None,
           who: Submission | None = None, sealing_key: str = "") -> list[Followed]:
    """Claim each ref; a new claim waits in its queue's waiting room and admission sends what there is
    room for; a ref already being built is followed instead (single flight). The merge goes when the
    last of its platforms is pushed (`skipped`: platforms the registry already had count as pushed)."""
    from farm import admission, sealing

    who = who or Submission()
    out: list[Followed] = []
    now = time.time()
    recorded: dict[str, str | float | None] = {**who.fields(), "queued_at": now}
    for req in requests:
        queue = queue_for(req.mode, req.platform)
        # Secrets first: a job is dispatched (by anyone) as soon as it is claimed. Sealed for the
        # workers: Redis (and its AOF and RDB files) never holds a value in plaintext.
        if secrets:
            from farm import sealing

            jobs.put_secrets(req.job_id, {"sealed": sealing.seal(sealing_key or _sealing_key(jobs), secrets,
                                                                 req.job_id)}, SECRETS_TTL)
        job_id, new = jobs.claim(
            req.image, req.job_id, admit=Admission(queue, who.namespace or req.project, who.priority), force=who.force,
            branch_key=keys.branch(req.project, req.build, who.branch) if who.branch else "",
            build=req.build, version=req.version, platform=req.platform, image=req.image, project=req.project,
            mode=req.mode, index=req.index, request=req.model_dump_json(), **recorded)
        if not new:
            jobs.drop_secrets(req.job_id)
        out.append(Followed(req, job_id, not new, queue))
    if merge is not None:
        def claim_merge(force: bool) -> tuple[str, bool]:
            return jobs.claim(
                merge.image, merge.job_id, admit=None, force=force,
                branch_key=keys.branch(merge.project, merge.build, who.branch) if who.branch else "",
                build=merge.build, version=merge.version, platform="index", image=merge.image,
                project=merge.project, queue=MERGE_QUEUE, platforms=",".join(merge.platform_images),
                request=merge.model_dump_json(), **recorded)

        job_id, new = claim_merge(who.force)
        shared = jobs.get(job_id) if not new else {}
        if shared.get("status") in keys.ENDED and shared.get("platforms") != ",".join(merge.platform_images):
            # The ref was just built for other platforms (say, one platform alone, under the same
            # tag): its result is not this index, so this merge is a job of its own.
            job_id, new = claim_merge(True)
        if new and jobs.fanin(merge.image, skipped) == merge.job_id:
            admission.send_merge(app, merge, MERGE_QUEUE)
        out.append(Followed(merge, job_id, not new, MERGE_QUEUE))
    admission.dispatch(app, jobs)
    return out


def _sealing_key(jobs: JobStore) -> str:
    key = jobs.sealing_key()
    if not key:
        raise BrokerError("build secrets are sealed for the workers, but no worker has announced the farm's "
                          "sealing key yet and FARM_SEALING_PUBLIC_KEY is not set: start a worker (farm worker)")
    return key


def supersede(jobs: JobStore, project: str, build: str, who: Submission, followed: Sequence[Followed] = ()
              ) -> list[str]:
    """Cancel the unfinished jobs of a Build on the submission's branch submitted before this one (a
    newer commit made them moot: also when its own image was already in the registry); the ids
    cancelled. Jobs this submission follows are kept."""
    keep = {f.job_id for f in followed}
    mine = [jobs.get(f.job_id) for f in followed if not f.shared]
    before = min((float(r.get("queued_at") or time.time()) for r in mine), default=time.time())
    why = f"superseded by a newer build of {build} on {who.branch}" + (
        f" (commit {who.commit[:12]})" if who.commit else "")
    out: list[str] = []
    for job_id in jobs.unfinished_before(keys.branch(project, build, who.branch), before):
        for member in jobs.group(job_id):
            if member not in keep and member not in out and jobs.cancel(member, why, "superseded")[0] in (
                    "cancelled", "requested"):
                out.append(member)
    return out


FINISHED = ("built", "failed", "cancelled")


def wait_for(app: Celery, jobs: JobStore, followed: Sequence[Followed], on_line: Callable[[Job, str], None],
             say: Callable[[str], None] = lambda _: None, deadline: float | None = None,
             poll_s: float = 1.0) -> dict[str, BuildResult]:
    """Follow the jobs' logs until each has ended (or `deadline`, a time.monotonic() value, passes);
    results by job id. Tells once, per job, when it waits for a worker that is not there, starts,
    or runs again after its worker was lost."""
    from farm import fleet

    by_id = {f.job_id: f for f in followed}
    pending = set(by_id)
    cursors: dict[str, str] = {}
    results: dict[str, BuildResult] = {}
    told: dict[str, set[str]] = {j: set() for j in by_id}
    last_check = 0.0
    while pending:
        for job_id, line in jobs.follow(sorted(pending), cursors, block_ms=int(poll_s * 1000)):
            on_line(by_id[job_id].job, line)
        check_workers = time.monotonic() - last_check > 5
        workers = jobs.call(lambda: fleet.live(jobs.redis)) if check_workers else None
        last_check = time.monotonic() if check_workers else last_check
        for job_id in sorted(pending):
            f = by_id[job_id]
            record = jobs.get(job_id)
            _tell(f, record, workers, told[job_id], jobs, say)
            result = _finished(app, jobs, f, record, results)
            if result is None and deadline is not None and time.monotonic() > deadline:
                result = _gave_up(f, record)
            if result is not None:
                # Drain what the worker wrote before it finished.
                for jid, line in jobs.follow([job_id], cursors, block_ms=1):
                    on_line(by_id[jid].job, line)
                results[job_id] = result
                pending.discard(job_id)
    return results


def _tell(f: Followed, record: dict[str, str], workers: list[fleet.WorkerInfo] | None, told: set[str],
          jobs: JobStore, say: Callable[[str], None]) -> None:
    from farm import fleet

    what = f"{f.job.build}: {f.platform}"
    status = record.get("status")
    if status == "queued" and workers is not None and f.platform != "index":
        queued_for = time.time() - float(record.get("queued_at") or time.time())
        reason = (fleet.why_waiting(f.queue, workers) or record.get("refused") or None) \
            if queued_for > WAITING_AFTER_S else None
        if reason and reason != record.get("waiting"):
            jobs.update(f.job_id, waiting=reason)
            say(f"{what} is waiting: {reason}")
        elif reason is None and record.get("waiting"):
            jobs.update(f.job_id, waiting="")
    attempt = record.get("attempts", "")
    if status == "started" and f"started {attempt}" not in told:
        told.add(f"started {attempt}")
        if record.get("lost") and f"lost {attempt}" not in told:
            told.add(f"lost {attempt}")
            say(f"{what}: {record['lost']}; running again (attempt {attempt})")
        say(f"{what} started on {record.get('worker', '?')} (attempt {attempt})")


def _gave_up(f: Followed, record: dict[str, str]) -> BuildResult:
    status = record.get("status", "queued")
    why = f" ({record['waiting']})" if record.get("waiting") else ""
    return BuildResult(build=f.job.build, version=f.job.version, image=f.job.image, job_id=f.job_id,
                       platform=None if isinstance(f.job, MergeRequest) else f.job.platform,
                       kind="index" if isinstance(f.job, MergeRequest) else "platform", shared=f.shared,
                       status="failed", error=f"gave up waiting: the job is still {status}{why}; it goes on "
                                              f"(farm status {f.job_id})")


def _finished(app: Celery, jobs: JobStore, f: Followed, record: dict[str, str],
              done: dict[str, BuildResult]) -> BuildResult | None:
    status = record.get("status")
    is_merge = isinstance(f.job, MergeRequest)
    failed = [r.platform for r in done.values() if r.build == f.job.build and r.kind == "platform"
              and r.status == "failed"]
    if is_merge and status not in FINISHED and failed:
        # A failed platform never completes the fan-in (its worker ends the merge too; this covers
        # a worker that died before it could).
        error = f"{', '.join(map(str, failed))} failed; the tag was not pushed"
        jobs.end_unowned(f.job_id, f.job.image, status="failed", error=error, finished_at=time.time())
        record = jobs.get(f.job_id)
        status = record.get("status")
    if status not in FINISHED:
        if status not in (None, "", "queued"):
            return None
        # A task that died before it could write its record still fails in the result backend.
        task = app.AsyncResult(f.job_id)
        if jobs.call(lambda: task.state) != "FAILURE":
            return None
        status, record = "failed", {**record, "error": record.get("error") or str(task.result)}
    return BuildResult(
        build=f.job.build, version=f.job.version, image=f.job.image,
        platform=None if is_merge else f.job.platform, kind="index" if is_merge else "platform",  # type: ignore[union-attr]
        digest=record.get("digest") or None if status == "built" else None, status=status,  # type: ignore[arg-type]
        error=record.get("error") or None if status != "built" else None,
        log_tail=jobs.tail(f.job_id) if status == "failed" else [],
        job_id=f.job_id, shared=f.shared, attempts=int(record.get("attempts") or 0), timings=_timings(record),
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
    """The queue, reached only once something must be enqueued: a run where every Build is cached
    needs no Celery (only Redis, for the `cached` record, and a run goes on without it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: JobStore | None = None
        self._app: Celery | None = None

    def store(self) -> JobStore:
        if self._store is None:
            client = redis_client(self.settings)
            # A Redis restart of a few seconds is waited out here too; a broker that stays away fails
            # with check_broker's one line.
            deadline = time.monotonic() + CONNECT_WAIT_S
            while True:
                try:
                    check_broker(client, self.settings.broker_url)
                    break
                except BrokerError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1.0)
            self._store = JobStore(client, ttl=self.settings.history_ttl)
        return self._store

    def connect(self) -> tuple[Celery, JobStore]:
        store = self.store()
        if self._app is None:
            self._app = producer_app(self.settings)
        return self._app, store


@dataclass
class Outcome:
    results: dict[str, list[BuildResult]] = field(default_factory=dict)
    contexts: dict[str, dict[str, int | str]] = field(default_factory=dict)   # per Build, for --json
    queued: list[dict[str, str]] = field(default_factory=list)                # jobs followed, for --no-wait


def _record_cached(broker: Broker, project: Project, b: PlannedBuild, who: Submission, digest: str,
                   say: Callable[[str], None]) -> None:
    """The history's `cached` record of a Build the status check answered (best effort: a cached
    answer does not need the farm). Sent with one socket write when the broker URL allows it
    (`farm.resp`: redis-py's import would be a quarter of a cached answer), else through redis-py."""
    from farm import resp

    job_id = uuid.uuid4().hex
    fields: dict[str, str | float | None] = {
        "build": b.name, "version": b.version.version_string, "project": project.name,
        "platform": ",".join(b.platforms), "image": b.outputs.deployment_image_id, "digest": digest, "mode": b.mode,
        **who.fields(), "namespace": who.namespace or namespace_of(project, b)}
    if broker._store is None:
        script, keys_, args = cached_record(job_id, broker.settings.history_ttl, **fields)
        try:
            if resp.eval_script(broker.settings.broker_url, script, keys_, [str(a) for a in args])[0]:
                return
        except (OSError, resp.RespError):
            pass  # redis-py below waits out a restart, or says why not
    try:
        broker.store().record_cached(job_id, **fields)
    except BrokerError as exc:
        say(f"{b.name}: not recorded in the job history: {exc}")


def run(plan: Plan, settings: Settings, *, force: bool, wait: bool,
        say: Callable[[str], None], progress: Callable[[str], Callable[[int, int], None]],
        on_line: Callable[[Job, str], None], timeout: float | None = None,
        who: Submission | None = None) -> Outcome:
    """Check, upload, claim and admit, and (with `wait`) follow every planned Build, wave after wave.

    A Build whose dependency failed fails without being sent; without `wait`, dependent waves
    cannot be ordered, so that is a usage error. `force` builds even what the registry has, unless
    that ref is being built right now (then it is followed). `timeout` bounds the whole wait. `who`:
    the submission's namespace (default: each Build's), priority, branch, commit and labels.
    The status checks of all Builds share one registry client per host (one connection, one challenge).
    """
    with Clients(settings) as clients:
        return _run(plan, settings, clients, force=force, wait=wait, say=say, progress=progress,
                    on_line=on_line, timeout=timeout, who=who)


def _run(plan: Plan, settings: Settings, clients: Clients, *, force: bool, wait: bool,
         say: Callable[[str], None], progress: Callable[[str], Callable[[int, int], None]],
         on_line: Callable[[Job, str], None], timeout: float | None, who: Submission | None) -> Outcome:
    project, waves = plan.project, plan.waves
    who = who or Submission(priority=settings.priority_for(project.name), commit=project.git.commit_hash,
                            branch=project.git.branch if project.git.branch != "HEAD" else "", submitter=submitter())
    who = replace(who, force=force)
    deadline = None if timeout is None else time.monotonic() + timeout
    broker = Broker(settings)
    out = Outcome()
    failed: set[str] = set()
    for index, wave in enumerate(waves):
        waiting: list[Followed] = []
        for b in wave:
            blocked = [d for d in b.depends_on if d in failed]
            if blocked:
                failed.add(b.name)
                out.results[b.name] = [BuildResult(build=b.name, version=b.version.version_string,
                                                   image=b.outputs.deployment_image_id, status="failed",
                                                   error=f"dependency {', '.join(blocked)} failed")]
                continue
            t0 = time.monotonic()
            status = Status(digest=None) if force else check_status(b, settings, clients)
            if status.digest:
                say(f"{b.name}: {b.outputs.deployment_image_id} is already built (registry status check)")
                _record_cached(broker, project, b, who, status.digest, say)
                if who.supersede and who.branch:
                    for job_id in supersede(broker.store(), project.name, b.name, who):
                        say(f"{b.name}: cancelling job {job_id} (superseded on branch {who.branch})")
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
            # Before anything is sent: can the farm pull the bases and push the image and caches?
            # (Creates missing ECR repositories; a read-only account stops here, not after a build.)
            from farm import preflight

            preflight.require_access(Plan(project, [[b]]), settings)
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
            mine = replace(who, namespace=who.namespace or namespace_of(project, b))
            sent = submit(app, jobs, requests, merge, skipped=status.platforms, secrets=dict(b.action.spec.secrets),
                          who=mine, sealing_key=settings.sealing_public_key)
            for f in sent:
                verb = "following" if f.shared else "queued"
                say(f"{b.name}: {verb} {f.platform} as job {f.job_id}"
                    + (" (already being built: single flight)" if f.shared
                       else f" on {f.queue} ({mine.namespace}, priority {mine.priority})"))
            if who.supersede and who.branch:
                for job_id in supersede(jobs, project.name, b.name, mine, sent):
                    say(f"{b.name}: cancelling job {job_id} (superseded on branch {who.branch})")
            for p in status.platforms:
                say(f"{b.name}: {p} is already in the registry ({b.platform_image(p)})")
            waiting += sent
            out.queued += [{"build": b.name, "platform": f.platform, "job_id": f.job_id,
                            "shared": str(f.shared).lower()} for f in sent]
        if not wait or not waiting:
            continue
        app, jobs = broker.connect()
        for res in wait_for(app, jobs, waiting, on_line, say, deadline).values():
            out.results.setdefault(res.build, []).append(res)
            if res.status in ("failed", "cancelled"):
                failed.add(res.build)
    return out
