from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from farm.errors import ConfigError
from farm.garden import load_project
from farm.garden.action_version import EXCLUDED_MARK, replace_exclude_values
from farm.version import BuildVersion, compute_versions, git_blob_hash, hash_file
from tests.unit.garden.helpers import GIT, PROJECT, commit_all, git_init, write

API = """\
kind: Build
type: container
name: api
dependencies: [build.base]
spec:
  buildArgs: {A: "1"}
"""
BASE = "kind: Build\ntype: container\nname: base\n"


def make(tmp_path: Path, git: bool = True, **extra: str) -> Path:
    files = {"project.garden.yml": PROJECT, "api/garden.yml": API, "api/Dockerfile": "FROM scratch\n",
             "api/src/main.py": "print(1)\n", "base/garden.yml": BASE, "base/Dockerfile": "FROM scratch\n"}
    files.update({k.replace("__", "/"): v for k, v in extra.items()})
    write(tmp_path, files)
    if git:
        git_init(tmp_path)
    return tmp_path


def versions(root: Path) -> dict[str, BuildVersion]:
    return compute_versions(load_project(root, git=GIT))


def test_blob_hash_matches_git(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"hello\n" * 1000)
    expected = subprocess.run(["git", "hash-object", str(f)], capture_output=True, text=True).stdout.strip()
    assert hash_file(f) == git_blob_hash(f.read_bytes()) == expected


def test_shape_and_files(tmp_path: Path) -> None:
    v = versions(make(tmp_path))
    api = v["api"]
    assert api.version_string.startswith("v-") and len(api.version_string) == 12
    assert api.version_full.startswith(api.version_string) and len(api.version_full) == 66
    assert api.files == ("Dockerfile", "src/main.py")  # garden.yml itself is not in the context
    assert api.dependencies == (("build.base", v["base"].version_string),)


def test_content_hash_formula(tmp_path: Path) -> None:
    v = versions(make(tmp_path))
    docker, main = git_blob_hash(b"FROM scratch\n"), git_blob_hash(b"print(1)\n")
    entries = sorted([f"Dockerfile-{docker}", f"src/main.py-{main}"])
    assert v["api"].content_hash == hashlib.sha256(".".join(entries).encode()).hexdigest()[:10]
    full = hashlib.sha256(".".join([v["api"].config_version, v["api"].content_hash, "build.base",
                                    v["base"].version_string]).encode()).hexdigest()
    assert v["api"].version_full == "v-" + full


def test_git_and_non_git_agree(tmp_path: Path) -> None:
    a = versions(make(tmp_path / "a"))
    b = versions(make(tmp_path / "b", git=False))
    assert {k: x.version_string for k, x in a.items()} == {k: x.version_string for k, x in b.items()}


def test_changes(tmp_path: Path) -> None:
    root = make(tmp_path)
    v0 = versions(root)
    (root / "api/src/main.py").write_text("print(2)\n")  # modified, uncommitted
    v1 = versions(root)
    assert v1["api"].version_string != v0["api"].version_string
    assert v1["base"] == v0["base"]
    commit_all(root)
    assert versions(root)["api"] == v1["api"]  # committing does not change the version
    (root / "base/Dockerfile").write_text("FROM scratch\nENV A=1\n")
    v2 = versions(root)
    assert v2["base"].version_string != v1["base"].version_string
    assert v2["api"].version_string != v1["api"].version_string  # through the dependency


def test_gardenignore_and_untracked(tmp_path: Path) -> None:
    root = make(tmp_path)
    write(root, {"api/src/new.txt": "x\n"})
    v0 = versions(root)
    assert "src/new.txt" in v0["api"].files
    (root / "api/.gardenignore").write_text("*.log\n")
    (root / "api/debug.log").write_text("x")
    v1 = versions(root)
    assert "debug.log" not in v1["api"].files
    (root / "api/debug.log").write_text("y")
    assert versions(root)["api"].content_hash == v1["api"].content_hash


def test_gitignore_is_not_honoured(tmp_path: Path) -> None:
    root = make(tmp_path)
    write(root, {"api/.gitignore": "*.tmp\n"})
    (root / "api/a.tmp").write_text("x")
    assert "a.tmp" in versions(root)["api"].files


