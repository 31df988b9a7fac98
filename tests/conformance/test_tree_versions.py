"""Garden's file-selection vectors for a Build's version (core/test/unit/src/vcs/git.ts, run by
Garden for both git scan modes: GitRepoHandler = `repo`, the default, and GitSubTreeHandler =
`subtree`; and core/test/unit/src/vcs/vcs.ts). Each case builds the tree in a fresh git repo with
the Build at the project root, and checks the farm's file list and content hash against `git
hash-object`. Our test code; Garden's data."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from farm.garden import GitInfo, load_project
from farm.version import compute_versions
from tests.conformance.garden import GIT, VCS, vector

INFO = GitInfo(branch="main", commit_hash="0" * 40)
MODES = {"repo": "GitRepoHandler > ", "subtree": "GitSubTreeHandler > "}
F = "getFiles > include/exclude filters > "
INC = F + "when only include filter is specified > when exclude is {ex} > "
EXC = F + "when only exclude filter is specified > "


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout.strip()


def make(root: Path, files: list[str], build: dict[str, Any], setup: Callable[[Path], None] | None = None) -> Path:
    """A git repo (no commit yet, as Garden's tmp dirs) with Build `a` at the project root."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q")
    docs = [{"apiVersion": "garden.io/v1", "kind": "Project", "name": "p", "environments": [{"name": "dev"}],
             "providers": [{"name": "kubernetes", "context": "c"}]},
            {"kind": "Build", "type": "container", "name": "a", **build}]
    (root / "project.garden.yml").write_text("\n---\n".join(json.dumps(d) for d in docs))
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("")
    if setup:
        setup(root)
    return root


def check(root: Path, mode: str, expected: list[str], include: Any = None) -> None:
    version = compute_versions(load_project(root, git=INFO), git_scan_mode=mode)["a"]  # type: ignore[arg-type]
    assert sorted(version.files) == sorted(expected)
    if include == []:  # Garden does not scan at all: NEW_RESOURCE_VERSION
        assert version.content_hash == "0000000000"
        return
    entries = [f"{rel}-{git(root, 'hash-object', '--no-filters', rel) if not os.path.islink(root / rel) else _link(root / rel)}"
               for rel in sorted(expected, key=lambda r: str(root / r))]
    assert version.content_hash == hashlib.sha256(".".join(entries).encode()).hexdigest()[:10]


def _link(path: Path) -> str:
    data = os.fsencode(os.readlink(path))
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def both(title: str, files: list[str], build: dict[str, Any], expected: list[str] | dict[str, list[str]],
         setup: Callable[[Path], None] | None = None) -> list[Any]:
    """The vector for each mode; `expected` per mode where Garden's two handlers differ."""
    return [vector(GIT, MODES[mode] + title, mode, files, build,
                   expected[mode] if isinstance(expected, dict) else expected, setup) for mode in MODES]


def commit(root: Path) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "x")


CASES: list[Any] = []
for ex_name, ex in (("undefined", {}), ("an empty list", {"exclude": []})):
    inc = INC.format(ex=ex_name)
    CASES += [
        *both(inc + "should return nothing if include: []", ["foo.txt"], {"include": [], **ex}, []),
        *both(inc + "should filter out files that don't match the include filter > when filename doesn't match the "
              "include filter", ["foo.txt"], {"include": ["bar.*"], **ex}, []),
        *both(inc + "should filter out files that don't match the include filter > when file is in a sub-directory "
              "and filename matches the include filter", ["subdir/foo.txt"], {"include": ["foo.*"], **ex}, []),
        *both(inc + "should include files that match the include filter > when filename matches the include filter",
              ["foo.txt"], {"include": ["foo.*"], **ex}, ["foo.txt"]),
        *both(inc + "should include files that match the include filter > when file is in a sub-directory matches the "
              "include filter with globs", ["subdir/foo.txt"], {"include": ["**/foo.*"], **ex}, ["subdir/foo.txt"]),
        *both(inc + "should include a directory that match the include filter > when directory is explicitly included "
              "by exact name", ["subdir/foo.txt"], {"include": ["subdir"], **ex}, ["subdir/foo.txt"]),
        *[c for name, pattern in (("when directory is included by exact relative path", "subdir/deepdir"),
                                  ("when directory is included by relative path with globs", "subdir/deepdir/**/*"),
                                  ("when directory is included by name with globs", "**/deepdir/**/*"))
          for c in both(inc + "should include a directory that match the include filter > when included directory is "
                        f"in a sub-directory > {name}", ["subdir/deepdir/foo.txt"], {"include": [pattern], **ex},
                        ["subdir/deepdir/foo.txt"])],
        *both(inc + "should include hidden files that match the include filter", [".foo"], {"include": ["*"], **ex},
              [".foo"]),
    ]

