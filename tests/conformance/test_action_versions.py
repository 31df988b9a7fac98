"""Garden's action-version vectors (core/test/unit/src/actions/base.ts) and the four numbers real
Garden 0.14.20 gives for this repository's demo project (issue 18, measured by building Garden from
source and running it on config/examples/demo, environment `local`). Our test code; Garden's data."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from farm.garden import GitInfo, load_project
from farm.garden.action_version import (
    EXCLUDED_MARK,
    config_version,
    replace_exclude_values,
    validated_build_config,
)
from farm.garden.jsvalues import stringify
from farm.version import compute_versions
from tests.conformance.garden import ACTIONS_BASE, vector

DEMO = Path(__file__).resolve().parents[2] / "config" / "examples" / "demo"
ISSUE = "issue 18: Garden 0.14.20 run on config/examples/demo"
CV = "getActionConfigVersion > "
RV = "replaceExcludeValues > "


def minimal() -> dict[str, Any]:
    """`minimalActionConfig()` of Garden's test."""
    return {"kind": "Build", "type": "test", "name": "foo", "timeout": 600, "internal": {"basePath": "."},
            "spec": {}}


def version(config: dict[str, Any], project_exclude_values: tuple[str, ...] = ()) -> str:
    v = config.get("version", {})
    return config_version(config, v.get("excludeFields", []), [*v.get("excludeValues", []), *project_exclude_values])


def replaced(config: dict[str, Any], project_exclude_values: tuple[str, ...] = ()) -> Any:
    v = config.get("version", {})
    return replace_exclude_values(config, v.get("excludeFields", []),
                                  [*v.get("excludeValues", []), *project_exclude_values])


UNVERSIONED = {
    "description": ("Description 1", "Description 2"), "disabled": (True, False), "exclude": (["file1"], ["file2"]),
    "include": (["file1"], ["file2"]), "internal": ({"basePath": "./base1"}, {"basePath": "./base2"}),
    "variables": ({"foo": "bar"}, {"bar": "baz"}), "varfiles": (["foo.yml"], ["bar.yml"]),
    "source": ({"path": "path1"}, {"path": "path2"}), "version": ({}, {"excludeValues": ["NOT-FOUND"]}),
}


@pytest.mark.parametrize("field,left,right", [
    vector(ACTIONS_BASE, CV + f"action config version does not change > on {f} field modification", f, a, b)
    for f, (a, b) in UNVERSIONED.items()])
def test_unversioned_fields(field: str, left: Any, right: Any) -> None:
    assert version({**minimal(), field: left}) == version({**minimal(), field: right})


def _spec(spec: dict[str, Any], **version_config: Any) -> dict[str, Any]:
    return {**minimal(), "spec": spec, "version": version_config}


@pytest.mark.parametrize("a,b,project_a,project_b", [
    vector(ACTIONS_BASE, CV + "handles version.excludeValues",
           _spec({"hostname": "a.example.com"}, excludeValues=["a.example.com"]),
           _spec({"hostname": "b.example.com"}, excludeValues=["b.example.com"]), (), ()),
    vector(ACTIONS_BASE, CV + "adds project-level excludeValues to the action's excludeValues",
           _spec({"hostname": "a.example.com"}, excludeValues=[]), _spec({"hostname": "b.example.com"}, excludeValues=[]),
           ("a.example.com",), ("b.example.com",)),
    *[vector(ACTIONS_BASE, CV + f"version.excludeFields > {title}", _spec(spec_a, excludeFields=[path]),
             _spec(spec_b, excludeFields=[path]), (), ())
      for title, spec_a, spec_b, path in [
          ("handles a direct object path match", {"env": {"HOSTNAME": "a.example.com"}},
           {"env": {"HOSTNAME": "b.example.com"}}, ["spec", "env", "HOSTNAME"]),
          ("handles version.excludeFields with numeric array field references", {"array": [{"foo": "A"}]},
           {"array": [{"foo": "B"}]}, ["spec", "array", 0, "foo"]),
          ("handles version.excludeFields with wildcard array field references", {"array": [{"foo": "A"}]},
           {"array": [{"foo": "B"}]}, ["spec", "array", "*", "foo"]),
          ("handles version.excludeFields with wildcard object field references", {"array": [{"foo": "A"}]},
           {"array": [{"foo": "B"}]}, ["spec", "*", "*", "foo"])]],
])
def test_config_version_ignores_excluded(a: dict[str, Any], b: dict[str, Any], project_a: tuple[str, ...],
                                         project_b: tuple[str, ...]) -> None:
    assert version(a, project_a) == version(b, project_b)


