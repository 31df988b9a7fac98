"""Load a Garden project: the Project config, the environment, the kubernetes provider, the container Builds.

`load_project(root, env)` is the one entry point. Every user-caused problem becomes a ConfigError
naming file:line and a field path; `check_project` returns all of them for `farm config validate`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from farm.errors import ConfigError
from farm.garden import graph, templates
from farm.garden.actions import load_builds
from farm.garden.context import GitInfo, base_context, read_git_info, with_environment
from farm.garden.files import Listing, list_files, match_any
from farm.garden.loader import Doc, Path_, field_path, load_docs
from farm.garden.models import BuildAction, KubernetesProvider
from farm.garden.validation import Problems, suggest, to_config_errors
from farm.garden.varfiles import read_varfile

CONFIG_NAMES = ("garden.yml", "garden.yaml", "project.garden.yml", "project.garden.yaml")
KUBERNETES_PROVIDERS = ("kubernetes", "local-kubernetes")

_IDENTIFIER = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class Project:
    name: str
    root: Path
    config_file: Path
    environment: str
    namespace: str
    provider: KubernetesProvider | None
    builds: dict[str, BuildAction]
    variables: dict[str, Any] = field(default_factory=dict)
    environments: tuple[str, ...] = ()
    dot_ignore_file: str = ".gardenignore"
    scan_include: tuple[str, ...] | None = None
    scan_exclude: tuple[str, ...] = ()
    git: GitInfo = GitInfo()
    provider_line: tuple[str, int | None] | None = None  # where the provider is configured, for errors
    provider_field: str = "providers[kubernetes]"
    exclude_values: tuple[str, ...] = ()  # excludeValuesFromActionVersions: regexes masked in config hashes
    listing: Listing | None = None        # the project's one file listing (git + dot-ignore files)
    git_scan_mode: str = "repo"           # scan.git.mode: how excludes match (Garden 0.14's default: repo)


# What `${actions.build.<name>.*}` resolves to, given the project so far and the Builds (with all
# their dependencies) a config reads. The caller supplies it: reading config knows nothing of
# versions or image names (farm.plan does).
ActionsResolver = Callable[[Project, dict[str, BuildAction]], dict[str, Any]]


def is_config_file(name: str) -> bool:
    return name in CONFIG_NAMES or name.endswith((".garden.yml", ".garden.yaml"))


def _find_project_doc(root: Path) -> Doc:
    if not root.is_dir():
        raise ConfigError(f"project directory {root} does not exist")
    found: list[Doc] = []
    for path in sorted(p for p in root.iterdir() if p.is_file() and is_config_file(p.name)):
        for doc in load_docs(path):
            if isinstance(doc.data, dict) and doc.data.get("kind") == "Project":
                found.append(doc)
    if not found:
        named = [p for p in (root / "project.garden.yml", root / "project.garden.yaml") if p.is_file()]
        for doc in (d for p in named for d in load_docs(p)):
            # The project file is there but its document is not a Project: point at it.
            kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
            raise doc.error(f"the project config needs kind: Project (got {kind!r})", ("kind",))
        raise ConfigError(f"no Garden project config (a document with kind: Project) in {root}; "
                          "expected project.garden.yml or garden.yml")
    if len(found) > 1:
        raise found[1].error(f"a second kind: Project document (the first is in {found[0].file})")
    return found[0]


def _str_list(doc: Doc, value: Any, path: Path_) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise doc.error("must be a list of strings", path)
    return tuple(value)


def _template_error(doc: Doc) -> Any:
    return lambda exc, path: doc.error(exc.message + (f": ${{{exc.expression}}}" if exc.expression else ""),
                                       path)


def _resolve(doc: Doc, value: Any, ctx: dict[str, Any], path: Path_) -> Any:
    return templates.resolve(value, ctx, _template_error(doc), path)


def _pick_environment(doc: Doc, data: dict[str, Any], env: str | None) -> tuple[int, dict[str, Any], str | None]:
    envs = data.get("environments")
    if envs is None:
        envs = [{"name": "default"}]  # Garden's default when a project lists none
    if not isinstance(envs, list) or not envs or not all(isinstance(e, dict) for e in envs):
        raise doc.error("must be a non-empty list of environments", ("environments",))
    names = [e.get("name") for e in envs]
    namespace_override = None
    wanted = env or data.get("defaultEnvironment") or names[0]
    if not isinstance(wanted, str):
        raise doc.error("must be a string", ("defaultEnvironment",))
    if "." in wanted:  # Garden's `<namespace>.<environment>` form
        namespace_override, wanted = wanted.split(".", 1)
    if wanted not in names:
        where: Path_ = () if env else ("defaultEnvironment",)
        hint = suggest(wanted, [n for n in names if isinstance(n, str)])
        raise doc.error(f"environment '{wanted}' is not defined (environments: "
                        f"{', '.join(str(n) for n in names)}){hint}", where)
    index = names.index(wanted)
    return index, envs[index], namespace_override


def _variables(doc: Doc, value: Any, path: Path_) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error("must be a mapping of variable names to values", path)
    return dict(value)


_VAR_REF = re.compile(r"\$\{[^}]*?\bvar(?:iables)?\.([A-Za-z0-9_-]+)")


def _variable_cycles(doc: Doc, value: Any, path: Path_) -> None:
    """Variables that refer to each other, named as such (resolving them would only say that
    `var` is not there yet)."""
    if not isinstance(value, dict):
        return
    refs = {str(k): sorted(set(_VAR_REF.findall(str(v))) & {str(n) for n in value}) for k, v in value.items()}
    for name, cycle in graph.cycles(refs)[:1]:
        raise doc.error("variables refer to each other: " + " -> ".join(f"var.{c}" for c in cycle),
                        path + (name,))


def _varfile(root: Path, doc: Doc, name: Any, default: str, path: Path_) -> dict[str, Any]:
    explicit = name is not None
    file = root / (name if isinstance(name, str) else default)
    if not file.is_file():
        if explicit:
            raise doc.error(f"varfile {file} does not exist", path)
        return {}
    return read_varfile(file)


def _providers_for(doc: Doc, data: dict[str, Any], env_index: int, env_cfg: dict[str, Any],
                   env_name: str) -> list[tuple[Path_, dict[str, Any]]]:
    """The provider configs that apply to the environment, with their location in the doc."""
    out: list[tuple[Path_, dict[str, Any]]] = []
    for base, items in ((("providers",), data.get("providers")),
                        (("environments", env_index, "providers"), env_cfg.get("providers"))):
        if items is None:
            continue
        if not isinstance(items, list):
            raise doc.error("must be a list of providers", base)
        for i, item in enumerate(items):
            path = base + (i,)
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise doc.error("each provider needs a name", path)
            envs = item.get("environments")
            if envs is not None and env_name not in _str_list(doc, envs, path + ("environments",)):
                continue
            out.append((path, item))
    return out


def _load_provider(doc: Doc, providers: list[tuple[Path_, dict[str, Any]]], ctx: dict[str, Any],
                   env_name: str, project_name: str, namespace: str,
                   problems: Problems) -> tuple[KubernetesProvider | None, Path_ | None]:
    k8s = [(p, c) for p, c in providers if c["name"] in KUBERNETES_PROVIDERS]
    if not k8s:
        return None, None
    if len(k8s) > 1:
        names = ", ".join(field_path(p) for p, _ in k8s)
        problems.add(doc.error(f"the kubernetes provider is configured more than once for environment "
                               f"'{env_name}' ({names})", k8s[1][0]))
    path, raw = k8s[0]
    try:
        resolved = _resolve(doc, raw, ctx, path)
    except ConfigError as exc:
        problems.add(exc)
        return None, path
    if resolved.get("namespace") is None:
        resolved["namespace"] = f"{project_name}-{namespace}"
    try:
        return KubernetesProvider.model_validate(resolved), path
    except ValidationError as exc:
        problems.add(*to_config_errors(exc, doc, path, KubernetesProvider))
        return None, path


_FIXED_SCAN_EXCLUDES = (".git", ".gitmodules", ".garden/**/*", "debug-info*/**")


def _scan_files(root: Path, include: tuple[str, ...] | None, exclude: tuple[str, ...],
                listing: Listing) -> list[Path]:
    """Garden config files in the project, found the way Garden finds them: from the git listing
    (tracked + untracked, dot-ignore files honoured), then scan.include / scan.exclude."""
    found = []
    for rel in listing.files:
        name = rel.rsplit("/", 1)[-1]
        if not is_config_file(name) or match_any(rel, _FIXED_SCAN_EXCLUDES) or "/.garden/" in f"/{rel}":
            continue
        if include is not None and not match_any(rel, include):
            continue
        if exclude and match_any(rel, exclude):
            continue
        path = root / rel
        if path.is_file():  # listed but deleted, or a symlink to nowhere
            found.append(path)
    return found


def load_project(root: Path | str, env: str | None = None, *, git: GitInfo | None = None,
                 check_registry: bool = True, resolve_actions: ActionsResolver | None = None) -> Project:
    """Load and validate a Garden project for one environment; raise the first ConfigError."""
    project, problems = _load(Path(root), env, git, check_registry, resolve_actions)
    if problems.errors:
        raise problems.errors[0]
    assert project is not None
    return project


def environment_names(root: Path | str) -> list[str]:
    """The environments a project declares (["default"] when it lists none)."""
    data = _find_project_doc(Path(root).resolve()).data
    envs = data.get("environments")
    if not isinstance(envs, list) or not envs:
        return ["default"]
    return [e["name"] for e in envs if isinstance(e, dict) and isinstance(e.get("name"), str)]


def default_environment_problem(root: Path | str) -> ConfigError | None:
    """`defaultEnvironment` naming an environment the project does not define (what `farm build`
    without --env stops on); None when it is sound."""
    try:
        doc = _find_project_doc(Path(root).resolve())
        _pick_environment(doc, doc.data, None)
    except ConfigError as exc:
        return exc
    return None


def check_project(root: Path | str, env: str | None = None, *, git: GitInfo | None = None,
                  resolve_actions: ActionsResolver | None = None) -> list[ConfigError]:
    """Every problem in the project (for `farm config validate`), [] when it loads cleanly."""
    try:
        _, problems = _load(Path(root), env, git, True, resolve_actions)
    except ConfigError as exc:
        return [exc]
    return problems.errors


def _load(root: Path, env: str | None, git: GitInfo | None, check_registry: bool,
          resolve_actions: ActionsResolver | None) -> tuple[Project | None, Problems]:
    root = root.resolve()
    problems = Problems()
    doc = _find_project_doc(root)
    data = doc.data
    name = data.get("name")
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise doc.error("project name must be a lowercase identifier (letters, digits, dashes)", ("name",))
    api = data.get("apiVersion")
    if api is not None and api not in ("garden.io/v0", "garden.io/v1", "garden.io/v2"):
        problems.add(doc.error(f"unsupported apiVersion {api!r}; expected garden.io/v1", ("apiVersion",)))
    git = git if git is not None else read_git_info(root)
    ctx = base_context(root, name, git)
    env_index, env_cfg, ns_override = _pick_environment(doc, data, env)
    env_name = env_cfg["name"]
    env_path: Path_ = ("environments", env_index)

    _variable_cycles(doc, data.get("variables"), ("variables",))
    variables = _resolve(doc, _variables(doc, data.get("variables"), ("variables",)), ctx, ("variables",))
    variables.update(_varfile(root, doc, data.get("varfile"), "garden.env", ("varfile",)))
    env_ctx = with_environment(ctx, env_name, "", variables)
    env_vars = _resolve(doc, _variables(doc, env_cfg.get("variables"), env_path + ("variables",)),
                        env_ctx, env_path + ("variables",))
    variables = {**variables, **env_vars}
    variables.update(_varfile(root, doc, env_cfg.get("varfile"), f"garden.{env_name}.env",
                              env_path + ("varfile",)))

    if not ns_override and "defaultNamespace" in env_cfg and env_cfg["defaultNamespace"] is None:
        raise doc.error(f"environment '{env_name}' has no defaultNamespace: pass the namespace as "
                        f"--env <namespace>.{env_name}", env_path + ("defaultNamespace",))
    namespace = ns_override or _resolve(doc, env_cfg.get("defaultNamespace", "default"),
                                        with_environment(ctx, env_name, "", variables),
                                        env_path + ("defaultNamespace",))
    if not isinstance(namespace, str) or not _IDENTIFIER.match(namespace):
        raise doc.error(f"namespace {namespace!r} must be a lowercase identifier",
                        env_path + ("defaultNamespace",))
    full_ctx = with_environment(ctx, env_name, namespace, variables)

    dot_ignore = data.get("dotIgnoreFile", ".gardenignore")
    if isinstance(data.get("dotIgnoreFiles"), list) and data["dotIgnoreFiles"]:  # pre-0.13 spelling
        dot_ignore = data["dotIgnoreFiles"][0]
    if not isinstance(dot_ignore, str):
        raise doc.error("must be a file name", ("dotIgnoreFile",))
    scan = data.get("scan") or {}
    if not isinstance(scan, dict):
        raise doc.error("must be a mapping with include / exclude", ("scan",))
    scan_include = _str_list(doc, scan["include"], ("scan", "include")) if "include" in scan else None
    scan_exclude = _str_list(doc, scan.get("exclude"), ("scan", "exclude"))
    scan_git = scan.get("git") or {}
    git_scan_mode = scan_git.get("mode", "repo") if isinstance(scan_git, dict) else None
    if git_scan_mode not in ("repo", "subtree"):
        raise doc.error("must be repo or subtree", ("scan", "git", "mode"))

    providers = _providers_for(doc, data, env_index, env_cfg, env_name)
    provider, provider_path = _load_provider(doc, providers, full_ctx, env_name, name, namespace, problems)

    listing = list_files(root, dot_ignore)
    files = _scan_files(root, scan_include, scan_exclude, listing)
    exclude_values = _str_list(doc, _resolve(doc, data.get("excludeValuesFromActionVersions"), full_ctx,
                                             ("excludeValuesFromActionVersions",)),
                               ("excludeValuesFromActionVersions",))

    project = Project(
        name=name, root=root, config_file=doc.file, environment=env_name, namespace=namespace,
        provider=provider, builds={}, variables=variables,
        environments=tuple(e.get("name", "") for e in data.get("environments") or [{"name": "default"}]),
        dot_ignore_file=dot_ignore, scan_include=scan_include, scan_exclude=scan_exclude, git=git,
        provider_line=(str(doc.file), doc.line_of(provider_path)) if provider_path else None,
        provider_field=field_path(provider_path) if provider_path else "providers[kubernetes]",
        exclude_values=exclude_values, listing=listing, git_scan_mode=git_scan_mode)
    actions = None if resolve_actions is None else (
        lambda subset: resolve_actions(replace(project, builds=subset), subset))
    project = replace(project, builds=load_builds(files, root, env_name, full_ctx, problems, actions))
    if check_registry and provider is not None and not problems.errors:
        try:
            require_registry(project)
        except ConfigError as exc:
            problems.add(exc)
    return project, problems


def require_registry(project: Project) -> None:
    """In-cluster builders push straight to the registry, so they cannot work without one (Garden agrees)."""
    provider = project.provider
    if provider is None or not provider.in_cluster or provider.deployment_registry is not None:
        return
    file, line = project.provider_line or (str(project.config_file), None)
    raise ConfigError(f"buildMode {provider.build_mode} needs a deploymentRegistry to push to "
                      "(set deploymentRegistry.hostname)", file=file, line=line,
                      field=f"{project.provider_field}.deploymentRegistry")