_FOO_BAR = ["foo.txt", "bar.txt", "dir/foo.txt", "dir/bar.txt"]
for name, pattern, root_only in (("by exact filename without globs", "foo.txt", True),
                                 ("by exact filename with prefix globs", "**/foo.txt", False),
                                 ("by filename with wildcard extension without prefix globs", "foo.*", True),
                                 ("by filename with wildcard extension with prefix globs", "**/foo.*", False)):
    CASES += both(EXC + f"should filter out files that match the exclude filter > {name}", _FOO_BAR,
                  {"exclude": [pattern]}, {"repo": ["bar.txt", "dir/bar.txt"] + (["dir/foo.txt"] if root_only else []),
                                           "subtree": ["bar.txt", "dir/bar.txt"]})

_DIRECT = ["bar.txt", "dir/bar.txt", "excluded-dir/foo.txt", "excluded-dir/bar.txt"]
_DEEP = ["bar.txt", "dir/bar.txt", "dir/excluded-subdir/foo.txt", "dir/excluded-subdir/bar.txt"]
_KEPT = ["bar.txt", "dir/bar.txt"]
DIRS = EXC + "should filter directories that match the exclude filter > "
for name, pattern, repo in (("without globs", "excluded-dir", _KEPT),
                            ("with prefix globs", "**/excluded-dir", _DIRECT),
                            ("with full globs", "**/excluded-dir/**/*", _KEPT),
                            ("with redundant relative path", "./excluded-dir", _KEPT)):
    CASES += both(DIRS + f"should filter out any files from direct sub-directories that match the exclude filter > "
                  f"{name}", _DIRECT, {"exclude": [pattern]}, {"repo": repo, "subtree": _KEPT})
for name, pattern, repo in (("without globs", "excluded-subdir", _DEEP),
                            ("with prefix globs", "**/excluded-subdir", _DEEP),
                            ("with full globs", "**/excluded-subdir/**/*", _KEPT),
                            ("with redundant relative path", "./dir/excluded-subdir", _KEPT)):
    CASES += both(DIRS + f"should filter out all files from deep sub-directories that match the exclude filter > "
                  f"{name}", _DEEP, {"exclude": [pattern]}, {"repo": repo, "subtree": _KEPT})

_MOD = ["module-a/" + f for f in ("no.txt", "yes.pass", "foo.txt", "yes.txt")]
_SUB = [f"module-a/{d}/{f}" for d in ("excluded-dir", "included-dir") for f in ("foo.txt", "no.txt", "yes.pass", "yes.txt")]
CASES += [
    *both(F + "when both include and exclude filters are specified > should respect include and exclude filters",
          ["module-a/yes.txt", "no.txt", "module-a/yes.pass"], {"include": ["module-a/**/*"], "exclude": ["**/*.txt"]},
          ["module-a/yes.pass"]),
    *both(F + "when both include and exclude filters are specified > should respect include and exclude filters with "
          "sub-directories", _MOD + _SUB,
          {"include": ["module-a/**/*"], "exclude": ["**/no.txt", "module-a/excluded-dir/**/*"]},
          [f for f in _MOD + _SUB if not f.endswith("no.txt") and "excluded-dir" not in f]),
    *both("getFiles > ignore file > should exclude untracked files that are listed in ignore file", ["foo.txt"], {},
          [".gardenignore"], lambda r: (r / ".gardenignore").write_text("foo.txt")),
    *both("getFiles > ignore file > should exclude tracked files that are listed in ignore file", ["foo.txt"], {},
          [".gardenignore"], lambda r: ((r / ".gardenignore").write_text("foo.txt"), commit(r))),
    *both("getFiles > symlinks > should include a relative symlink within the path", ["foo"], {}, ["foo", "symlink"],
          lambda r: os.symlink("foo", r / "symlink")),
    *both("getFiles > symlinks > should include a relative symlink within the path even when target does not exist",
          [], {}, ["symlink"], lambda r: os.symlink("does-not-exist", r / "symlink")),
    *both("getFiles > symlinks > should exclude an absolute symlink that points inside the path", ["foo"], {}, ["foo"],
          lambda r: os.symlink(r / "foo", r / "symlink")),
    *both("getFiles > git working tree > should return untracked files in untracked directory", ["dir/file.txt"], {},
          ["dir/file.txt"]),
    *both("getFiles > git working tree > should work with tracked files with spaces in the name", ["my file.txt"], {},
          ["my file.txt"], commit),
    *both("getFiles > git working tree > should gracefully skip files that are deleted after having been committed",
          ["foo.txt"], {}, [], lambda r: (commit(r), (r / "foo.txt").unlink())),
    *both("getFiles > git working tree > should return the correct hash on a modified file", ["foo.txt"], {},
          ["foo.txt"], lambda r: (commit(r), (r / "foo.txt").write_text("changed"))),
]


