"""Property-based tests (hypothesis): versions, templates, globs and a fuzzed loader."""

from __future__ import annotations

import random
import re
import string
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farm.errors import ConfigError
from farm.garden import load_project
from farm.garden.files import list_files, match_any
from farm.garden.models import BuildAction
from farm.garden.templates import FUNCTIONS, TemplateError, resolve_string
from farm.version import _filter, compute_versions, config_version, git_blob_hash
from tests.unit.garden.helpers import GIT, PROJECT, write

names = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=8)
contents = st.binary(max_size=200)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --- versions --------------------------------------------------------------------------------

def _project(tmp: Path, files: dict[str, bytes], build_extra: str = "") -> Path:
    write(tmp, {"project.garden.yml": PROJECT,
                "app/garden.yml": "kind: Build\ntype: container\nname: app\n" + build_extra})
    for rel, data in files.items():
        (tmp / "app" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "app" / rel).write_bytes(data)
    return tmp


def _version(root: Path) -> Any:
    return compute_versions(load_project(root, git=GIT))["app"]


@FAST
@given(st.dictionaries(names, contents, min_size=1, max_size=6), st.data())
def test_version_changes_iff_an_included_file_changes(files: dict[str, bytes], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = _project(Path(d), {f"src/{k}": v for k, v in files.items()} | {"skip/x": b"1"},
                        "include: [src/**/*]\n")
        before = _version(root)
        assert before.files == tuple(sorted(f"src/{k}" for k in files))
        victim = data.draw(st.sampled_from(sorted(files)))
        new = data.draw(contents)
        (root / "app/src" / victim).write_bytes(new)
        (root / "app/skip/x").write_bytes(b"2")  # outside include: never matters
        after = _version(root)
        assert (after.version_string == before.version_string) == (new == files[victim])


@FAST
@given(st.dictionaries(names, contents, min_size=1, max_size=5))
def test_version_is_independent_of_write_order(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        one = _project(Path(a), files)
        two = _project(Path(b), dict(reversed(list(files.items()))))
        assert _version(one).version_string == _version(two).version_string


@given(st.binary(max_size=5000))
def test_blob_hash_shape(data: bytes) -> None:
    h = git_blob_hash(data)
    assert re.fullmatch(r"[0-9a-f]{40}", h)


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=5), max_size=6))
def test_config_version_ignores_key_order(args: dict[str, str]) -> None:
    def build(items: list[tuple[str, str]]) -> BuildAction:
        raw = {"kind": "Build", "type": "container", "name": "a", "spec": {"buildArgs": dict(items)}}
        return BuildAction.model_validate({"name": "a", "configFile": Path("/p/g.yml"), "sourceDir": Path("/p"),
                                           "rawConfig": raw})
    items = list(args.items())
    assert config_version(build(items)) == config_version(build(items[::-1]))


# --- templates ---------------------------------------------------------------------------------

@given(st.text(max_size=40).filter(lambda s: "${" not in s))
def test_plain_strings_are_unchanged(text: str) -> None:
    assert resolve_string(text, {}) == text


@given(st.text(max_size=40))
def test_kebab_case_is_idempotent_and_clean(text: str) -> None:
    once = FUNCTIONS["kebabCase"](text)
    assert re.fullmatch(r"[a-z0-9]*(-[a-z0-9]+)*", once)
    assert FUNCTIONS["kebabCase"](once) == once


@given(st.text(alphabet=string.ascii_letters + "/-_.0123456789", max_size=60))
def test_branch_cache_tag_is_a_valid_docker_tag(branch: str) -> None:
    template = '_buildcache-${slice(kebabCase(git.branch), "0", "30")}'
    if not FUNCTIONS["kebabCase"](branch):
        # Garden's helpers refuse an empty string argument (Joi `string()`), and so does the farm:
        # kebabCase("") and slice("", ...) both fail.
        with pytest.raises(TemplateError, match="not allowed to be empty|must be one of"):
            resolve_string(template, {"git": {"branch": branch}})
        return
    tag = resolve_string(template, {"git": {"branch": branch}})
    assert re.fullmatch(r"[\w][\w.-]{0,127}", tag)


@given(st.text(max_size=30))
def test_random_expressions_fail_cleanly(expr: str) -> None:
    try:
        resolve_string("${" + expr + "}", {"var": {"a": 1}})
    except TemplateError:
        pass


# --- globs -----------------------------------------------------------------------------------

segment = st.text(alphabet=string.ascii_lowercase + ".", min_size=1, max_size=5).filter(lambda s: s not in ".")


@given(st.lists(segment, min_size=1, max_size=4))
def test_double_star_matches_any_depth(parts: list[str]) -> None:
    path = "/".join(parts)
    assert match_any(path, ["**/*"])
    assert match_any(path, [parts[0]])  # a directory (or file) name covers everything below it
    assert match_any(path, ["**/" + parts[-1]])
    assert match_any(path, ["*"]) == (len(parts) == 1)


# --- loader fuzz ---------------------------------------------------------------------------------

