"""`farm stack up|down|status|env`: the local farm on this machine (farm.stack)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import click

from farm.cli._common import err

if TYPE_CHECKING:
    from farm.stack import Stack


@click.group()
def stack() -> None:
    """The local farm stack: Redis, a registry, a Docker engine, Flower."""


def _stack(state_dir: Path | None) -> Stack:
    from farm.stack import Stack

    return Stack(state_dir)


_state_opt = click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                          help="Where the stack keeps its data (default: $FARM_STATE_DIR or ./.farm).")


@stack.command("up")
@_state_opt
@click.option("--with", "extra", multiple=True, help="Also start an optional service (buildkitd, worker).")
@click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also start what this Garden project's build mode needs (buildkitd for cluster-buildkit, "
                   "and its in-cluster image with --with kubernetes; the Kaniko executor image for kaniko).")
def stack_up(state_dir: Path | None, extra: tuple[str, ...], project_dir: Path | None) -> None:
    """Start the stack (idempotent)."""
    from farm.stack import DEFAULT_SERVICES

    mode = None
    if project_dir is not None:
        from farm import plan

        provider = plan.load(project_dir)[0].provider
        mode = provider.build_mode if provider is not None else None
        if mode == "cluster-buildkit":
            extra = (*extra, "buildkitd")
    st = _stack(state_dir)
    st.up(list(DEFAULT_SERVICES) + [s for s in extra if s != "worker"])
    if mode == "kaniko":
        err(f"kaniko      executor image {st.kaniko_image()}")
    if mode == "cluster-buildkit" and "kubernetes" in extra:
        err(f"buildkit    in-cluster image {st.buildkit_image()}")
    if "worker" in extra:
        st.start_worker()
    for name, status in st.status().items():
        err(f"{name:10} {status}")
    err(f"{'worker':10} {st.worker_status()}")
    err('Use it from a shell with: eval "$(farm stack env)"')


@stack.command("down")
@_state_opt
def stack_down(state_dir: Path | None) -> None:
    """Stop what `farm stack up` started (by pid)."""
    _stack(state_dir).down()


@stack.command("status")
@_state_opt
def stack_status(state_dir: Path | None) -> None:
    """Show each service of the stack."""
    st = _stack(state_dir)
    for name, status in st.status().items():
        click.echo(f"{name:10} {status}")
    click.echo(f"{'worker':10} {st.worker_status()}")


@stack.command("env")
@_state_opt
def stack_env(state_dir: Path | None) -> None:
    """Print shell exports for the stack: eval "$(farm stack env)"."""
    for key, value in _stack(state_dir).env().items():
        click.echo(f"export {key}={shlex.quote(value)}")


COMMANDS = [stack]
