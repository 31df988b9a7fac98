"""`farm status` and `farm logs`: follow jobs sent with --no-wait, or by another machine."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import click

from farm.cli._common import json_option
from farm.errors import UsageError

if TYPE_CHECKING:
    from farm.jobs import JobStore

FINISHED = ("built", "failed")


def _job_store() -> JobStore:
    from farm.broker import check_broker, redis_client
    from farm.jobs import JobStore
    from farm.settings import get_settings

    settings = get_settings()
    client = redis_client(settings)
    check_broker(client, settings.broker_url)
    return JobStore(client)


def _records(store: JobStore, job_ids: tuple[str, ...]) -> dict[str, dict[str, str]]:
    records = {job_id: store.get(job_id) for job_id in job_ids}
    unknown = [j for j, r in records.items() if not r]
    if unknown:
        raise UsageError(f"no such job: {', '.join(unknown)} (job records expire after 7 days)")
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
    state = {
        "queued": f"queued {ago('queued_at')}" + (f", waiting: {r['waiting']}" if r.get("waiting") else ""),
        "started": f"running on {r.get('worker', '?')} since {ago('attempt_started_at')}, "
                   f"attempt {r.get('attempts', '1')}",
        "retrying": f"retrying after attempt {r.get('attempts', '?')} failed: {r.get('error', '')}",
        "built": f"built {r.get('image', '')}@{r.get('digest', '')}",
        "failed": f"failed: {r.get('error', '')}",
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


COMMANDS = [status, logs]
