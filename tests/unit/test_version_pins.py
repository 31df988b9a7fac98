"""farm/version.py pinned by known answers (issue 19): fixed inputs give these exact version strings.

The image tag of every Build is this string, and so are the registry caches: a change to the hashing
must fail here rather than silently rebuild everything. The literals were checked outside Python:

    git hash-object         FROM scratch\\n -> c35f1b5f5e29f0e2942c58a7e82005733977ebdd
                            print(1)\\n     -> b917a726c93f902e43291d9009d6488385133b67
    printf 'Dockerfile-c35f…' | sha256sum                                   -> 366ae67a1c… (base's content hash)
    printf 'Dockerfile-c35f….src/main.py-b917…' | sha256sum                 -> d6158e5d07… (api's)
    printf 'v-5fa5c968da.366ae67a1c' | sha256sum                            -> 1d28258ab0f1… (base)
    printf 'v-192e809df0.d6158e5d07.build.base.v-1d28258ab0' | sha256sum    -> f194f90bbe51… (api)

The config versions (v-5fa5c968da, v-192e809df0) come from farm.garden.action_version, whose rule is
held to real Garden 0.14.20 by tests/conformance/test_action_versions.py.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from farm.errors import ConfigError
from farm.garden import load_project
from farm.version import BuildVersion, compute_versions, content_hash, git_blob_hash, hash_file
from tests.unit.garden.helpers import GIT, write
from tests.unit.test_version import API, BASE, make, versions

BASE_V = "v-1d28258ab0"
BASE_FULL = "v-1d28258ab0f14d5532fa207b70d625e0ec2587f4832fd0ab11f04cfb6ff4ace0"
API_V = "v-f194f90bbe"
API_FULL = "v-f194f90bbe518ae3bc455b64d5ab46e3e987572581b4fdc53e78de93d2e565f5"
BLOB_DOCKERFILE = "c35f1b5f5e29f0e2942c58a7e82005733977ebdd"
BLOB_MAIN = "b917a726c93f902e43291d9009d6488385133b67"


@pytest.mark.parametrize("git", [False, True])
def test_known_versions(tmp_path: Path, git: bool) -> None:
    v = versions(make(tmp_path, git=git))
    assert v["base"] == BuildVersion(version_string=BASE_V, version_full=BASE_FULL, content_hash="366ae67a1c",
                                     config_version="v-5fa5c968da", files=("Dockerfile",))
    assert v["api"] == BuildVersion(version_string=API_V, version_full=API_FULL, content_hash="d6158e5d07",
                                    config_version="v-192e809df0", files=("Dockerfile", "src/main.py"),
                                    dependencies=(("build.base", BASE_V),))


def test_exclude_dependencies_drop_the_dependency_from_the_hash(tmp_path: Path) -> None:
    # sha256("v-192e809df0.d6158e5d07"): `version` is not part of the config hash, so only the
    # dependency pair leaves the hashed string
    root = make(tmp_path, git=False)
    write(root, {"api/garden.yml": API + "version:\n  excludeDependencies: [build.base]\n"})
    api = versions(root)["api"]
    assert api.version_full == "v-cd95940e42aaee925c63f7363c826abd122e690761104600fafc82bf5eb1f3bd"
    assert api.config_version == "v-192e809df0" and api.dependencies == ()


@pytest.mark.parametrize("fields", ["[[spec, buildArgs, A]]", "[spec.buildArgs.A]"])
def test_exclude_fields_pin_the_config_version(tmp_path: Path, fields: str) -> None:
    root = make(tmp_path, git=False)
    write(root, {"api/garden.yml": API + f"version:\n  excludeFields: {fields}\n"})
    api = versions(root)["api"]
    assert (api.config_version, api.version_string) == ("v-0f4257b82a", "v-5d88d3f950")
    write(root, {"api/garden.yml": API.replace('A: "1"', 'A: "2"') + f"version:\n  excludeFields: {fields}\n"})
    assert versions(root)["api"].version_string == "v-5d88d3f950"  # the excluded field does not count


def test_exclude_values_from_the_build_and_the_project_both_apply(tmp_path: Path) -> None:
    root = make(tmp_path, git=False)
    write(root, {"api/garden.yml": API + "version:\n  excludeValues: ['1']\n"})
    by_build = versions(root)["api"].config_version
    write(root, {"api/garden.yml": API.replace('A: "1"', 'A: "2"') + "version:\n  excludeValues: ['2']\n"})
    assert versions(root)["api"].config_version == by_build  # "1" and "2" both became the same mark
    assert by_build != "v-192e809df0"


def test_a_dependency_version_given_as_known(tmp_path: Path) -> None:
    # sha256("v-192e809df0.d6158e5d07.build.base.v-aaaaaaaaaa")[:10] == 73828b334c
    root = make(tmp_path, git=False)
    base = BuildVersion("v-aaaaaaaaaa", "v-" + "a" * 64, "0" * 10, "v-bbbbbbbbbb", ())
    stale = BuildVersion("v-cccccccccc", "v-" + "c" * 64, "0" * 10, "v-cccccccccc", ())
    v = compute_versions(load_project(root, git=GIT), known={"base": base, "gone": stale})
    assert sorted(v) == ["api", "base"]  # a known version of a Build that no longer exists is dropped
    assert v["base"] is base
    assert v["api"].version_string == "v-73828b334c"
    assert v["api"].dependencies == (("build.base", "v-aaaaaaaaaa"),)


def test_a_known_api_version_is_kept_as_given(tmp_path: Path) -> None:
    root = make(tmp_path, git=False)
    api = BuildVersion("v-dddddddddd", "v-" + "d" * 64, "0" * 10, "v-dddddddddd", ())
    v = compute_versions(load_project(root, git=GIT), known={"api": api})
    assert v["api"] is api and v["base"].version_string == BASE_V


def test_dependency_pairs_are_sorted(tmp_path: Path) -> None:
    root = make(tmp_path, git=False)
    write(root, {"api/garden.yml": API.replace("[build.base]", "[build.zed, build.base]"),
                 "zed/garden.yml": "kind: Build\ntype: container\nname: zed\n", "zed/Dockerfile": "FROM scratch\n"})
    v = versions(root)
    assert [k for k, _ in v["api"].dependencies] == ["build.base", "build.zed"]
    assert v["zed"].content_hash == "366ae67a1c"


def test_a_dependency_cycle_is_one_config_error(tmp_path: Path) -> None:
    root = make(tmp_path, git=False)
    write(root, {"base/garden.yml": BASE + "dependencies: [build.api]\n"})
    with pytest.raises(ConfigError, match=r"dependency cycle: (api -> base -> api|base -> api -> base)"):
        versions(root)


def test_a_cycle_found_by_the_version_computation_itself(tmp_path: Path) -> None:
    # a project whose loader did not check (builds edited after loading): the computation refuses too
    root = make(tmp_path, git=False)
    project = load_project(root, git=GIT)
    project.builds["base"].dependencies.append("api")
    with pytest.raises(ConfigError, match="^dependency cycle: ") as exc:
        compute_versions(project)
    assert "api" in str(exc.value) and "base" in str(exc.value)


def test_include_nothing_is_the_zero_hash(tmp_path: Path) -> None:
    # sha256("v-<config>.0000000000"): the files are not read at all
    root = make(tmp_path, git=False)
    write(root, {"base/garden.yml": BASE + "include: []\n"})
    base = versions(root)["base"]
    assert (base.content_hash, base.files) == ("0000000000", ())
    assert base.version_string != BASE_V


def test_bad_exclude_values_regex_names_the_field(tmp_path: Path) -> None:
    root = make(tmp_path, git=False)
    write(root, {"api/garden.yml": API + "version:\n  excludeValues: ['(']\n"})
    with pytest.raises(ConfigError, match=r"bad regex: missing \)") as exc:
        versions(root)
    assert exc.value.field == "version.excludeValues"
    assert str(exc.value.file).endswith("api/garden.yml")


def test_bad_exclude_dependency_names_the_file(tmp_path: Path) -> None:
    root = make(tmp_path, git=False)
    write(root, {"api/garden.yml": API + "version:\n  excludeDependencies: [nope]\n"})
    with pytest.raises(ConfigError) as exc:
        versions(root)
    assert exc.value.field == "version.excludeDependencies[0]"
    assert str(exc.value.file).endswith("api/garden.yml")


# --- blob ids and the content hash -------------------------------------------------------------------

@pytest.mark.parametrize("data,blob", [
    (b"", "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"),
    (b"FROM scratch\n", BLOB_DOCKERFILE),
    (b"print(1)\n", BLOB_MAIN),
])
def test_git_blob_ids(tmp_path: Path, data: bytes, blob: str) -> None:
    assert git_blob_hash(data) == blob
    (tmp_path / "f").write_bytes(data)
    assert hash_file(tmp_path / "f") == blob


def test_blob_id_of_a_file_over_the_read_chunk(tmp_path: Path) -> None:
    # 3 MiB + 1 of b"a": `head -c 3145729 /dev/zero | tr '\\0' a | git hash-object --stdin`
    (tmp_path / "big").write_bytes(b"a" * (3 * 1024 * 1024 + 1))
    assert hash_file(tmp_path / "big") == "46851012b5afe8af9b4d3d098945bf3d9ea4047a"


def test_blob_id_of_a_symlink_is_its_target_text(tmp_path: Path) -> None:
    os.symlink("src/main.py", tmp_path / "l")
    assert hash_file(tmp_path / "l") == git_blob_hash(b"src/main.py") == "a8c92b0d41567b5b2c1e176ac84cba9dfff68e1b"


def test_content_hash_known_answers() -> None:
    assert content_hash([]) == "e3b0c44298"  # sha256 of nothing
    assert content_hash([("Dockerfile", BLOB_DOCKERFILE)]) == "366ae67a1c"
    assert content_hash([("Dockerfile", BLOB_DOCKERFILE), ("src/main.py", BLOB_MAIN)]) == "d6158e5d07"


# --- symlinks: inside the project they are hashed, outside they are skipped ---------------------------

@pytest.mark.parametrize("target,kept", [
    ("src/main.py", True),
    ("..", True),                # the project root itself is inside
    ("../base/Dockerfile", True),
    ("../..", False),
    ("../../x", False),
    ("/etc/passwd", False),
])
def test_symlink_boundary_in_repo_mode(tmp_path: Path, target: str, kept: bool) -> None:
    root = make(tmp_path / "p", git=False)
    os.symlink(target, root / "api" / "l")
    v = versions(root)["api"]
    assert ("l" in v.files) is kept
    assert v.skipped_symlinks == (() if kept else ("l",))


# --- which files: include/exclude normalisation, root-only excludes ------------------------------------

def files_of(root: Path, mode: str | None = None, name: str = "api") -> tuple[str, ...]:
    return compute_versions(load_project(root, git=GIT), git_scan_mode=mode)[name].files  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["repo", "subtree"])
def test_a_plain_include_directory_covers_every_depth(tmp_path: Path, mode: str) -> None:
    root = make(tmp_path, git=False)
    write(root, {"api/garden.yml": API + "include: [Dockerfile, src]\n", "api/src/a/b/deep.py": "d",
                 "api/other.txt": "o"})
    assert files_of(root, mode) == ("Dockerfile", "src/a/b/deep.py", "src/main.py")


def test_include_everything_is_no_include_in_subtree_mode(tmp_path: Path) -> None:
    # with `**/*` the excludes are gitignore rules (any depth), as without an include
    root = make(tmp_path, git=False)
    write(root, {"api/garden.yml": API + "include: ['**/*']\nexclude: ['*.log']\n", "api/a.log": "1",
                 "api/src/b.log": "2"})
    assert files_of(root, "subtree") == ("Dockerfile", "src/main.py")


@pytest.mark.parametrize("exclude,files", [
    ("[tmp/]", ("Dockerfile", "data", "src/main.py")),       # a directory: everything below it
    ("[data/]", ("Dockerfile", "data", "src/main.py", "tmp/x")),  # a trailing slash never names a file
    ("['./tmp//']", ("Dockerfile", "data", "src/main.py")),
    ("[data]", ("Dockerfile", "src/main.py", "tmp/x")),
])
def test_repo_mode_exclude_normalisation(tmp_path: Path, exclude: str, files: tuple[str, ...]) -> None:
    root = make(tmp_path, git=False)
    write(root, {"api/garden.yml": API + f"exclude: {exclude}\n", "api/tmp/x": "x", "api/data": "d"})
    assert files_of(root, "repo") == files


@pytest.mark.parametrize("mode", ["repo", "subtree"])
def test_root_excludes_apply_to_a_build_at_the_root_only(tmp_path: Path, mode: str) -> None:
    root = make(tmp_path, git=False)
    write(root, {"garden.yml": "kind: Build\ntype: container\nname: top\n", "Dockerfile": "FROM scratch\n",
                 "debug-info-1/x": "x", "api/debug-info-2/y": "y"})
    assert "debug-info-2/y" in files_of(root, mode)
    top = files_of(root, mode, "top")
    assert "api/debug-info-2/y" in top and "debug-info-1/x" not in top and "Dockerfile" in top


def test_a_source_directory_outside_the_project(tmp_path: Path) -> None:
    # the loader refuses it first; the version computation refuses it too, naming the field
    root = make(tmp_path / "p", git=False)
    project = load_project(root, git=GIT)
    (tmp_path / "elsewhere").mkdir()
    api = project.builds["api"]
    project.builds["api"] = api.model_copy(update={"source_dir": tmp_path / "elsewhere"})
    with pytest.raises(ConfigError) as exc:
        compute_versions(project)
    assert exc.value.message == "the Build's source directory is outside the project"
    assert (exc.value.file, exc.value.field) == (str(api.config_file), "source.path")


def test_a_config_file_outside_the_project_is_fine(tmp_path: Path) -> None:
    root = make(tmp_path / "p", git=False)
    project = load_project(root, git=GIT)
    base = project.builds["base"]
    project.builds["base"] = base.model_copy(update={"config_file": tmp_path / "elsewhere" / "garden.yml"})
    assert compute_versions(project)["base"].files == ("Dockerfile", "garden.yml")


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    from farm.version import _try_hash

    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"^cannot read .*file/x: \[Errno 20\] Not a directory"):
        _try_hash(tmp_path / "file" / "x")
    assert _try_hash(tmp_path / "gone") is None
    assert _try_hash(tmp_path) is None


def test_exclude_files_leave_the_hash_not_the_context(tmp_path: Path) -> None:
    root = make(tmp_path, git=False)
    write(root, {"api/garden.yml": API + "version:\n  excludeFiles: [src/main.py]\n"})
    api = versions(root)["api"]
    assert api.files == ("Dockerfile", "src/main.py")
    assert api.content_hash == "366ae67a1c"  # Dockerfile alone, as for base


@pytest.mark.parametrize("git", [False, True])
def test_a_file_named_dot_garden_is_not_in_the_context(tmp_path: Path, git: bool) -> None:
    root = make(tmp_path, git=False)
    write(root, {"api/.garden": "x\n", "api/zzz": "z\n"})
    if git:
        from tests.unit.garden.helpers import git_init

        git_init(root)
    assert versions(root)["api"].files == ("Dockerfile", "src/main.py", "zzz")


def test_a_deinitialised_submodule_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    import subprocess

    from tests.unit.garden.helpers import commit_all, git_init

    sub = tmp_path / "lib"
    write(sub, {"lib.txt": "from a submodule\n"})
    git_init(sub)
    root = make(tmp_path / "proj", api__zzz="z\n")
    run = lambda *a: subprocess.run(["git", "-c", "protocol.file.allow=always", *a], cwd=root,  # noqa: E731
                                    check=True, capture_output=True)
    run("submodule", "add", "-q", str(sub), "api/vendor/lib")
    commit_all(root)
    run("submodule", "deinit", "-q", "-f", "api/vendor/lib")
    assert versions(root)["api"].files == ("Dockerfile", "src/main.py", "zzz")
    (root / "api/Dockerfile").unlink()  # deleted in the worktree: the files after it stay
    assert versions(root)["api"].files == ("src/main.py", "zzz")


def test_a_config_error_from_the_action_names_its_file(tmp_path: Path) -> None:
    root = make(tmp_path, git=False)
    write(root, {"api/garden.yml": API + "apiVersion: garden.io/v1\n"})
    with pytest.raises(ConfigError) as exc:
        versions(root)
    assert exc.value.file == str(root / "api" / "garden.yml") and exc.value.field == "apiVersion"


def test_include_nothing_known_answer(tmp_path: Path) -> None:
    # sha256("v-5fa5c968da.0000000000"): `include` is not part of the config hash
    root = make(tmp_path, git=False)
    write(root, {"base/garden.yml": BASE + "include: []\n"})
    assert versions(root)["base"] == BuildVersion(
        version_string="v-f44f1c6382", content_hash="0000000000", config_version="v-5fa5c968da", files=(),
        version_full="v-f44f1c6382dabedea937c9568ebfe8dd00ee5ee226776c5962ed15b38443ab86")


PROJECT_EXTRA = """\
dotIgnoreFile: .farmignore
excludeValuesFromActionVersions: ['[12]']
scan:
  git:
    mode: subtree
