"""A Build's context files and its version, computed as Garden does (GARDEN-SPEC §2.2–2.3).

    version = "v-" + sha256(configVersion . contentHash . dep1 . v1 ...)[:10]

Files come from one git listing of the project, filtered per Build as Garden's default
`scan.git.mode: repo` does (or `subtree`, on request); unmodified tracked files reuse git's index
blob ids, everything else is hashed here exactly like `git hash-object` (sha1 of "blob <size>\\0" +
data). configVersion is Garden's rule, in farm.garden.action_version.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from farm.errors import ConfigError
from farm.garden import action_version, globs, graph
from farm.garden.files import Listing, gitignore_rules, gitignored, glob_match_any, list_files, match_any
from farm.garden.models import BuildAction
from farm.garden.project import Project

NO_FILES_HASH = "0000000000"
_ROOT_EXCLUDES = (".git", ".gitmodules", ".garden/**/*", "debug-info*/**")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BuildVersion:
    version_string: str          # "v-" + 10 hex: the image tag
    version_full: str            # "v-" + 64 hex
    content_hash: str            # 10 hex
    config_version: str          # "v-" + 10 hex
    files: tuple[str, ...]       # context files, relative to build.source_dir
    skipped_symlinks: tuple[str, ...] = ()
    dependencies: tuple[tuple[str, str], ...] = ()  # (build.<name>, version_string)


def git_blob_hash(data: bytes) -> str:
    """What `git hash-object` prints for these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def hash_file(path: Path) -> str:
    """git blob id of a file (its link text for a symlink), reading it once in chunks."""
    if path.is_symlink():
        return git_blob_hash(os.fsencode(os.readlink(path)))
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        digest = hashlib.sha1(b"blob %d\0" % size)
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def config_version(build: BuildAction, project_exclude_values: tuple[str, ...] = ()) -> str:
    """Garden's configVersion: the validated action config (defaults filled in, dependencies as
    objects), minus non-versioned keys, after excludeFields/excludeValues (farm.garden.action_version)."""
    fields = [f.split(".") if isinstance(f, str) else list(f) for f in build.version_config.exclude_fields]
    values = [*build.version_config.exclude_values, *project_exclude_values]
    try:
        return action_version.config_version(action_version.validated_build_config(build.raw_config),
                                             fields, values)
    except action_version.ActionConfigError as exc:
        raise ConfigError(exc.message, file=str(build.config_file), field=exc.field) from None
    except re.error as exc:
        raise ConfigError(f"bad regex: {exc}", file=str(build.config_file),
                          field="version.excludeValues") from None


def excluded_dependencies(build: BuildAction) -> set[str]:
    """`version.excludeDependencies` as Garden compares them: full keys (`build.base`)."""
    return {action_version.reference_key(ref, f"version.excludeDependencies[{i}]")
            for i, ref in enumerate(build.version_config.exclude_dependencies)}


def _safe_link(path: Path, boundary: Path) -> bool:
    target = os.readlink(path)
    if os.path.isabs(target):
        return False
    resolved = Path(os.path.normpath(path.parent / target))
    return resolved == boundary or boundary in resolved.parents


@dataclass(frozen=True)
class _Context:
    files: tuple[str, ...]
    hashed: tuple[str, ...]     # project-relative paths that enter the content hash
    skipped: tuple[str, ...]


_GARDEN_DIR_EXCLUDE = "**/.garden/**/*"
GitScanMode = Literal["repo", "subtree"]


def _filter(build: BuildAction, at_root: bool) -> Callable[[str], bool]:
    """`scan.git.mode: subtree`: Garden's include/exclude (GARDEN-SPEC §2.3) as git applies them:
    with includes, they are glob pathspecs and excludes are matched afterwards as globs;
    without, excludes are `git ls-files --exclude` patterns, i.e. gitignore rules."""
    include = build.include
    if include is not None and "**/*" in include:
        include = None  # Garden treats "everything" as no include
    excludes = [*(build.exclude or []), _GARDEN_DIR_EXCLUDE]
    if include:
        return lambda rel: match_any(rel, include) and not glob_match_any(rel, excludes)
    rules = gitignore_rules([*excludes, *(_ROOT_EXCLUDES if at_root else ())])
    return lambda rel: not gitignored(rel, rules)


def _normalise(pattern: str) -> str:
    """Node's path.normalize for a relative pattern (`./a//b/` -> `a/b/`)."""
    norm = posixpath.normpath(pattern)
    return norm + "/" if pattern.endswith("/") and norm not in ("/", ".") else norm


def _augment(patterns: list[str], source_dir: Path) -> list[str]:
    """Garden's augmentGlobs: a plain pattern that names a directory covers everything below it."""
    out = []
    for pattern in patterns:
        target = source_dir / pattern
        if not globs.is_glob(pattern) and target.is_dir() and not target.is_symlink():
            pattern = posixpath.normpath(posixpath.join(pattern, "**", "*"))
        out.append(pattern)
    return out


def _repo_filter(build: BuildAction, at_root: bool) -> Callable[[str], bool]:
    """Garden's default `scan.git.mode: repo`: one listing of the repository, then micromatch globs on
    paths relative to the action (`core/src/vcs/git-repo.ts`). Unlike `subtree`, a plain exclude such
    as `foo.txt` or `*.log` only matches at the top of the action directory."""
    includes = _augment(build.include, build.source_dir) if build.include is not None else ["**/*"]
    excludes = [*(build.exclude or []), *(_ROOT_EXCLUDES if at_root else ())]
    excludes = [*_augment([_normalise(e) for e in excludes], build.source_dir), _GARDEN_DIR_EXCLUDE]
    return lambda rel: globs.match_any(rel, includes) and not globs.match_any(rel, excludes)


