"""`farm worker`: a build worker (Celery with the farm's app) in the foreground."""

from __future__ import annotations

import os

import click


@click.command()
@click.option("--platform", "platforms", multiple=True,
              help="A platform to build for (repeatable; default: this machine's).")
@click.option("--mode", "modes", multiple=True,
              help="A build mode to serve (repeatable; default: every mode this machine has the tools for).")
@click.option("--concurrency", "-c", default=1, show_default=True, help="Builds run at once.")
@click.option("--loglevel", default="INFO", show_default=True)
@click.option("--runtime", type=click.Choice(["docker", "kubernetes"]), default=None,
              help="Where kaniko executors run: a container on DOCKER_HOST's engine, or a Pod in the cluster "
                   "of KUBECONFIG (default: kubernetes when KUBECONFIG is set and the project's provider names "
                   "a context, else docker). Sets FARM_RUNTIME.")
def worker(platforms: tuple[str, ...], modes: tuple[str, ...], concurrency: int, loglevel: str,
           runtime: str | None) -> None:
    """Run a build worker in the foreground.

    It consumes one queue per (mode, platform) it serves, `build.<mode>.<os>-<arch>`, and
    `build.merge` (index merges need only the registry API). A mode whose tools are missing
    (no Docker engine, no BUILDKIT_HOST) is left out, with the reason.
    """
    from farm.broker import worker_argv

    argv = worker_argv(platforms, modes, concurrency, loglevel)
    if runtime:
        os.environ["FARM_RUNTIME"] = runtime
    os.execvp(argv[0], argv)


COMMANDS = [worker]
