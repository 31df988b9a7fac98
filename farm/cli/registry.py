"""`farm registry check`: per registry a project uses, where its credentials come from and whether
the farm can pull and push there (a real auth round trip); exit 0 when all can, 1 otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from farm.cli._common import env_option, json_option, project_option
from farm.errors import RegistryAuthError

if TYPE_CHECKING:
    from farm.registry.access import Check, RegistryAccess


@click.group("registry")
def registry() -> None:
    """The registries a project pushes to and pulls from."""


def _mark(check: Check | None) -> str:
    if check is None:
        return "-"
    return "ok" if check.ok else "NO"


def _print_text(results: list[RegistryAccess]) -> None:
    for r in results:
        click.echo(f"registry {r.host}  {'ok' if r.ok else 'CANNOT BE USED'}")
        click.echo(f"  credentials  {r.source}: {r.detail}")
        if r.problem:
            click.echo(f"  problem      {r.problem}")
        for repo in r.repositories:
            use = repo.use
            click.echo(f"  {use.repository}:{use.ref}  ({', '.join(use.roles)})  pull {_mark(repo.pull)}  "
                       f"push {_mark(repo.push)}")
            for check in (repo.pull, repo.push):
                if check is not None and not check.ok:
                    click.echo(f"    why: {check.reason}")
            for note in repo.notes:
                click.echo(f"    note: {note}")


@registry.command("check")
@project_option
@env_option
@json_option
def check(project_dir: Path, env_name: str | None, as_json: bool) -> None:
    """Per registry (deployment, caches, base images): credential source, pull and push."""
    from farm import plan as planning
    from farm import preflight
    from farm.settings import get_settings

    project, versions = planning.load(project_dir, env_name)
    planning.require_buildable(project)
    results = preflight.check_plan(planning.plan(project, versions), get_settings())
    if as_json:
        click.echo(json.dumps({"project": project.name, "environment": project.environment,
                               "ok": all(r.ok for r in results),
                               "registries": [r.as_json() for r in results]}, indent=2))
    else:
        _print_text(results)
    bad = [r.host for r in results if not r.ok]
    if bad:
        raise RegistryAuthError(f"the farm cannot use {len(bad)} of {len(results)} "
                                f"registr{'y' if len(results) == 1 else 'ies'}: {', '.join(bad)}")


COMMANDS = [registry]
