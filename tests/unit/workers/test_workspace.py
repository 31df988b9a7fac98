"""The worker's kept build directories: one per project, Build and platform, held by one job at a time."""

from __future__ import annotations

import os
from pathlib import Path

from farm.jobs import BuildRequest
from workers.tasks import _tree_name, _try_lock


def request(**over: object) -> BuildRequest:
    fields: dict[str, object] = dict(
        job_id="j", project="shop", build="api", version="v-1", platform="linux/arm64/v8",
        platforms=["linux/arm64/v8"], mode="cluster-buildkit", image="r/shop/api:v-1", context="sha256:" + "a" * 64,
        context_store="file:///tmp/x", dockerfile="Dockerfile", timeout=600)
    fields.update(over)
    return BuildRequest.model_validate(fields)


def test_one_tree_per_project_build_and_platform_named_safely() -> None:
    assert _tree_name(request()) == "shop--api--linux-arm64-v8"
    assert _tree_name(request(version="v-2")) == _tree_name(request())          # versions share the tree
    assert _tree_name(request(platform="linux/amd64")) != _tree_name(request())
    assert "/" not in _tree_name(request(project="a/../b"))


def test_a_kept_tree_is_held_by_one_job_at_a_time(tmp_path: Path) -> None:
    tree = tmp_path / "kept" / "shop--api--linux-amd64"
    first = _try_lock(tree)
    assert first is not None
    assert _try_lock(tree) is None           # a second job of the same Build takes a fresh directory
    os.close(first)
    again = _try_lock(tree)
    assert again is not None
    os.close(again)
