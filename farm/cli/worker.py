"""`farm worker`: a build worker (Celery with the farm's app) in the foreground."""

from __future__ import annotations

import os

import click


@click.command()
@click.option("--queues", "-Q", default=None, help="Comma-separated queues (default: this machine's platform queue).")
@click.option("--platform", "platforms", multiple=True, help="Consume this platform's queue (repeatable).")
@click.option("--concurrency", "-c", default=1, show_default=True, help="Builds run at once.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(queues: str | None, platforms: tuple[str, ...], concurrency: int, loglevel: str) -> None:
    """Run a build worker in the foreground.

    It consumes its platform queues and `build.merge` (index merges need only the registry API).
    """
    from farm.broker import queue_for, worker_argv

    names = [q for q in (queues or "").split(",") if q] + [queue_for(p) for p in platforms]
    argv = worker_argv(names, concurrency, loglevel)
    os.execvp(argv[0], argv)


COMMANDS = [worker]