ARRAY = {"array": [{"foo": "A", "bar": "A"}, {"foo": "B", "bar": "B"}]}


@pytest.mark.parametrize("config,project,key,expected", [
    vector(ACTIONS_BASE, RV + "handles multiple replacements in the same string",
           _spec({"hostname": "bla.foo.bar.foo"}, excludeValues=["foo"]), (), "hostname",
           f"bla.{EXCLUDED_MARK}.bar.{EXCLUDED_MARK}"),
    vector(ACTIONS_BASE, RV + "adds project-level excludeValues to the action's excludeValues",
           _spec({"hostname": "bla.foo.bar.foo"}, excludeValues=[]), ("foo",), "hostname",
           f"bla.{EXCLUDED_MARK}.bar.{EXCLUDED_MARK}"),
    vector(ACTIONS_BASE, RV + "version.excludeFields > handles a direct object path match",
           _spec({"env": {"HOSTNAME": "a.example.com"}}, excludeFields=[["spec", "env", "HOSTNAME"]]), (), None,
           {"env": {}}),
    vector(ACTIONS_BASE, RV + "version.excludeFields > handles version.excludeFields with numeric array field references",
           _spec({"array": [{"foo": "A"}, {"foo": "B"}]}, excludeFields=[["spec", "array", 0]]), (), "array",
           [{"foo": "B"}]),
    vector(ACTIONS_BASE, RV + "version.excludeFields > handles version.excludeFields with key references under numeric "
           "array field references", _spec({"array": [{"foo": "A"}, {"foo": "B"}]},
                                           excludeFields=[["spec", "array", 0, "foo"]]), (), "array", [{}, {"foo": "B"}]),
    vector(ACTIONS_BASE, RV + "version.excludeFields > handles version.excludeFields with wildcard array field references",
           _spec(ARRAY, excludeFields=[["spec", "array", "*", "foo"]]), (), "array", [{"bar": "A"}, {"bar": "B"}]),
    vector(ACTIONS_BASE, RV + "version.excludeFields > handles version.excludeFields with wildcard object field "
           "references", _spec(ARRAY, excludeFields=[["spec", "array", "*", "*"]]), (), None, {"array": [{}, {}]}),
])
def test_replace_exclude_values(config: dict[str, Any], project: tuple[str, ...], key: str | None,
                                expected: Any) -> None:
    spec = replaced(config, project)["spec"]
    assert (spec if key is None else spec[key]) == expected


# --- whole projects -------------------------------------------------------------------------------

INFO = GitInfo(branch="main", commit_hash="0" * 40)


def project(tmp: Path, builds: list[dict[str, Any]]) -> Any:
    """Environment `dev` of a project with these container Builds, one directory each."""
    (tmp / "project.garden.yml").write_text(json.dumps(
        {"apiVersion": "garden.io/v1", "kind": "Project", "name": "p", "defaultEnvironment": "dev",
         "environments": [{"name": "dev"}, {"name": "prod"}], "providers": [{"name": "kubernetes", "context": "c"}]}))
    for b in builds:
        (tmp / b["name"]).mkdir(parents=True, exist_ok=True)
        (tmp / b["name"] / "garden.yml").write_text(json.dumps({"kind": "Build", "type": "container", **b}))
    return load_project(tmp, git=INFO)


