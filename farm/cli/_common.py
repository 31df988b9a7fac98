"""What every command group shares: stderr lines and the project options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def err(msg: str) -> None:
    click.echo(msg, err=True)


def project_option(fn: F) -> F:
    return click.option("--project", "project_dir", type=click.Path(file_okay=False, path_type=Path),
                        default=".", show_default=True,
                        help="The Garden project root (holds project.garden.yml).")(fn)


def env_option(fn: F) -> F:
    return click.option("--env", "env_name", default=None,
                        help="Garden environment (default: the project's defaultEnvironment).")(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")(fn)
