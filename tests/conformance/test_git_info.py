"""Garden's vectors for the git facts templates see (`${git.branch}` ...) and for blob hashing
(core/test/unit/src/vcs/git.ts: getPathInfo, hashObject). Our test code; Garden's data."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from farm.garden.context import read_git_info
from farm.version import hash_file
from tests.conformance.garden import GIT, vector

PI = "GitRepoHandler > getPathInfo > "
HO = "GitRepoHandler > hashObject > "


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("commits,expected", [
    vector(GIT, PI + "should return the current branch name when there are commits in the repo", True, ("main", True)),
    # Garden's `git rev-parse --abbrev-ref HEAD` fails before the first commit and it reports "";
    # the farm reads the unborn branch's name (tests/conformance/README.md, "git.branch before a commit").
    vector(GIT, PI + "should return empty strings with no commits in repo", False, ("main", False),
           differs="git.branch before the first commit"),
])
def test_path_info(tmp_path: Path, commits: bool, expected: tuple[str, bool]) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    if commits:
        (tmp_path / "f").write_text("x")
        git(tmp_path, "add", "-A")
        git(tmp_path, "commit", "-q", "-m", "init")
    info = read_git_info(tmp_path)
    assert (info.branch, bool(info.commit_hash)) == expected


@pytest.mark.parametrize("outside", [vector(GIT, PI + "should return empty strings when given a path outside of a repo",
                                            True)])
def test_path_info_outside_a_repo(tmp_path: Path, outside: bool) -> None:
    info = read_git_info(tmp_path)
    assert (info.branch, info.commit_hash, info.origin_url) == ("", "", "")


@pytest.mark.parametrize("how", [
    vector(GIT, HO + "should return the same result as `git hash-object` for a file", "hash-object"),
    vector(GIT, HO + "should return the same result as `git ls-files` for a file", "ls-files"),
    vector(GIT, HO + "should return the same result as `git ls-files` for a symlink", "symlink"),
])
def test_hash_object(tmp_path: Path, how: str) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "foo").write_text("iogjeiojgeowigjewoijoeiw")
    path = tmp_path / "foo"
    if how == "symlink":
        os.symlink("foo", tmp_path / "bar")
        path = tmp_path / "bar"
    if how == "hash-object":
        expected = git(tmp_path, "hash-object", str(path))
    else:
        git(tmp_path, "add", str(path))
        expected = git(tmp_path, "ls-files", "-s", str(path)).split(" ")[1]
    assert hash_file(path) == expected