def test_include_exclude_and_exclude_files(tmp_path: Path) -> None:
    api = API + "include: [Dockerfile, src/**/*]\nexclude: ['**/*.md']\nversion:\n  excludeFiles: [src/VERSION]\n"
    root = make(tmp_path)
    write(root, {"api/garden.yml": api, "api/src/README.md": "r", "api/src/VERSION": "1", "api/other": "o"})
    v0 = versions(root)["api"]
    assert v0.files == ("Dockerfile", "src/VERSION", "src/main.py")
    (root / "api/src/VERSION").write_text("2")
    (root / "api/other").write_text("changed")
    (root / "api/src/README.md").write_text("changed")
    assert versions(root)["api"].version_string == v0.version_string


def test_empty_include(tmp_path: Path) -> None:
    root = make(tmp_path)
    write(root, {"api/garden.yml": API + "include: []\n"})
    v = versions(root)["api"]
    assert v.content_hash == "0000000000" and v.files == ()


def test_config_changes(tmp_path: Path) -> None:
    root = make(tmp_path)
    v0 = versions(root)["api"]
    write(root, {"api/garden.yml": API.replace('A: "1"', 'A: "2"')})
    assert versions(root)["api"].config_version != v0.config_version
    write(root, {"api/garden.yml": API + "description: whatever\n"})
    assert versions(root)["api"].version_string == v0.version_string


def test_unsafe_symlinks_skipped(tmp_path: Path) -> None:
    root = make(tmp_path, git=False)
    os.symlink("/etc/passwd", root / "api/abs")
    os.symlink("../../outside", root / "api/out")
    os.symlink("src/main.py", root / "api/ok")
    v = versions(root)["api"]
    assert set(v.skipped_symlinks) == {"abs", "out"}
    assert "ok" in v.files


@pytest.mark.parametrize("git", [True, False])
def test_dot_garden_excluded(tmp_path: Path, git: bool) -> None:
    root = make(tmp_path, git=git)
    write(root, {"api/.garden/x": "1", ".garden/y": "2"})
    assert not any(f.startswith(".garden") for f in versions(root)["api"].files)


def test_submodule_files_are_included(tmp_path: Path) -> None:
    sub = tmp_path / "lib"
    write(sub, {"lib.txt": "from a submodule\n"})
    git_init(sub)
    root = make(tmp_path / "proj")
    run = lambda *a: subprocess.run(["git", "-c", "protocol.file.allow=always", *a], cwd=root,  # noqa: E731
                                    check=True, capture_output=True)
    run("submodule", "add", "-q", str(sub), "api/vendor/lib")
    commit_all(root)
    v = versions(root)["api"]
    assert "vendor/lib/lib.txt" in v.files
    (root / "api/vendor/lib/lib.txt").write_text("changed\n")
    assert versions(root)["api"].version_string != v.version_string


def test_deleted_tracked_file_leaves_the_context(tmp_path: Path) -> None:
    root = make(tmp_path)
    (root / "api/src/main.py").unlink()
    v = versions(root)["api"]
    assert v.files == ("Dockerfile",)
    assert v.content_hash == hashlib.sha256(f"Dockerfile-{git_blob_hash(b'FROM scratch' + bytes([10]))}".encode()
                                            ).hexdigest()[:10]


def test_tracked_symlinks(tmp_path: Path) -> None:
    root = make(tmp_path, git=False)
    os.symlink("/etc/passwd", root / "api/abs")
    os.symlink("src/main.py", root / "api/ok")
    git_init(root)
    v = versions(root)["api"]
    assert v.skipped_symlinks == ("abs",) and "ok" in v.files
    expected = versions(root)
    assert expected["api"].version_string == v.version_string


def test_entries_follow_absolute_path_order(tmp_path: Path) -> None:
    # The config sits below its source dir: "../zzz.txt" sorts first as a relative path, last by absolute path.
    root = make(tmp_path)
    write(root, {"ctx/sub.garden.yml": "kind: Build\ntype: container\nname: up\nsource: {path: ..}\n"
                                       "include: [ctx/**/*, zzz.txt]\n",
                 "ctx/Dockerfile": "FROM scratch\n", "ctx/x.txt": "x", "zzz.txt": "top"})
    v = versions(root)["up"]
    assert v.files == ("ctx/Dockerfile", "ctx/x.txt", "zzz.txt")
    entries = [("Dockerfile", git_blob_hash(b"FROM scratch\n")), ("x.txt", git_blob_hash(b"x")),
               ("../zzz.txt", git_blob_hash(b"top"))]
    assert v.content_hash == hashlib.sha256(".".join(f"{p}-{h}" for p, h in entries).encode()).hexdigest()[:10]


