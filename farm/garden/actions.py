"""Read `kind: Build, type: container` actions from the project's garden.yml files."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from farm.errors import ConfigError
from farm.garden import graph, templates
from farm.garden.loader import Doc, Path_, load_docs
from farm.garden.models import BuildAction
from farm.garden.validation import Problems, suggest, to_config_errors
from farm.garden.varfiles import read_varfile

_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ACTION_KINDS = ("Build", "Deploy", "Run", "Test")
_IGNORED_KINDS = ("Deploy", "Run", "Test", "Module", "Workflow", "ConfigTemplate", "RenderTemplate",
                  "Command", "Group", "Project")
ACTION_KEYS = ("apiVersion", "kind", "type", "name", "description", "disabled", "environments",
               "dependencies", "include", "exclude", "source", "timeout", "variables", "varfiles",
               "version", "spec", "allowPublish", "buildAtSource", "copyFrom", "internal", "logLevel")


def _on_error(doc: Doc) -> Any:
    def make(exc: templates.TemplateError, path: Path_) -> ConfigError:
        expr = f": ${{{exc.expression}}}" if exc.expression else ""
        return doc.error(exc.message + expr, path)
    return make


class BuildProblems(Exception):
    """Several errors in one Build, so `validate` can list them all."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__(str(errors[0]))
        self.errors = errors


def parse_dependency(dep: Any) -> tuple[str, str] | None:
    """'build.base' / 'build:base' / {kind: Build, name: base} -> ('build', 'base')."""
    if isinstance(dep, dict) and isinstance(dep.get("kind"), str) and isinstance(dep.get("name"), str):
        return dep["kind"].lower(), dep["name"]
    if isinstance(dep, str):
        for sep in (".", ":"):
            kind, found, name = dep.partition(sep)
            if found and kind.lower() in ("build", "deploy", "run", "test") and name:
                return kind.lower(), name
    return None


def _source_dir(doc: Doc, raw: dict[str, Any], root: Path) -> Path:
    base = doc.file.parent
    source = raw.get("source")
    if source is None:
        return base
    if not isinstance(source, dict):
        raise doc.error("must be a mapping with a path", ("source",))
    if "repository" in source:
        raise doc.error("remote sources (source.repository) are not supported by the farm; "
                        "check the repository out and use source.path", ("source", "repository"))
    path = source.get("path")
    if path is None:
        return base
    if not isinstance(path, str) or path.startswith("/"):
        raise doc.error("must be a relative POSIX path", ("source", "path"))
    target = (base / path).resolve()
    if not target.is_dir():
        raise doc.error(f"directory {target} does not exist", ("source", "path"))
    if target != root and root not in target.parents:
        raise doc.error("must stay inside the project", ("source", "path"))
    return target