@pytest.mark.parametrize("mode,files,build,expected,setup", CASES)
def test_files(tmp_path: Path, mode: str, files: list[str], build: dict[str, Any], expected: list[str],
               setup: Callable[[Path], None] | None) -> None:
    check(make(tmp_path / "p", files, build, setup), mode, expected, build.get("include"))


@pytest.mark.parametrize("mode", [vector(VCS, "VcsHandler > getTreeVersion > should not include the module config "
                                              "file in the file list", "repo")])
def test_config_file_is_not_in_the_list(tmp_path: Path, mode: str) -> None:
    root = make(tmp_path / "p", ["b", "d"], {})
    check(root, mode, ["b", "d"])  # project.garden.yml holds the Build: it is left out


@pytest.mark.parametrize("mode", [vector(VCS, "VcsHandler > getTreeVersion > should apply project-level excludes if "
                                              "module's path is same as root and no include is set", "repo"),
                                  vector(VCS, "VcsHandler > getTreeVersion > should not apply project-level excludes if "
                                              "module's path is same as root but include is set", "subtree")])
def test_project_root_excludes(tmp_path: Path, mode: str) -> None:
    files = ["foo", ".gitmodules", "debug-info-1/x", ".garden/y"]
    check(make(tmp_path / "a", files, {}), mode, ["foo"])
    check(make(tmp_path / "b", files, {"include": ["foo", ".gitmodules", "debug-info-1/*"]}), mode,
          ["foo", ".gitmodules", "debug-info-1/x"])


@pytest.mark.parametrize("mode", [vector(VCS, "VcsHandler > getTreeVersion > should exclude files specified in the "
                                              "version.excludeFiles field", "repo")])
def test_exclude_files(tmp_path: Path, mode: str) -> None:
    a = compute_versions(load_project(make(tmp_path / "a", [], {"include": ["foo.txt"]}), git=INFO))["a"]
    b = compute_versions(load_project(make(tmp_path / "b", ["foo.txt"], {"include": ["foo.txt"]}), git=INFO))["a"]
    c = compute_versions(load_project(make(tmp_path / "c", ["foo.txt"], {"include": ["foo.txt"],
                                                                         "version": {"excludeFiles": ["*.txt"]}}),
                                      git=INFO))["a"]
    assert (a.files, b.files, c.files) == ((), ("foo.txt",), ("foo.txt",))
    assert a.content_hash != b.content_hash and a.content_hash == c.content_hash


@pytest.mark.parametrize("mode", [vector(VCS, "VcsHandler > getTreeVersion > should not be affected by changes to the "
                                              "module's garden.yml that don't affect the module config", "repo")])
def test_config_file_edits_that_change_nothing(tmp_path: Path, mode: str) -> None:
    root = make(tmp_path / "p", ["x"], {})
    before = compute_versions(load_project(root, git=INFO))["a"]
    with open(root / "project.garden.yml", "a") as fh:
        fh.write("\n---")
    assert compute_versions(load_project(root, git=INFO))["a"] == before


W = "getFiles > git working tree > "


@pytest.mark.parametrize("mode,files,build,expected,setup", [
    *both(W + "should work with no commits in repo", [], {}, []),
    *both(W + "should return tracked files as absolute paths with hash", ["foo.txt"], {}, ["foo.txt"], commit),
    *both(W + "should return untracked files as absolute paths with hash", ["foo.txt"], {}, ["foo.txt"]),
    *both(W + "should work with tracked+modified files with spaces in the name", ["my file.txt"], {}, ["my file.txt"],
          lambda r: (commit(r), (r / "my file.txt").write_text("fooo"))),
    *both(W + "should work with untracked files with spaces in the name", ["my file.txt"], {}, ["my file.txt"]),
    vector(VCS, "VcsHandler > getTreeVersion > should sort the list of files in the returned version", "repo",
           ["c", "b", "d"], {}, ["b", "c", "d"], None),
])
def test_working_tree(tmp_path: Path, mode: str, files: list[str], build: dict[str, Any], expected: list[str],
                      setup: Callable[[Path], None] | None) -> None:
    check(make(tmp_path / "p", files, build, setup), mode, expected)


@pytest.mark.parametrize("mode", [vector(VCS, "VcsHandler > getTreeVersion > should join the config's base path with "
                                              "source.path (if provided) when calling getFiles", "repo")])
def test_source_path(tmp_path: Path, mode: str) -> None:
    root = make(tmp_path / "p", ["some-dir/some-other-file.txt"], {"include": []})
    (root / "with-source").mkdir()
    (root / "with-source" / "garden.yml").write_text(json.dumps(
        {"kind": "Build", "type": "container", "name": "with-source", "source": {"path": "../some-dir"}}))
    version = compute_versions(load_project(root, git=INFO), git_scan_mode=mode)["with-source"]  # type: ignore[arg-type]
    assert version.files == ("some-other-file.txt",)
