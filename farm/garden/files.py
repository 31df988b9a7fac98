"""Which files a project holds, as git sees them (GARDEN-SPEC §2.3): one listing for the whole tree.

Tracked files come with the blob hash from git's index; modified and untracked files are marked so
the version module hashes them itself. Outside a git repo the tree is walked and every file hashed.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from farm.errors import ConfigError


@dataclass(frozen=True)
class Listing:
    """Paths relative to the listed root (POSIX); `index_hash[p]` is git's blob id when still valid."""

    files: tuple[str, ...]
    index_hash: dict[str, str]
    modes: dict[str, str]          # git mode of tracked files ("120000" symlink, "160000" submodule)
    is_git: bool


def _git(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["git", "-c", "core.quotepath=off", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait(proc: subprocess.Popen[bytes], what: str) -> list[str]:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise ConfigError(f"git {what} failed: {err.decode(errors='replace').strip()}")
    return [p for p in out.decode("utf-8", errors="surrogateescape").split("\0") if p]


def is_git_worktree(path: Path) -> bool:
    try:
        out = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=path,
                             capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == "true"


def list_files(root: Path, dot_ignore: str = ".gardenignore") -> Listing:
    """Every file under root that Garden would see, tracked and untracked, minus dot-ignored ones."""
    if not is_git_worktree(root):
        return _walk(root, dot_ignore)
    excl = [f"--exclude-per-directory={dot_ignore}"] if dot_ignore else []
    # Four listings run side by side: one process each, never one per file.
    staged = _git(root, "ls-files", "-z", "-s", "--cached")
    others = _git(root, "ls-files", "-z", "--others", *excl)
    ignored = _git(root, "ls-files", "-z", "--cached", "--ignored", *excl) if excl else None
    modified = _git(root, "ls-files", "-z", "--modified", "--deleted")
    index_hash: dict[str, str] = {}
    modes: dict[str, str] = {}
    for line in _wait(staged, "ls-files"):
        meta, _, path = line.partition("\t")
        mode, sha, stage = meta.split(" ")
        if stage != "0":  # merge conflict: the worktree copy is what counts
            modes[path] = mode
            continue
        index_hash[path] = sha
        modes[path] = mode
    untracked = [p for p in _wait(others, "ls-files --others") if not p.endswith("/")]
    drop = set(_wait(ignored, "ls-files --ignored")) if ignored else set()
    for path in _wait(modified, "ls-files --modified"):
        index_hash.pop(path, None)
    files = (set(modes) | set(untracked)) - drop
    # Submodules are recursed into, as Garden does: their files join the list under their path.
    for sub in [p for p, m in modes.items() if m == "160000" and p in files]:
        files.discard(sub)
        if (root / sub / ".git").exists():
            inner = list_files(root / sub, dot_ignore)
            files.update(f"{sub}/{f}" for f in inner.files)
            index_hash.update({f"{sub}/{f}": h for f, h in inner.index_hash.items()})
            modes.update({f"{sub}/{f}": m for f, m in inner.modes.items()})
    return Listing(files=tuple(sorted(files)), index_hash=index_hash, modes=modes, is_git=True)


def _walk(root: Path, dot_ignore: str) -> Listing:
    """Not a git repo: list the tree, honouring the dot-ignore files with git's rules."""
    files: list[str] = []
    rules: dict[str, list[Rule]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir
        own = _read_rules(Path(dirpath) / dot_ignore, rel_dir) if dot_ignore else []
        inherited = rules.get(rel_dir.rsplit("/", 1)[0] if "/" in rel_dir else "", []) if rel_dir else []
        active = inherited + own
        rules[rel_dir] = active
        keep_dirs = []
        for d in sorted(dirnames):
            rel = f"{rel_dir}/{d}" if rel_dir else d
            if d == ".git" or ignored(rel, True, active):
                continue
            if os.path.islink(os.path.join(dirpath, d)):
                files.append(rel)  # git lists a symlink to a directory as a file
                continue
            keep_dirs.append(d)
        dirnames[:] = keep_dirs
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not ignored(rel, False, active):
                files.append(rel)
    return Listing(files=tuple(sorted(files)), index_hash={}, modes={}, is_git=False)


@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _read_rules(file: Path, base: str) -> list[Rule]:
    if not file.is_file():
        return []
    return gitignore_rules(file.read_text(encoding="utf-8", errors="replace").splitlines(), base)


def gitignore_rules(patterns: list[str] | tuple[str, ...], base: str = "") -> list[Rule]:
    """Compile gitignore-style patterns (as in .gitignore / `git ls-files --exclude`), relative to `base`."""
    out = []
    for raw in patterns:
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line
        if line.startswith("./"):
            line = line[2:]
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        line = line.lstrip("/")
        if not line:
            continue
        body = glob_regex(line)
        prefix = re.escape(base + "/") if base else ""
        pattern = prefix + ("" if anchored else "(?:.*/)?") + body
        out.append(Rule(re.compile(f"^{pattern}$"), negate, dir_only))
    return out


def gitignored(rel: str, rules: list[Rule]) -> bool:
    """Whether git would leave `rel` out: it, or any directory above it, matches the rules."""
    parts = rel.split("/")
    for i in range(1, len(parts)):
        if ignored("/".join(parts[:i]), True, rules):
            return True  # git does not look inside an excluded directory, so no negation can re-include
    return ignored(rel, False, rules)


def ignored(rel: str, is_dir: bool, rules: list[Rule]) -> bool:
    result = False
    for rule in rules:
        if rule.dir_only and not is_dir:
            continue
        if rule.regex.match(rel):
            result = not rule.negate
    return result


@lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> str:
    """Git `:(glob)` semantics: `*` and `?` stay within a path segment, `**` crosses them."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out += "/.*"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out += re.escape("[")
                i += 1
            else:
                body = pattern[i + 1:end]
                out += "[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]"
                i = end + 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return out


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip()
    if pattern.startswith("./"):
        pattern = pattern[2:]
    pattern = pattern.rstrip("/")
    # A pattern naming a directory (no glob characters) covers everything below it, as in Garden.
    if not any(c in pattern for c in "*?["):
        return re.compile("^" + re.escape(pattern) + "(?:/.*)?$")
    return re.compile("^" + glob_regex(pattern) + "$")


def match_any(rel: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """Git `--glob-pathspecs` matching (what Garden uses for `include`): a literal path also
    covers everything below it; a glob must match the whole path."""
    return any(_compiled(p).match(rel) for p in patterns)


@lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    pattern = pattern.strip()
    pattern = pattern[2:] if pattern.startswith("./") else pattern
    return re.compile("^" + glob_regex(pattern.rstrip("/")) + "$")


def glob_match_any(rel: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """minimatch-style (dot: true) whole-path matching, which Garden applies to `exclude` when
    `include` is set: no directory-prefix rule, `*` stays within a segment."""
    return any(_glob(p).match(rel) for p in patterns)