def _select(build: BuildAction, project: Project, listing: Listing, scan_mode: GitScanMode = "repo") -> _Context:
    root = project.root
    try:
        prefix = build.source_dir.relative_to(root).as_posix()
    except ValueError:
        raise ConfigError("the Build's source directory is outside the project",
                          file=str(build.config_file), field="source.path") from None
    prefix = "" if prefix == "." else prefix
    config_rel = build.config_file.relative_to(root).as_posix() if build.config_file.is_relative_to(
        root) else ""
    at_root = prefix == "" and build.include is None
    keep = _repo_filter(build, at_root) if scan_mode == "repo" else _filter(build, at_root)
    exclude_files = build.version_config.exclude_files
    files, hashed, skipped = [], [], []
    for path in listing.files:
        if prefix:
            if not path.startswith(prefix + "/"):
                continue
            rel = path[len(prefix) + 1:]
        else:
            rel = path
        if path == config_rel or rel == ".garden" or rel.startswith(".garden/") or not keep(rel):
            continue
        full = root / path
        mode = listing.modes.get(path)
        if mode == "160000":
            continue  # a submodule that is not checked out
        if path in listing.index_hash:  # unmodified tracked file: git already knows what it is
            is_link = mode == "120000"
        elif not os.path.lexists(full):
            continue  # deleted in the worktree
        else:
            is_link = os.path.islink(full)
        # Garden ignores symlinks that are absolute or point outside the directory it scanned: the
        # repository in repo mode (the farm lists the project root), the action's directory in subtree.
        if is_link and not _safe_link(full, root if scan_mode == "repo" else build.source_dir):
            skipped.append(rel)
            continue
        files.append(rel)
        if not exclude_files or not globs.match_any(rel, exclude_files):  # micromatch in both modes
            hashed.append(path)
    return _Context(tuple(files), tuple(hashed), tuple(skipped))


def _hashes(paths: list[str], root: Path, listing: Listing) -> dict[str, str]:
    out: dict[str, str] = {}
    todo: list[str] = []
    for path in paths:
        sha = listing.index_hash.get(path)
        if sha is not None:
            out[path] = sha
        else:
            todo.append(path)
    if todo:
        # hashlib releases the GIL on large buffers, so threads overlap reading and hashing.
        with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
            for path, sha in zip(todo, pool.map(lambda p: _try_hash(root / p), todo)):
                if sha is not None:
                    out[path] = sha
    return out


def _try_hash(path: Path) -> str | None:
    try:
        return hash_file(path)
    except FileNotFoundError:
        return None  # deleted since listing
    except IsADirectoryError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def content_hash(entries: list[tuple[str, str]]) -> str:
    """entries: (path relative to the config dir, blob id), already in order of their absolute paths
    (Garden sorts by absolute path, which differs from sorting "../x" style relative paths)."""
    joined = ".".join(f"{p}-{h}" for p, h in entries)
    return hashlib.sha256(joined.encode()).hexdigest()[:10]


def compute_versions(project: Project, known: Mapping[str, BuildVersion] | None = None,
                     git_scan_mode: GitScanMode | None = None) -> dict[str, BuildVersion]:
    """Versions of every Build in dependency order, from the project's one file listing.

    `known`: versions already computed (a Build's version depends only on it and its dependencies).
    `git_scan_mode` is the project's `scan.git.mode` (Garden's default: repo).
    """
    mode: GitScanMode = git_scan_mode or ("subtree" if project.git_scan_mode == "subtree" else "repo")
    versions: dict[str, BuildVersion] = {n: v for n, v in (known or {}).items() if n in project.builds}
    builds = project.builds
    try:
        order = [name for wave in graph.waves({n: b.dependencies for n, b in builds.items()}) for name in wave]
    except graph.CycleError as exc:
        raise ConfigError(f"dependency cycle: {exc}") from None
    listing = project.listing
    if listing is None and any(b.include != [] for n, b in builds.items() if n not in versions):
        listing = list_files(project.root, project.dot_ignore_file)
    contexts: dict[str, _Context] = {}
    all_hashed: set[str] = set()
    for name, build in builds.items():
        if name in versions:
            continue
        if build.include == []:
            contexts[name] = _Context((), (), ())
            continue
        assert listing is not None
        contexts[name] = _select(build, project, listing, mode)
        all_hashed.update(contexts[name].hashed)
    blob = _hashes(sorted(all_hashed), project.root, listing) if listing else {}

    for name in order:
        if name in versions:
            continue
        build = builds[name]
        ctx = contexts[name]
        if build.include == []:
            chash = NO_FILES_HASH
        else:
            config_dir = build.config_file.parent
            entries = []
            for path in ctx.hashed:  # listing order = absolute path order
                if path in blob:
                    rel = os.path.relpath(project.root / path, config_dir).replace(os.sep, "/")
                    entries.append((rel, blob[path]))
            chash = content_hash(entries)
        try:
            excluded = excluded_dependencies(build)
        except action_version.ActionConfigError as exc:
            raise ConfigError(exc.message, file=str(build.config_file), field=exc.field) from None
        deps = tuple(sorted((f"build.{d}", versions[d].version_string)
                            for d in build.dependencies if d in builds and f"build.{d}" not in excluded))
        cver = config_version(build, project.exclude_values)
        parts = [cver, chash] + [x for pair in deps for x in pair]
        full = hashlib.sha256(".".join(parts).encode()).hexdigest()
        versions[name] = BuildVersion(version_string="v-" + full[:10], version_full="v-" + full,
                                      content_hash=chash, config_version=cver, files=ctx.files,
                                      skipped_symlinks=ctx.skipped, dependencies=deps)
    return versions
