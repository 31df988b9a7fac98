"""`farm status` and `farm logs`: follow jobs sent with --no-wait, or by another machine."""

from __future__ import annotations

import json
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
        where = f"{r.get('image', '')}@{r['digest']}" if r.get("digest") else r.get("image", "")
        click.echo(f"{job_id}  {r.get('build', '')} {r.get('platform', '')}  {r.get('status', '')}  {where}"
                   + (f"  {r['error']}" if r.get("error") else ""))


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