# --- the config hash as Garden computes it (farm.garden.action_version) ------------------------

def config_of(tmp_path: Path, extra: str) -> str:
    root = make(tmp_path)
    write(root, {"api/garden.yml": API + extra})
    return versions(root)["api"].config_version


def test_validated_config_is_hashed(tmp_path: Path) -> None:
    base = config_of(tmp_path / "a", "")
    # Defaults written out, or in another spelling Garden's schema converts, hash the same.
    assert config_of(tmp_path / "b", "timeout: '600'\nallowPublish: 'true'\napiVersion: garden.io/v0\n") == base
    assert config_of(tmp_path / "c", "logLevel: debug\n") != base  # not a non-versioned key in Garden


def test_secrets_are_redacted_in_the_hash(tmp_path: Path) -> None:
    without = config_of(tmp_path / "a", "")
    root = make(tmp_path / "b")
    secret = 'buildArgs: {A: "1"}\n  secrets: {t: %s}'
    write(root, {"api/garden.yml": API.replace('buildArgs: {A: "1"}', secret % "one")})
    one = versions(root)["api"].config_version
    write(root, {"api/garden.yml": API.replace('buildArgs: {A: "1"}', secret % "two")})
    assert versions(root)["api"].config_version == one != without  # Garden hashes each value as "***"


def test_exclude_values_first_matching_pattern_only(tmp_path: Path) -> None:
    # Garden replaces with the first pattern that matches a value and stops there.
    out = replace_exclude_values({"spec": {"h": "a.b"}}, [], ["a", "b"])
    assert out["spec"]["h"] == f"{EXCLUDED_MARK}.b"


def test_exclude_fields_stop_at_a_longer_path(tmp_path: Path) -> None:
    # Garden's loop `break`s at the first exclude path longer than the current one (kept: it is in the hash).
    config = {"spec": {"a": {"b": 1}, "c": 2}}
    assert replace_exclude_values(config, [["spec", "a", "b"], ["spec", "c"]], []) == {"spec": {"a": {}, "c": 2}}
    assert replace_exclude_values(config, [["spec", "c"], ["spec", "a", "b"]], []) == {"spec": {"a": {}}}


def test_exclude_dependencies_compare_full_keys(tmp_path: Path) -> None:
    root = make(tmp_path)
    write(root, {"api/garden.yml": API + "version:\n  excludeDependencies: [build.base]\n"})
    assert versions(root)["api"].dependencies == ()
    write(root, {"api/garden.yml": API + "version:\n  excludeDependencies: [base]\n"})
    with pytest.raises(ConfigError, match="invalid action reference") as err:
        versions(root)
    assert err.value.field == "version.excludeDependencies[0]"


def test_action_api_version_must_be_v0(tmp_path: Path) -> None:
    root = make(tmp_path)
    write(root, {"api/garden.yml": API + "apiVersion: garden.io/v1\n"})
    with pytest.raises(ConfigError, match="garden.io/v0") as err:
        versions(root)
    assert err.value.field == "apiVersion"


def test_repo_scan_mode_excludes_plain_names_at_the_top_only(tmp_path: Path) -> None:
    root = make(tmp_path)
    write(root, {"api/garden.yml": API + "exclude: ['*.log', tmp]\n", "api/a.log": "1", "api/src/b.log": "2",
                 "api/tmp/x": "3", "api/src/tmp/y": "4"})
    repo = compute_versions(load_project(root, git=GIT))["api"].files
    subtree = compute_versions(load_project(root, git=GIT), git_scan_mode="subtree")["api"].files
    assert "src/b.log" in repo and "src/tmp/y" in repo and "a.log" not in repo and "tmp/x" not in repo
    assert not any(f.endswith(".log") or "tmp/" in f for f in subtree)


def test_symlinks_out_of_the_action_count_in_repo_mode(tmp_path: Path) -> None:
    # Garden checks symlinks against the directory it scanned: the repository in repo mode.
    root = make(tmp_path, git=False)
    write(root, {"shared/lib.txt": "shared\n"})
    os.symlink("../shared/lib.txt", root / "api/lib.txt")
    git_init(root)
    project = load_project(root, git=GIT)
    assert "lib.txt" in compute_versions(project)["api"].files
    assert compute_versions(project, git_scan_mode="subtree")["api"].skipped_symlinks == ("lib.txt",)
