"""The `farm` command, one module per command group: build, jobs (status, logs), worker, stack, config,
registry.

One exit path for every command (`FarmGroup.invoke`): a FarmError is one line on stderr and its
exit code (2 for usage and config errors, 1 for everything else); anything else is one `internal
error` line. No traceback reaches the user (FARM_DEBUG=1 shows it). Command modules import what
they use when they run, so `farm --help` stays cheap.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import click

from farm.cli import build, config, gc, jobs, publish, registry, stack, worker
from farm.cli._common import err
from farm.errors import ConfigErrors, FarmError


class FarmGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except ConfigErrors as exc:
            for problem in exc.errors:
                err(f"error: {problem}")
            err(str(exc))
            ctx.exit(exc.exit_code)
        except FarmError as exc:
            err(f"error: {exc}")
            ctx.exit(exc.exit_code)
        except Exception as exc:  # the last line of defence: one line, not a traceback
            if os.environ.get("FARM_DEBUG"):
                traceback.print_exc()
            first = str(exc).splitlines()[0] if str(exc) else ""
            err(f"internal error: {exc.__class__.__name__}: {first} (FARM_DEBUG=1 shows the traceback)")
            ctx.exit(1)


@click.group(cls=FarmGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """A shared, queue-based container image build farm for Garden projects."""


for group in (build, jobs, worker, stack, config, registry, publish, gc):
    for command in group.COMMANDS:
        cli.add_command(command)


def main() -> None:
    cli.main(prog_name="farm")