VALID = yaml.safe_load(PROJECT)
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-5, 10 ** 6), st.text(max_size=12),
                   st.floats(allow_nan=False),
                   st.sampled_from(["${var.x}", "${nope(", "${git.branch}", "cluster-buildkit", "$${x}", "}", "${",
                                    "../..", "/abs", "${join(1)}", "${slice('ab', 'x')}", "${environment}"]),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


def _mutate(value: Any, rnd: random.Random, leaf: Any) -> Any:
    """Replace or add one node somewhere inside a copy of a valid config."""
    if isinstance(value, dict) and value and rnd.random() < 0.8:
        key = rnd.choice(list(value))
        if rnd.random() < 0.15:
            return {**value, key + "x": leaf}
        return {**value, key: _mutate(value[key], rnd, leaf)}
    if isinstance(value, list) and value and rnd.random() < 0.8:
        i = rnd.randrange(len(value))
        return value[:i] + [_mutate(value[i], rnd, leaf)] + value[i + 1:]
    return leaf


def _never_crashes(root: Path) -> None:
    try:
        project = load_project(root, git=GIT)
        compute_versions(project)
    except ConfigError as exc:
        assert str(exc)  # one clear line
        assert "Traceback" not in str(exc)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2 ** 32), LEAVES)
def test_fuzzed_structures_raise_only_config_errors(seed: int, leaf: Any) -> None:
    mutated = _mutate(VALID, random.Random(seed), leaf)
    build = _mutate({"kind": "Build", "type": "container", "name": "a", "include": ["x"], "source": {"path": "."},
                     "spec": {"buildArgs": {"A": "1"}, "platforms": ["linux/amd64"], "secrets": {"a": "b"}},
                     "timeout": 5, "copyFrom": [{"build": "a", "sourcePath": "/x"}],
                     "version": {"excludeFiles": ["a"]}},
                    random.Random(seed + 1), leaf)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "project.garden.yml").write_text(yaml.safe_dump(mutated))
        (Path(d) / "a").mkdir()
        (Path(d) / "a/garden.yml").write_text(yaml.safe_dump(build))
        _never_crashes(Path(d))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, len(PROJECT)), st.text(max_size=8))
def test_fuzzed_text_raises_only_config_errors(pos: int, junk: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "project.garden.yml").write_text(PROJECT[:pos] + junk + PROJECT[pos:])
        _never_crashes(Path(d))


# --- include / exclude agree with git, run the way Garden's git handler runs it --------------------

TREE = ["src/x.py", "src/a/y.py", "src/a/b/z.py", "src/a/b/tmp/q.txt", "top.py", "docs/r.md", "docs/b/s.md",
        "src.txt", ".hidden/h.txt", "tmp/t.log", "b/c.py", "a/z.py", "a/m/z.py", "x.md"]
PATTERNS = ["*.py", "**/*.py", "src", "src/", "src/*", "src/**/*", "**/b", "b", "*.md", "docs/**", "a/**/z.py",
            "**/tmp/**", "tmp", ".hidden", "s*", "src/a", "top.py", "sr?", "[st]*", "**/b/*", "docs/*.md"]


@pytest.fixture(scope="module")
def git_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("globs")
    for i, rel in enumerate(TREE):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    (root / "docs/.gardenignore").write_text("b/\n")
    (root / ".gardenignore").write_text("*.log\n!tmp/keep.log\n")
    (root / "tmp/keep.log").write_text("k")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", *TREE[::2]], cwd=root, check=True)  # half tracked, half untracked
    return root


def _git_lines(root: Path, *args: str) -> set[str]:
    out = subprocess.run(["git", "--glob-pathspecs", "ls-files", *args], cwd=root, check=True,
                         capture_output=True, text=True).stdout
    return {line.split("\t")[-1] for line in out.splitlines() if line}


def _ours(root: Path, include: list[str] | None, exclude: list[str]) -> set[str]:
    build = BuildAction.model_validate({"name": "a", "configFile": root / "garden.yml", "sourceDir": root,
                                        "include": include, "exclude": exclude})
    keep = _filter(build, at_root=False)
    return {f for f in list_files(root, ".gardenignore").files if keep(f)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(PATTERNS), max_size=2))
def test_excludes_match_git(git_tree: Path, exclude: list[str]) -> None:
    args = [a for p in [*exclude, "**/.garden/**/*"] for a in ("--exclude", p)]
    listed = _git_lines(git_tree, "-s", "--others", "--cached", *args, "--exclude-per-directory", ".gardenignore")
    ignored = _git_lines(git_tree, "--ignored", "--cached", *args, "--exclude-per-directory", ".gardenignore")
    assert _ours(git_tree, None, exclude) == listed - ignored


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2))
def test_includes_match_git(git_tree: Path, include: list[str]) -> None:
    listed = _git_lines(git_tree, "-s", "--others", "--cached", "--exclude-per-directory", ".gardenignore",
                        "--", *include)
    ignored = _git_lines(git_tree, "--ignored", "--cached", "--exclude-per-directory", ".gardenignore")
    assert _ours(git_tree, include, []) == listed - ignored