def _action_varfiles(doc: Doc, value: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    """`varfiles: [path | {path, optional}]`, relative to the config file, later ones win."""
    out: dict[str, Any] = {}
    if value is None:
        return out
    if not isinstance(value, list):
        raise doc.error("must be a list of varfile paths", ("varfiles",))
    for i, item in enumerate(templates.resolve(value, ctx, _on_error(doc), ("varfiles",))):
        optional = False
        if isinstance(item, dict):
            optional = bool(item.get("optional", False))
            item = item.get("path")
        if not isinstance(item, str):
            raise doc.error("must be a path or {path, optional}", ("varfiles", i))
        file = doc.file.parent / item
        if not file.is_file():
            if optional:
                continue
            raise doc.error(f"varfile {file} does not exist", ("varfiles", i))
        out.update(read_varfile(file))
    return out


def _one_build(doc: Doc, raw: dict[str, Any], root: Path, env_name: str, ctx: dict[str, Any],
               implicit_deps: tuple[str, ...] = ()) -> BuildAction | str:
    """The Build, or just its name when it is disabled in this environment."""
    envs = raw.get("environments")
    if envs is not None:
        if not isinstance(envs, list):
            raise doc.error("must be a list of environment names", ("environments",))
        if env_name not in envs:
            return str(raw.get("name"))
    for key in raw:
        if key not in ACTION_KEYS:
            raise doc.error(f"unknown field '{key}'" + suggest(str(key), ACTION_KEYS), (str(key),))
    action_vars = raw.get("variables") or {}
    if not isinstance(action_vars, dict):
        raise doc.error("must be a mapping", ("variables",))
    name = raw.get("name")
    local = dict(ctx)
    local["this"] = {"name": name, "mode": "default"}
    action_vars = templates.resolve(action_vars, local, _on_error(doc), ("variables",))
    action_vars.update(_action_varfiles(doc, raw.get("varfiles"), local))
    merged = {**ctx.get("var", {}), **action_vars}
    local["var"] = local["variables"] = merged
    resolved = templates.resolve(raw, local, _on_error(doc))
    if resolved.get("disabled") is True:
        return str(name)
    if not isinstance(name, str) or not _NAME.match(name):
        raise doc.error("a Build needs a name of lowercase letters, digits and dashes", ("name",))

    for key in ("dependencies", "copyFrom"):
        if resolved.get(key) is not None and not isinstance(resolved[key], list):
            raise doc.error("must be a list", (key,))
    deps: list[str] = []
    for i, dep in enumerate([*(resolved.get("dependencies") or []), *(f"build.{d}" for d in implicit_deps)]):
        parsed = parse_dependency(dep)
        if parsed is None:
            raise doc.error(f"dependency {dep!r} must look like build.<name>", ("dependencies", i))
        if parsed[0] == "build" and parsed[1] not in deps:
            deps.append(parsed[1])
    for item in resolved.get("copyFrom") or []:
        if isinstance(item, dict) and isinstance(item.get("build"), str) and item["build"] not in deps:
            deps.append(item["build"])  # Garden adds copyFrom sources as dependencies

    fields = {k: v for k, v in resolved.items()
              if k not in ("kind", "apiVersion", "environments", "source", "varfiles", "internal",
                           "dependencies", "disabled", "logLevel")}
    fields.update(configFile=doc.file, sourceDir=_source_dir(doc, resolved, root), dependencies=deps,
                  rawConfig=resolved)
    try:
        return BuildAction.model_validate(fields)
    except ValidationError as exc:
        raise BuildProblems(to_config_errors(exc, doc, (), BuildAction)) from None


_ACTION_REF = re.compile(r"\bactions\.build\.([A-Za-z0-9_-]+)")
ActionsContext = Callable[[dict[str, BuildAction]], dict[str, Any]]


def action_refs(value: Any) -> set[str]:
    """Names of Builds whose outputs a config reads through `${actions.build.<name>...}`."""
    if isinstance(value, str):
        return set(_ACTION_REF.findall(value)) if "${" in value else set()
    if isinstance(value, dict):
        return set().union(*(action_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(action_refs(v) for v in value)) if value else set()
    return set()


def _container_build_docs(files: list[Path], problems: Problems) -> list[tuple[Doc, dict[str, Any]]]:
    out = []
    for file in files:
        try:
            docs = load_docs(file)
        except ConfigError as exc:
            problems.add(exc)
            continue
        for doc in docs:
            raw = doc.data
            if raw is None:
                continue
            if not isinstance(raw, dict):
                problems.add(doc.error("a config document must be a mapping"))
                continue
            kind = raw.get("kind")
            if kind in _IGNORED_KINDS:
                continue
            if kind != "Build":
                problems.add(doc.error(f"unknown kind {kind!r}" + suggest(str(kind), _ACTION_KINDS),
                                       ("kind",)))
                continue
            kind_type = raw.get("type")
            if not isinstance(kind_type, str) or not kind_type:
                # `type: [container]` would otherwise be skipped as "another type", silently.
                got = "it is missing" if kind_type is None else f"got {kind_type!r}"
                problems.add(doc.error(f"a Build needs a type, one string such as container ({got})",
                                       ("type",)))
                continue
            if kind_type == "container":  # other Build types (exec, jib ...) are not the farm's
                out.append((doc, raw))
    return out


def _closure(names: set[str], builds: dict[str, BuildAction]) -> dict[str, BuildAction] | None:
    """The named Builds and all they depend on, or None while one of them is not resolved yet."""
    needed = graph.closure(names, {n: b.dependencies for n, b in builds.items()})
    if any(name not in builds for name in needed):
        return None
    return {name: builds[name] for name in needed}


def load_builds(files: list[Path], root: Path, env_name: str, ctx: dict[str, Any], problems: Problems,
                actions_context: ActionsContext | None = None) -> dict[str, BuildAction]:
    builds: dict[str, BuildAction] = {}
    disabled: set[str] = set()
    where: dict[str, tuple[Doc, int | None]] = {}

    def add(doc: Doc, raw: dict[str, Any], local: dict[str, Any], refs: tuple[str, ...] = ()) -> None:
        try:
            build = _one_build(doc, raw, root, env_name, local, refs)
        except ConfigError as exc:
            problems.add(exc)
            return
        except BuildProblems as many:
            problems.add(*many.errors)
            return
        if isinstance(build, str):
            disabled.add(build)
            return
        if build.name in builds:
            first = where[build.name]
            problems.add(doc.error(f"Build '{build.name}' is also defined in {first[0].file}:{first[1]}",
                                   ("name",)))
            return
        builds[build.name] = build
        where[build.name] = (doc, doc.line_of(("name",)))

    deferred: list[tuple[Doc, dict[str, Any], set[str]]] = []
    for doc, raw in _container_build_docs(files, problems):
        refs = action_refs(raw)
        if refs and actions_context is not None:
            deferred.append((doc, raw, refs))  # needs the versions of the Builds it reads
        else:
            add(doc, raw, ctx)
    # Builds that read other Builds' outputs resolve after them, in dependency order (as in Garden).
    while deferred:
        ready = [(d, r, refs, c) for d, r, refs in deferred
                 if (c := _closure(refs - disabled, builds)) is not None]
        if not ready:
            doc, raw, refs = deferred[0]
            waiting = sorted(refs - set(builds) - disabled)
            pending = {str(r.get("name")) for _, r, _ in deferred}
            if set(waiting) & pending:
                problems.add(doc.error(f"template references form a cycle between Builds "
                                       f"{', '.join(sorted(pending))}"))
                return builds
            ready = [(doc, raw, refs, _closure(refs & set(builds), builds) or {})]
        for doc, raw, refs, closure in ready:
            assert actions_context is not None
            try:
                local = {**ctx, "actions": actions_context(closure)}
            except ConfigError as exc:
                problems.add(exc)
                local = ctx
            add(doc, raw, local, tuple(sorted(refs)))
            deferred = [d for d in deferred if d[0] is not doc or d[1] is not raw]

    for name, build in list(builds.items()):
        if any(d in disabled and d not in builds for d in build.dependencies):
            # Garden leaves disabled dependencies out of the graph and the version.
            builds[name] = build = build.model_copy(
                update={"dependencies": [d for d in build.dependencies if d in builds or d not in disabled]})
        doc, _ = where[name]
        for i, dep in enumerate(build.dependencies):
            if dep not in builds:
                problems.add(doc.error(f"depends on Build '{dep}', which is not defined"
                                       + suggest(dep, builds), ("dependencies", i)))
    _check_cycles(builds, where, problems)
    return builds


def _check_cycles(builds: dict[str, BuildAction], where: dict[str, tuple[Doc, int | None]],
                  problems: Problems) -> None:
    for name, cycle in graph.cycles({n: b.dependencies for n, b in builds.items()}):
        problems.add(where[name][0].error(f"dependency cycle: {' -> '.join(cycle)}", ("dependencies",)))
