"""`farm build`: submit a project's Builds to the farm, follow them, print `ref@digest`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from farm.cli._common import env_option, err, json_option, project_option
from farm.errors import UsageError

if TYPE_CHECKING:
    from farm.jobs import BuildResult


@click.command()
@click.argument("names", nargs=-1)
@project_option
@env_option
@click.option("--platform", "platforms", multiple=True, help="Build for this platform (repeatable); overrides spec.platforms.")
@click.option("--force", is_flag=True, help="Build even when the registry already has the image.")
@click.option("--no-wait", is_flag=True, help="Enqueue and return the job ids without waiting.")
@json_option
@click.option("--timeout", type=click.FloatRange(min=1), default=None,
              help="Give up waiting after this many seconds (the jobs go on; exit 1).")
@click.option("--multi-platform", type=click.Choice(["fan-out", "one-call"]), default=None,
              help="Several platforms: a job per platform merged into an index (default), or one "
                   "cluster-buildkit call for all of them ($FARM_MULTI_PLATFORM).")
@click.option("--priority", type=click.Choice(["high", "normal", "low"]), default=None,
              help="Queue priority: high (releases) > normal (main) > low (pull requests). Default: "
                   "the project's in $FARM_PROJECT_PRIORITIES, else $FARM_PRIORITY (normal).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Recorded with the jobs (repeatable), e.g. --label ci_url=$CI_JOB_URL; see `farm jobs`.")
@click.option("--supersede", is_flag=True,
              help="Cancel earlier unfinished builds of the same Builds on this git branch.")
@click.option("--branch", default=None,
              help="The git branch to record and supersede on (default: the checkout's; a CI job on a "
                   "detached HEAD passes its own, e.g. $CI_COMMIT_REF_NAME).")
def build(names: tuple[str, ...], project_dir: Path, env_name: str | None, platforms: tuple[str, ...],
          force: bool, no_wait: bool, as_json: bool, timeout: float | None, multi_platform: str | None,
          priority: str | None, labels: tuple[str, ...], supersede: bool, branch: str | None) -> None:
    """Build the project's container Builds (all, or NAMES) on the farm and push them."""
    from farm import build as flow
    from farm import checks, plan
    from farm.settings import get_settings

    settings = get_settings()
    if problems := settings.time_problems():
        raise UsageError("; ".join(problems))
    pairs = [label.partition("=") for label in labels]
    if bad := [k for k, sep, _ in pairs if not sep or not k.strip()]:
        raise UsageError(f"--label needs KEY=VALUE (got {', '.join(repr(b) for b in bad)})")
    project, versions = plan.load(project_dir, env_name)
    try:
        priority = priority or settings.priority_for(project.name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    branch = branch or (project.git.branch if project.git.branch != "HEAD" else "")
    if supersede and not branch:
        raise UsageError("--supersede needs the git branch of the project (a detached HEAD or no git "
                         "repository: pass --branch)")
    who = flow.Submission(priority=priority, branch=branch, commit=project.git.commit_hash,
                          labels={k.strip(): v for k, _, v in pairs}, submitter=flow.submitter(),
                          supersede=supersede)
    one_call = (multi_platform or settings.multi_platform) == "one-call"
    planned = plan.plan(project, versions, names, platforms, one_call=one_call)
    checks.require(planned, settings)     # the checks `farm config validate` runs: nothing sent yet
    plan.require_buildable(project, one_call)
    outcome = flow.run(planned, settings, force=force, wait=not no_wait, say=err, progress=_progress, timeout=timeout,
                       on_line=lambda job, text: err(f"{job.build}|{getattr(job, 'platform', 'index')}| {text}"),
                       who=who)
    if no_wait:
        out = {"builds": [r.model_dump() for rs in outcome.results.values() for r in rs], "queued": outcome.queued}
        click.echo(json.dumps(out, indent=2) if as_json else "\n".join(q["job_id"] for q in outcome.queued))
        return
    summary = [{**summarise(name, rs), "context": outcome.contexts.get(name)}
               for name, rs in sorted(outcome.results.items())]
    if as_json:
        click.echo(json.dumps({"builds": summary}, indent=2))
    else:
        for s in summary:
            if s["status"] == "failed":
                err(f"{s['name']}: FAILED: {s['error']}")
                for tail in s.get("log_tail", [])[-10:]:
                    err(f"    {tail}")
            elif s["status"] == "cancelled":
                err(f"{s['name']}: CANCELLED: {s['error']}")
            else:
                click.echo(f"{s['image']}@{s['digest']}")
        err(f"Flower: {settings.public_flower_url}")
    if any(s["status"] in ("failed", "cancelled") for s in summary):
        sys.exit(1)


def size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _progress(name: str) -> Callable[[int, int], None]:
    """Context upload progress on stderr, at most every 10% (a line per step keeps CI logs readable)."""
    shown = [-1]

    def report(done: int, total: int) -> None:
        step = 10 * done // total if total else 10
        if total and step != shown[0] and total > 1_000_000:
            shown[0] = step
            err(f"{name}: sending context {size(done)} / {size(total)}")

    return report


def summarise(name: str, results: list[BuildResult]) -> dict[str, Any]:
    """One entry of `--json` per Build, whatever the number of platforms."""
    index = next((r for r in results if r.kind == "index"), None)
    platforms = sorted((r for r in results if r.kind == "platform" and r.platform), key=lambda r: r.platform or "")
    top = index or results[0]
    failed = [r for r in results if r.status in ("failed", "cancelled")]
    cancelled = any(r.status == "cancelled" for r in results)
    status = ("cancelled" if cancelled else "failed") if failed else \
        ("cached" if all(r.status == "cached" for r in results) else "built")
    entry: dict[str, Any] = {
        "name": name, "version": top.version, "image": top.image,
        "digest": top.digest if (index or len(results) == 1) and not failed else None, "status": status,
        "timings": top.timings,
        "platforms": [{"platform": r.platform, "image": r.image, "digest": r.digest, "status": r.status,
                       "job_id": r.job_id, "shared": r.shared, "attempts": r.attempts, "error": r.error,
                       "timings": r.timings} for r in platforms],
    }
    if failed:
        first = next((r for r in failed if r.kind == "platform"), failed[0])
        entry["error"] = "; ".join(f"{r.platform or 'index'}: {r.error}" for r in failed)
        entry["log_tail"] = first.log_tail
    return entry


COMMANDS = [build]
