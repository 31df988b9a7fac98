"""farm.preflight: which registries and repositories a plan uses, and for what (no network)."""

from __future__ import annotations

import os
from pathlib import Path

from farm import plan
from farm.preflight import registry_uses
from tests.conftest import write_project


def test_deployment_cache_and_base_images_per_registry(tmp_path: Path) -> None:
    host = os.environ.get("FARM_REGISTRY", "127.0.0.1:5050")     # where write_project's registry is
    root = write_project(tmp_path / "p", {
        "base": {"Dockerfile": "FROM scratch\nLABEL a=b\n"},
        "api": {"Dockerfile": "ARG REG=mirror.example.com\nFROM ${REG}/library/busybox:1.36 AS tools\n"
                              f"FROM {host}/farmtest/base:latest\nCOPY --from=tools /bin/sh /sh\n"},
    }, mode="cluster-buildkit")
    project, versions = plan.load(root)
    uses = {u.host: u for u in registry_uses(plan.plan(project, versions))}
    assert list(uses) == [host, "mirror.example.com"]
    stack = uses[host]
    assert stack.insecure and stack.gar_namespace == "farmtest"
    by_ref = {(u.repository, u.ref): u for u in stack.uses.values()}
    cache = by_ref[("farmtest/api", "_buildcache")]
    assert cache.roles == ("cache",) and cache.push
    assert by_ref[("farmtest/api", versions["api"].version_string)].roles == ("deployment",)
    # another Build's image is a base image that need not exist yet
    base = by_ref[("farmtest/base", "latest")]
    assert base.roles == ("base image of api",) and not base.push and not base.must_exist
    mirror = uses["mirror.example.com"]
    assert not mirror.insecure
    (busybox,) = mirror.uses.values()
    assert (busybox.repository, busybox.ref, busybox.must_exist) == ("library/busybox", "1.36", True)
