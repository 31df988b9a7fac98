"""`farm status`, `farm logs`, `farm cancel` and `farm jobs`: follow and stop jobs sent with --no-wait
or by another machine, and read the job history."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING

import click

from farm.cli._common import err, json_option
from farm.errors import UsageError

if TYPE_CHECKING:
    from farm.jobs import JobStore

FINISHED = ("built", "failed", "cancelled", "cached")
STATES = ("queued", "started", "retrying", "built", "failed", "cancelled", "cached")


def _job_store() -> JobStore:
    from farm.broker import check_broker, redis_client
    from farm.jobs import JobStore
    from farm.settings import get_settings

    settings = get_settings()
    client = redis_client(settings)
    check_broker(client, settings.broker_url)
    return JobStore(client, ttl=settings.history_ttl)


def _records(store: JobStore, job_ids: tuple[str, ...]) -> dict[str, dict[str, str]]:
    records = {job_id: store.get(job_id) for job_id in job_ids}
    unknown = [j for j, r in records.items() if not r]
    if unknown:
        raise UsageError(f"no such job: {', '.join(unknown)} (job records are kept {store.ttl / 86400:g} days: "
                         "FARM_HISTORY_DAYS)")
    return records


@click.command()
@click.argument("job_ids", nargs=-1, required=True)
@json_option
def status(job_ids: tuple[str, ...], as_json: bool) -> None:
    """Show the record of build jobs: status, image, digest, error."""
    records = _records(_job_store(), job_ids)
    if as_json:
        click.echo(json.dumps({"jobs": [{"job_id": j, **r} for j, r in records.items()]}, indent=2))
        return
    for job_id, r in records.items():
        click.echo(describe(job_id, r))


def describe(job_id: str, r: dict[str, str], now: float | None = None) -> str:
    """One line: what the job is, its state in words (where, since when, which attempt), its result."""
    now = time.time() if now is None else now

    def ago(key: str) -> str:
        return f"{now - float(r[key]):.0f} s ago" if r.get(key) else "?"

    status = r.get("status", "")
    where = f" ({r['namespace']}, priority {r.get('priority') or 'normal'})" if r.get("namespace") else ""
    queued = f"queued {ago('queued_at')}{where}" + (
        f", sent to {r.get('queue')} {ago('dispatched_at')}" if r.get("dispatched_at") else
        ", in the waiting room" if r.get("wait_key") else "")
    state = {
        # `refused`: a worker that cannot build this foreign platform sent it back, saying why.
        "queued": queued + (f", waiting: {r.get('waiting') or r['refused']}" if r.get("waiting") or r.get("refused")
                            else ""),
        "started": f"running on {r.get('worker', '?')} since {ago('attempt_started_at')}, "
                   f"attempt {r.get('attempts', '1')}" + (", cancel requested" if r.get("cancel_requested_at") else ""),
        "retrying": f"retrying after attempt {r.get('attempts', '?')} failed: {r.get('error', '')}",
        "built": f"built {r.get('image', '')}@{r.get('digest', '')}",
        "failed": f"failed: {r.get('error', '')}",
        "cancelled": f"cancelled: {r.get('error', '')}",
        "cached": f"cached {r.get('image', '')}@{r.get('digest', '')} (registry status check)",
    }.get(status, status)
    lost = f" ({r['lost']}, requeued)" if r.get("lost") and status in ("queued", "started") else ""
    return f"{job_id}  {r.get('build', '')} {r.get('platform', '')}  {state}{lost}"


@click.command()
@click.argument("job_id")
@click.option("--follow", "-f", is_flag=True, help="Keep following until the job ends.")
def logs(job_id: str, follow: bool) -> None:
    """Print a build job's log (its builder's output)."""
    store = _job_store()
    _records(store, (job_id,))
    cursors: dict[str, str] = {}
    while True:
        for _, text in store.follow([job_id], cursors, block_ms=1000 if follow else 1):
            click.echo(text)
        if not follow or store.get(job_id).get("status") in FINISHED:
            # one last drain: lines written just before the record changed
            for _, text in store.follow([job_id], cursors, block_ms=1):
                click.echo(text)
            return


@click.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--timeout", type=click.FloatRange(min=1), default=120, show_default=True,
              help="Seconds to wait for running builds to stop.")
def cancel(job_ids: tuple[str, ...], timeout: float) -> None:
    """Cancel build jobs: queued ones at once, running ones by killing their builder. For a
    multi-platform Build, its platform jobs and index merge go too. Exit 0 once each is cancelled."""
    from farm.build import submitter

    store = _job_store()
    _records(store, job_ids)
    why = f"cancelled by {submitter()} (farm cancel)"
    targets: list[str] = []
    for job_id in job_ids:
        targets += [j for j in store.group(job_id) if j not in targets]
    pending = set()
    for job_id in targets:
        verdict, before = store.cancel(job_id, why)
        record = store.get(job_id)
        what = f"{job_id}  {record.get('build', '')} {record.get('platform', '')}"
        if verdict == "requested":
            err(f"{what}: running on {record.get('worker', '?')}; stopping its builder")
            pending.add(job_id)
        elif verdict == "cancelled":
            err(f"{what}: cancelled (was {before})")
        elif job_id in job_ids:
            err(f"{what}: already {before or 'gone'}; nothing to cancel")
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        time.sleep(0.5)
        for job_id in sorted(pending):
            record = store.get(job_id)
            if record.get("status") in FINISHED:
                pending.discard(job_id)
                err(f"{job_id}  {record.get('build', '')} {record.get('platform', '')}: {record['status']}")
    ended = {j: store.get(j).get("status", "") for j in job_ids}
    for job_id, state in ended.items():
        click.echo(f"{job_id} {state}")
    if any(state != "cancelled" for state in ended.values()):
        still = [j for j, s in ended.items() if s not in FINISHED]
        if still:
            err(f"error: {', '.join(still)} still running after {timeout:.0f} s (the cancel stays asked)")
        sys.exit(1)


@click.command("jobs")
@click.option("--namespace", default=None, help="Only this namespace's jobs.")
@click.option("--build", "build_name", default=None, help="Only jobs of this Build.")
@click.option("--state", type=click.Choice(STATES), default=None, help="Only jobs in this state.")
@click.option("--since", default=None, help="Only jobs submitted in the last DURATION (30m, 1h, 2d).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@json_option
def jobs(namespace: str | None, build_name: str | None, state: str | None, since: str | None, limit: int,
         as_json: bool) -> None:
    """The job history, newest first: who submitted what, queue wait, run time, attempts, result."""
    from farm import history

    try:
        since_s = history.parse_since(since) if since else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    records = history.query(_job_store(), history.Query(namespace, build_name, state, since_s, limit))
    entries = [history.entry(r) for r in records]
    if as_json:
        click.echo(json.dumps({"jobs": entries}, indent=2))
        return
    for line in history.table(entries):
        click.echo(line)


COMMANDS = [status, logs, cancel, jobs]
