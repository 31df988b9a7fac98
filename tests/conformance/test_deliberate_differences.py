"""Where the farm knowingly does something other than Garden 0.14.20: each case names the Garden
source it differs from, asserts the farm's behaviour, and has a row in README.md's table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from farm.garden import GitInfo, load_project
from farm.garden.template_functions import call_helper
from farm.images import ImageId, cache_refs, image_outputs, parse_image_id
from farm.version import compute_versions
from tests.conformance.garden import vector
from workers.builders.buildkit_cache import image_flags

HELPERS_SRC = "core/src/plugins/container/helpers.ts"
BUILDKIT_SRC = "core/src/plugins/kubernetes/container/build/buildkit.ts"
INFO = GitInfo(branch="main", commit_hash="0" * 40)


@pytest.mark.parametrize("image_id,farm", [
    # Garden splits at the last ':' whatever it is: {repository: "localhost", tag: "5000/team/api"}.
    vector(HELPERS_SRC, "parseImageId: a registry port and no tag", "localhost:5000/team/api",
           ImageId("localhost:5000", "team", "api", "latest"), differs="image id with a port and no tag"),
    # Garden: {repository: "api@sha256", tag: "<digest hex>"}.
    vector(HELPERS_SRC, "parseImageId: a digest", "team/api@sha256:" + "a" * 64,
           ImageId(None, "team", "api", "latest"), differs="image id with a digest"),
])
def test_image_ids(image_id: str, farm: ImageId) -> None:
    assert parse_image_id(image_id) == farm


def _project(tmp: Path, provider: dict[str, Any], build: dict[str, Any] | None = None) -> Any:
    (tmp / "a").mkdir(parents=True, exist_ok=True)
    (tmp / "project.garden.yml").write_text(json.dumps(
        {"apiVersion": "garden.io/v1", "kind": "Project", "name": "p", "environments": [{"name": "dev"}],
         "providers": [{"name": "kubernetes", "context": "c", **provider}]}))
    (tmp / "a" / "garden.yml").write_text(json.dumps({"kind": "Build", "type": "container", "name": "a", **(build or {})}))
    return load_project(tmp, git=INFO)


def _flags(p: Any) -> list[str]:
    build = p.builds["a"]
    return image_flags(cache_refs(build, p.provider),
                       deployment_image_id=image_outputs(build, p.provider, "v-1").deployment_image_id)


@pytest.mark.parametrize("cache,expected_output", [
    # Garden lists every inline cache in --output, so the import-only `main` tag is overwritten by a branch build.
    vector(BUILDKIT_SRC, "getBuildkitImageFlags: an inline cache with export: false",
           [{"type": "registry", "mode": "inline", "tag": "_buildcache-main", "export": False}],
           'type=image,"name=gcr.io/team/a:v-1",push=true', differs="inline cache with export: false"),
])
def test_inline_import_only_cache_is_not_pushed(tmp_path: Path, cache: list[dict[str, Any]], expected_output: str) -> None:
    p = _project(tmp_path, {"buildMode": "cluster-buildkit", "deploymentRegistry": {"hostname": "gcr.io", "namespace": "team"},
                            "clusterBuildkit": {"cache": cache}})
    assert _flags(p)[_flags(p).index("--output") + 1] == expected_output


@pytest.mark.parametrize("cache,ref", [
    # Garden: `${hostname}/${namespace}/...` with namespace undefined writes "cache.example.com/undefined/a".
    vector(BUILDKIT_SRC, "getCacheImageName: a cache registry without namespace",
           [{"type": "registry", "registry": {"hostname": "cache.example.com"}, "tag": "_buildcache"}],
           "type=registry,ref=cache.example.com/a:_buildcache", differs="cache registry without namespace"),
])
def test_cache_registry_without_namespace(tmp_path: Path, cache: list[dict[str, Any]], ref: str) -> None:
    p = _project(tmp_path, {"buildMode": "cluster-buildkit", "deploymentRegistry": {"hostname": "gcr.io", "namespace": "team"},
                            "clusterBuildkit": {"cache": cache}})
    assert ref in _flags(p)


@pytest.mark.parametrize("dotted,listed", [
    # Garden's schema takes only arrays of strings here and refuses the config.
    vector("core/src/actions/base.ts", "version.excludeFields given as a dotted string", "spec.buildArgs.A",
           ["spec", "buildArgs", "A"], differs="excludeFields as a dotted string"),
])
def test_dotted_exclude_fields(tmp_path: Path, dotted: str, listed: list[str]) -> None:
    def version(path: Path, value: str, field: Any) -> str:
        p = _project(path, {}, {"spec": {"buildArgs": {"A": value}}, "version": {"excludeFields": [field]}})
        return compute_versions(p)["a"].config_version
    assert version(tmp_path / "1", "x", dotted) == version(tmp_path / "2", "y", dotted) == \
        version(tmp_path / "3", "z", listed)


@pytest.mark.parametrize("name,args,farm", [
    # Garden reads a date-time without offset in the machine's time zone; the farm in UTC.
    vector("core/src/template/functions/date.ts", "formatDateUtc: a date-time without offset", "formatDateUtc",
           ["2021-01-01T10:00:00", "HH:mm"], "10:00", differs="dates without a time zone"),
    # lodash keeps letters of every script; the farm's word splitter knows Latin letters only.
    vector("core/src/template/functions/index.ts", "kebabCase: letters outside the Latin script", "kebabCase",
           ["feature/привет-мир"], "feature", differs="kebabCase/camelCase of non-Latin letters"),
    # js-yaml folds strings longer than 80 columns; PyYAML does not.
    vector("core/src/template/functions/index.ts", "yamlEncode: a long string", "yamlEncode",
           [{"k": "word " * 20}], "k: 'word word word word word word word word word word word word word word word word"
           " word word word word '\n", differs="yamlEncode line folding"),
])
def test_helpers(name: str, args: list[Any], farm: Any) -> None:
    assert call_helper(name, args) == farm