@pytest.mark.parametrize("dependencies,exclude,expected", [
    vector(ACTIONS_BASE, "getFullActionVersion > returns dependency versions",
           [{"kind": "Build", "name": "foo"}, "build.prepare"], [], ["build.foo", "build.prepare"]),
    vector(ACTIONS_BASE, "getFullActionVersion > excludes dependencies specified in version.excludeDependencies",
           [{"kind": "Build", "name": "prepare"}, {"kind": "Build", "name": "foo"}],
           [{"kind": "Build", "name": "prepare"}], ["build.foo"]),
])
def test_dependency_versions(tmp_path: Path, dependencies: list[Any], exclude: list[Any], expected: list[str]) -> None:
    # Garden's test uses a Run dependency; the farm reads container Builds only, so both are Builds here.
    p = project(tmp_path, [{"name": "foo"}, {"name": "prepare"},
                           {"name": "test", "dependencies": dependencies, "version": {"excludeDependencies": exclude}}])
    assert [k for k, _ in compute_versions(p)["test"].dependencies] == expected


@pytest.mark.parametrize("fields,enabled", [
    vector(ACTIONS_BASE, "actionIsDisabled > returns true if the action is disabled", {"disabled": True}, False),
    vector(ACTIONS_BASE, "actionIsDisabled > returns false if the action is not disabled", {"disabled": False}, True),
    vector(ACTIONS_BASE, "actionIsDisabled > returns false if action environments field is undefined", {}, True),
    vector(ACTIONS_BASE, "actionIsDisabled > returns false if action environments field is set and contains the "
           "environment", {"environments": ["dev"]}, True),
    vector(ACTIONS_BASE, "actionIsDisabled > returns true if action environments field is set and does not contain the "
           "environment", {"environments": ["prod"]}, False),
])
def test_action_is_disabled(tmp_path: Path, fields: dict[str, Any], enabled: bool) -> None:
    assert ("foo" in project(tmp_path, [{"name": "foo", **fields}]).builds) is enabled


def demo_copy(tmp: Path) -> Path:
    """The demo in a fresh git repo: the source hash depends only on file contents and paths
    relative to each Build's config file, so any checkout of these files gives Garden's numbers."""
    root = tmp / "demo"
    shutil.copytree(DEMO, root)
    run = lambda *a: subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *a],  # noqa: E731
                                    cwd=root, check=True, capture_output=True)
    run("init", "-q")
    run("add", "-A")
    run("commit", "-q", "-m", "demo")
    return root


@pytest.mark.parametrize("build,field,expected", [
    vector(ISSUE, "api versionString", "api", "version_string", "v-51d408dd2b"),
    vector(ISSUE, "web versionString", "web", "version_string", "v-9f1d6d5f49"),
    vector(ISSUE, "api sourceVersion", "api", "content_hash", "4d0429d1d5"),
    vector(ISSUE, "api configVersion", "api", "config_version", "v-d0a24d6c0c"),
])
def test_demo_matches_real_garden(tmp_path: Path, build: str, field: str, expected: str) -> None:
    versions = compute_versions(load_project(demo_copy(tmp_path), git=INFO))
    assert getattr(versions[build], field) == expected


@pytest.mark.parametrize("text", [vector(
    ISSUE, "the exact string Garden hashes for api's configVersion",
    '{"allowPublish":true,"apiVersion":"garden.io/v0","buildAtSource":false,"copyFrom":[],"dependencies":[],'
    '"kind":"Build","name":"api","spec":{"buildArgs":{"GREETING":"hello from the farm"},"dockerfile":"Dockerfile"},'
    '"timeout":600,"type":"container"}')])
def test_demo_config_text(tmp_path: Path, text: str) -> None:
    api = load_project(demo_copy(tmp_path), git=INFO).builds["api"]
    assert stringify(replace_exclude_values(validated_build_config(api.raw_config), [], []), sort_keys=True) == text
