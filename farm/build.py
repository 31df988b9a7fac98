"""The producer's flow for `farm build`: plan -> status check -> enqueue -> wait.

Data moves forward: the project config gives versions, versions give image refs, refs are checked
against the registry, the missing ones become jobs on the platform queues, and the jobs' records
and log streams give the results.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from celery import Celery

from farm.broker import TASK_BUILD_PLATFORM, queue_for
from farm.errors import ConfigError, UsageError
from farm.garden import BuildAction, Project
from farm.images import ImageOutputs, build_args, image_outputs
from farm.jobs import BuildRequest, BuildResult, JobStore
from farm.registry import RegistryClient, load_credentials, parse_reference
from farm.settings import Settings
from farm.version import BuildVersion

DEFAULT_PLATFORM = "linux/amd64"


@dataclass
class PlannedBuild:
    action: BuildAction
    version: BuildVersion
    outputs: ImageOutputs
    platforms: list[str]
    insecure: bool
    depends_on: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.action.name


def plan(project: Project, versions: dict[str, BuildVersion], names: Sequence[str],
         platforms: Sequence[str] = ()) -> list[list[PlannedBuild]]:
    """The builds to consider, with their dependencies, in waves: a wave needs only earlier waves."""
    unknown = [n for n in names if n not in project.builds]
    if unknown:
        known = ", ".join(sorted(project.builds)) or "none"
        raise UsageError(f"no Build named {', '.join(unknown)} in {project.root} (Builds: {known})")
    provider = project.provider
    registry = provider.deployment_registry if provider else None
    if registry is None:
        raise ConfigError("the kubernetes provider needs a deploymentRegistry for the farm to push to",
                          file=str(project.root / "project.garden.yml"), field="providers[kubernetes].deploymentRegistry")
    selected = _with_dependencies(project, list(names) or sorted(project.builds))
    by_name = {
        name: PlannedBuild(
            action=project.builds[name],
            version=versions[name],
            outputs=image_outputs(project.builds[name], provider, versions[name].version_string),
            platforms=list(platforms) or list(project.builds[name].spec.platforms) or [DEFAULT_PLATFORM],
            insecure=bool(registry.insecure),
            depends_on=[d for d in project.builds[name].dependencies if d in project.builds],
        )
        for name in selected
    }
    waves: list[list[PlannedBuild]] = []
    done: set[str] = set()
    while len(done) < len(by_name):
        wave = [b for n, b in sorted(by_name.items()) if n not in done and set(b.depends_on) <= done]
        if not wave:
            cycle = sorted(set(by_name) - done)
            raise ConfigError(f"dependency cycle between Builds {', '.join(cycle)}")
        waves.append(wave)
        done.update(b.name for b in wave)
    return waves


def _with_dependencies(project: Project, names: list[str]) -> list[str]:
    seen: list[str] = []
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in seen or name not in project.builds:
            continue
        seen.append(name)
        stack.extend(project.builds[name].dependencies)
    return seen


def platform_image(build: PlannedBuild, platform: str) -> str:
    """The ref a platform's task pushes: the version tag itself for a single-platform build."""
    return build.outputs.deployment_image_id


def check_status(build: PlannedBuild, settings: Settings) -> str | None:
    """The digest under the Build's tag when the registry has it (the build is done), else None."""
    ref = parse_reference(build.outputs.deployment_image_id)
    creds = load_credentials(settings.docker_config, ref.host)
    with RegistryClient(ref.host, creds, insecure=build.insecure, timeout=settings.registry_timeout) as client:
        info = client.head_manifest(ref.repository, ref.ref)
    return info.digest if info else None


def requests_for(project: Project, build: PlannedBuild) -> list[BuildRequest]:
    spec = build.action.spec
    return [
        BuildRequest(
            job_id=uuid.uuid4().hex,
            project=project.name,
            build=build.name,
            version=build.version.version_string,
            platform=platform,
            mode=project.provider.build_mode if project.provider else "local-docker",
            image=platform_image(build, platform),
            insecure=build.insecure,
            context_dir=str(build.action.source_dir),
            dockerfile=spec.dockerfile,
            build_args=build_args(build.action, build.version.version_string),
            target=spec.target_stage,
            extra_flags=list(spec.extra_flags or []),
            timeout=build.action.timeout,
        )
        for platform in build.platforms
    ]


def enqueue(app: Celery, jobs: JobStore, req: BuildRequest) -> None:
    """Record the job as queued, then send the task by name to its platform's queue."""
    jobs.update(req.job_id, status="queued", build=req.build, version=req.version, platform=req.platform,
                image=req.image, queued_at=time.time())
    app.send_task(TASK_BUILD_PLATFORM, args=[req.model_dump(mode="json")], task_id=req.job_id,
                  queue=queue_for(req.platform))


def wait(app: Celery, jobs: JobStore, requests: Sequence[BuildRequest],
         on_line: Callable[[BuildRequest, str], None], poll_s: float = 1.0) -> dict[str, BuildResult]:
    """Follow the jobs' logs until each is built or failed; results by job id."""
    by_id = {r.job_id: r for r in requests}
    pending = set(by_id)
    cursors: dict[str, str] = {}
    results: dict[str, BuildResult] = {}
    while pending:
        for job_id, line in jobs.follow(sorted(pending), cursors, block_ms=int(poll_s * 1000)):
            on_line(by_id[job_id], line)
        for job_id in sorted(pending):
            result = _finished(app, jobs, by_id[job_id])
            if result is not None:
                # Drain what the worker wrote before it finished.
                for jid, line in jobs.follow([job_id], cursors, block_ms=1):
                    on_line(by_id[jid], line)
                results[job_id] = result
                pending.discard(job_id)
    return results


def _finished(app: Celery, jobs: JobStore, req: BuildRequest) -> BuildResult | None:
    record = jobs.get(req.job_id)
    status = record.get("status")
    if status not in ("built", "failed"):
        # A task that died before it could write its record still fails in the result backend.
        task = app.AsyncResult(req.job_id)
        if task.state != "FAILURE":
            return None
        status, record = "failed", {**record, "error": record.get("error") or str(task.result)}
    return BuildResult(
        build=req.build, version=req.version, image=req.image, platform=req.platform,
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
