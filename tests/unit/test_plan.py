"""farm.plan: planned Builds in waves, per-platform refs; and the jobs farm.build makes of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm import build as flow
from farm import plan
from farm.context import UploadStats
from farm.errors import ConfigError, UsageError
from farm.settings import Settings
from tests.conftest import write_project

CTX = UploadStats(digest="sha256:" + "c" * 64, files=1, bytes=1, uploaded_files=1, uploaded_bytes=1)


def _project(tmp_path: Path, deps: dict[str, list[str]], platforms: str = "", mode: str = "local-docker"):
    root = write_project(tmp_path / "p", {n: {"Dockerfile": f"FROM scratch\nLABEL n={n}\n"} for n in deps}, mode=mode)
    for name, ds in deps.items():
        extra = f"dependencies: [{', '.join('build.' + d for d in ds)}]\n" if ds else ""
        (root / name / "garden.yml").write_text(f"kind: Build\ntype: container\nname: {name}\n{extra}{platforms}")
    return plan.load(root)


def test_waves_follow_dependencies(tmp_path: Path) -> None:
    project, versions = _project(tmp_path, {"base": [], "api": ["base"], "web": ["api", "base"], "tool": []})
    waves = plan.plan(project, versions, []).waves
    assert [[b.name for b in w] for w in waves] == [["base", "tool"], ["api"], ["web"]]
    only = plan.plan(project, versions, ["api"]).waves
    assert [[b.name for b in w] for w in only] == [["base"], ["api"]]


def test_unknown_name_lists_the_builds(tmp_path: Path) -> None:
    project, versions = _project(tmp_path, {"api": []})
    with pytest.raises(UsageError, match="nosuch.*Builds: api"):
        plan.plan(project, versions, ["nosuch"])


def test_a_cycle_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        project, versions = _project(tmp_path, {"a": ["b"], "b": ["a"]})
        plan.plan(project, versions, [])


def test_fan_out_jobs_and_their_merge(tmp_path: Path) -> None:
    project, versions = _project(tmp_path, {"api": []}, 'spec:\n  platforms: ["linux/amd64", "linux/arm64"]\n')
    (b,) = plan.plan(project, versions, []).waves[0]
    assert b.fan_out
    tag = b.outputs.deployment_image_id
    assert b.platform_image("linux/arm64") == f"{tag}-linux-arm64"
    requests, merge = flow.jobs_for(project, b, CTX, Settings())
    assert [r.platform for r in requests] == ["linux/amd64", "linux/arm64"]
    assert merge is not None and merge.image == tag
    assert all(r.index == tag and r.context == CTX.digest for r in requests)
    assert merge.platform_images == {"linux/amd64": f"{tag}-linux-amd64", "linux/arm64": f"{tag}-linux-arm64"}

    # A rerun after one platform failed: only the missing one is built, the merge waits for it alone.
    requests, merge = flow.jobs_for(project, b, CTX, Settings(), skip={"linux/amd64": "sha256:x"})
    assert [r.platform for r in requests] == ["linux/arm64"] and merge and merge.platform_images == \
        {"linux/amd64": f"{tag}-linux-amd64", "linux/arm64": f"{tag}-linux-arm64"}


def test_single_platform_and_one_call_push_the_version_tag(tmp_path: Path) -> None:
    project, versions = _project(tmp_path, {"api": []})
    (b,) = plan.plan(project, versions, []).waves[0]
    requests, merge = flow.jobs_for(project, b, CTX, Settings())
    assert merge is None and [r.image for r in requests] == [b.outputs.deployment_image_id]

    project, versions = _project(tmp_path / "bk", {"api": []}, 'spec:\n  platforms: ["linux/amd64", "linux/arm64"]\n',
                                 mode="cluster-buildkit")
    (b,) = plan.plan(project, versions, [], one_call=True).waves[0]
    requests, merge = flow.jobs_for(project, b, CTX, Settings())
    assert merge is None and len(requests) == 1
    assert requests[0].platforms == ["linux/amd64", "linux/arm64"] and requests[0].image == b.outputs.deployment_image_id


def test_one_call_needs_cluster_buildkit(tmp_path: Path) -> None:
    project, versions = _project(tmp_path, {"api": []})
    with pytest.raises(UsageError, match="cluster-buildkit"):
        plan.require_buildable(project, one_call=True)


def test_kaniko_is_buildable_and_its_requests_carry_its_options(tmp_path: Path) -> None:
    project, versions = _project(tmp_path, {"api": []}, mode="kaniko")
    plan.require_buildable(project)
    (b,) = plan.plan(project, versions).builds
    (req,), _ = flow.jobs_for(project, b, CTX, Settings())
    assert req.mode == "kaniko" and req.kaniko == b.kaniko and req.kaniko is not None