"""


def test_project_settings_reach_the_versions(tmp_path: Path) -> None:
    from tests.unit.garden.helpers import PROJECT

    root = make(tmp_path, git=False)
    write(root, {"project.garden.yml": PROJECT.replace("defaultEnvironment", PROJECT_EXTRA + "defaultEnvironment"),
                 "api/.farmignore": "*.tmp\n", "api/a.tmp": "t", "api/.gardenignore": "*.txt\n", "api/b.txt": "b",
                 "api/garden.yml": API + "exclude: ['*.log']\n", "api/src/c.log": "c"})
    project = load_project(root, git=GIT)
    assert (project.dot_ignore_file, project.git_scan_mode) == (".farmignore", "subtree")
    expected = {n: v for n, v in compute_versions(project).items()}
    # the dot-ignore file and the scan mode: subtree excludes *.log at any depth
    assert expected["api"].files == (".farmignore", ".gardenignore", "Dockerfile", "b.txt", "src/main.py")
    # the project's excludeValues: buildArgs A "1" and "2" hash alike
    write(root, {"api/garden.yml": API.replace('A: "1"', 'A: "2"') + "exclude: ['*.log']\n"})
    assert compute_versions(load_project(root, git=GIT))["api"].config_version == expected["api"].config_version
    # without the project's listing, the same listing is made again from the same settings
    again = dataclasses.replace(load_project(root, git=GIT), listing=None)
    assert compute_versions(again)["api"].files == expected["api"].files


def test_without_a_listing_the_versions_are_the_same(tmp_path: Path) -> None:
    project = dataclasses.replace(load_project(make(tmp_path, git=False), git=GIT), listing=None)
    v = compute_versions(project)
    assert (v["base"].version_string, v["api"].version_string) == (BASE_V, API_V)


def test_without_a_listing_and_nothing_to_list(tmp_path: Path) -> None:
    root = make(tmp_path, git=False)
    write(root, {"base/garden.yml": BASE + "include: []\n", "api/garden.yml": API + "include: []\n"})
    project = dataclasses.replace(load_project(root, git=GIT), listing=None)
    assert compute_versions(project)["base"].version_string == "v-f44f1c6382"


def test_unmodified_tracked_files_hash_as_git_stores_them(tmp_path: Path) -> None:
    # core.autocrlf: the worktree has CRLF, git's blob (and so Garden's hash) has LF. The farm takes
    # git's blob id for an unmodified file, so the version is the LF one: api's known content hash.
    import subprocess

    root = make(tmp_path, git=False)
    (root / "api/src/main.py").write_bytes(b"print(1)\r\n")
    run = lambda *a: subprocess.run(["git", *a], cwd=root, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    run("config", "core.autocrlf", "true")
    run("add", "-A")
    run("-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "init")
    assert (root / "api/src/main.py").read_bytes() == b"print(1)\r\n"
    api = versions(root)["api"]
    assert (api.content_hash, api.version_string) == ("d6158e5d07", API_V)
