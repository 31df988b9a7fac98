"""Everything the farm refuses in a planned project, before it sends anything: one check set for
`farm build` (which stops on it, exit 2) and `farm config validate` (which lists it).

The Garden loader already refuses what Garden refuses; these are the farm's own limits on top:
a build mode it can run, a registry to push to, the Build `timeout` against FARM_MAX_BUILD_TIMEOUT,
build-arg and secret sizes (a value travels in a process environment: Linux caps one string at
128 KiB), and the context's file count and size against the limits the workers enforce (so a
100,001-file context is refused before its upload, not after). Pure but for stat-ing the context
files and re-reading a config file for the line of a field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from farm.errors import ConfigError, ConfigErrors
from farm.garden.loader import Path_, load_docs
from farm.plan import Plan, PlannedBuild, require_buildable
from farm.settings import Settings


def _line(file: Path, path: Path_, pick: Callable[[Any], bool]) -> int | None:
    """The line of `path` in the document of `file` that `pick` chooses (None when unreadable)."""
    try:
        docs = load_docs(file)
    except ConfigError:
        return None
    return next((d.line_of(path) for d in docs if pick(d.data)), None)


def _field_path(text: str) -> Path_:
    """'environments[1].providers[0]' -> ('environments', 1, 'providers', 0)."""
    out: list[str | int] = []
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", text):
        out.append(int(index) if index else name)
    return tuple(out)


def _build_error(b: PlannedBuild, path: Path_, message: str) -> ConfigError:
    def pick(data: Any) -> bool:
        return isinstance(data, dict) and data.get("kind") == "Build" and data.get("name") == b.name

    field = ".".join(str(p) for p in path)
    return ConfigError(message, file=str(b.action.config_file), line=_line(b.action.config_file, path, pick),
                       field=field)


def project_problems(plan: Plan) -> list[ConfigError]:
    """A build mode the farm runs and a registry to push to (`plan.require_buildable`), with the line."""
    project = plan.project
    try:
        require_buildable(project)
    except ConfigError as exc:
        if exc.field and exc.line is None and project.provider_field:
            tail = exc.field.rsplit(".", 1)[-1]
            path = _field_path(project.provider_field) + (tail,)
            exc = ConfigError(exc.message, file=exc.file, field=f"{project.provider_field}.{tail}",
                              line=_line(project.config_file, path,
                                         lambda d: isinstance(d, dict) and d.get("kind") == "Project"))
        return [exc]
    return []


def _size(value: str | None) -> int:
    return len((value or "").encode())


def build_problems(b: PlannedBuild, settings: Settings) -> list[ConfigError]:
    """The farm's limits on one Build: timeout, build args, secrets, context."""
    out: list[ConfigError] = []
    if b.action.timeout > settings.max_build_timeout:
        out.append(_build_error(b, ("timeout",), f"timeout {b.action.timeout} s is above the farm's limit of "
                                f"{settings.max_build_timeout} s (FARM_MAX_BUILD_TIMEOUT)"))
    each, total = settings.build_arg_max_bytes, settings.build_args_max_bytes
    user_args = b.action.spec.build_args
    for key, value in sorted(b.build_args.items()):
        if key in user_args and _size(value) > each:
            out.append(_build_error(b, ("spec", "buildArgs", key),
                                    f"build arg {key} is {_size(value):,} bytes; the farm takes at most "
                                    f"{each:,} bytes per value (FARM_BUILD_ARG_MAX_BYTES)"))
    summed = sum(len(k) + _size(v) for k, v in b.build_args.items())
    if summed > total and not out:
        out.append(_build_error(b, ("spec", "buildArgs"),
                                f"the build args add up to {summed:,} bytes; the farm takes at most {total:,} "
                                "(FARM_BUILD_ARGS_MAX_BYTES)"))
    for key, value in sorted(b.action.spec.secrets.items()):
        if _size(value) > each:
            out.append(_build_error(b, ("spec", "secrets", key),
                                    f"secret {key} is {_size(value):,} bytes; the farm takes at most {each:,} "
                                    "bytes per value (FARM_BUILD_ARG_MAX_BYTES)"))
    out.extend(context_problems(b, settings))
    return out


def context_problems(b: PlannedBuild, settings: Settings) -> list[ConfigError]:
    """The context against the workers' limits (FARM_CONTEXT_MAX_FILES / _BYTES), before any upload."""
    files = b.version.files
    where = ("include",) if b.action.include is not None else ("name",)
    if len(files) > settings.context_max_files:
        return [_build_error(b, where, f"the context of {b.name} has {len(files):,} files; workers take at "
                             f"most {settings.context_max_files:,} (FARM_CONTEXT_MAX_FILES): narrow it with "
                             "include/exclude or a .gardenignore")]
    root = b.action.source_dir
    summed = 0
    for rel in files:
        try:
            summed += os.lstat(os.path.join(root, rel)).st_size
        except OSError:
            continue        # gone since the listing: the upload reports it
        if summed > settings.context_max_bytes:
            return [_build_error(b, where, f"the context of {b.name} is over {settings.context_max_bytes:,} "
                                 "bytes, the most workers take (FARM_CONTEXT_MAX_BYTES): narrow it with "
                                 "include/exclude or a .gardenignore")]
    return []


def problems(plan: Plan, settings: Settings) -> list[ConfigError]:
    """Every problem `farm build` would stop on, for the planned Builds."""
    found = project_problems(plan)
    for b in plan.builds:
        found.extend(build_problems(b, settings))
    return found


def require(plan: Plan, settings: Settings) -> None:
    """Raise the plan's problems (one ConfigError, or ConfigErrors for several): exit 2, nothing sent."""
    found = problems(plan, settings)
    if len(found) == 1:
        raise found[0]
    if found:
        raise ConfigErrors(found)
