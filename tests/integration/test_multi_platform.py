"""Multi-platform builds through per-platform worker pools: two real worker processes on different
queues, the real registry, the real engine (integration: redis, docker-registry, dockerd, celery).

The platforms are ones the session's shared worker does not consume, so only these pools build them.
A FROM scratch + COPY image needs no emulation for a foreign platform.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from farm.registry import RegistryClient, load_credentials, parse_reference
from farm.settings import get_settings
from tests.conftest import start_worker, stop_worker, write_project

pytestmark = pytest.mark.integration

PLATFORMS = ("linux/ppc64le", "linux/s390x")


def farm_build(root: Path) -> tuple[int, dict, str]:
    out = subprocess.run([sys.executable, "-m", "farm.cli", "build", "--project", str(root), "--json"],
                         capture_output=True, text=True, timeout=300, env=os.environ.copy())
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else {}, out.stderr


def test_fan_out_merge_failure_and_rerun(stack_env: dict[str, str], tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"multi": {"Dockerfile": "FROM scratch\nCOPY data /data\n",
                                                    "data": uuid.uuid4().hex}},
                         extra_build_yaml=f"spec:\n  platforms: {json.dumps(list(PLATFORMS))}\n")
    first = start_worker(stack_env, ["linux/ppc64le"], tmp_path / "w1.log")
    # The s390x pool is broken: it has no registry credentials, so its push is refused.
    (tmp_path / "no-auth").mkdir()
    broken = start_worker({**stack_env, "DOCKER_CONFIG": str(tmp_path / "no-auth")}, ["linux/s390x"],
                          tmp_path / "w2.log")
    try:
        code, doc, err = farm_build(root)
        assert code == 1, err
        (b,) = doc["builds"]
        assert b["status"] == "failed" and b["digest"] is None
        assert "linux/s390x" in b["error"] and "no basic auth credentials" in b["error"]
        by_platform = {p["platform"]: p for p in b["platforms"]}
        assert by_platform["linux/ppc64le"]["status"] == "built"
        assert by_platform["linux/s390x"]["status"] == "failed"

        ref = parse_reference(b["image"])
        settings = get_settings()
        with RegistryClient(ref.host, load_credentials(settings.docker_config, ref.host), insecure=True) as reg:
            assert reg.head_manifest(ref.repository, ref.ref) is None, "no tag when a platform failed"
            ppc = parse_reference(by_platform["linux/ppc64le"]["image"])
            assert reg.head_manifest(ppc.repository, ppc.ref) is not None

        stop_worker(broken)
        broken = start_worker(stack_env, ["linux/s390x"], tmp_path / "w3.log")
        code, doc, err = farm_build(root)
        assert code == 0, err
        assert "queued linux/s390x" in err and "queued linux/ppc64le" not in err  # only the failed one reruns
        (b,) = doc["builds"]
        assert b["status"] == "built" and b["digest"].startswith("sha256:")
        pushed = {p["platform"]: p["digest"] for p in b["platforms"]}
        assert set(pushed) == set(PLATFORMS)

        with RegistryClient(ref.host, load_credentials(settings.docker_config, ref.host), insecure=True) as reg:
            got = reg.get_manifest(ref.repository, ref.ref)
        assert got is not None
        info, body = got
        index = json.loads(body)
        assert info.digest == b["digest"]
        assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
        entries = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]}
        assert entries == pushed  # the index lists exactly the manifests the workers pushed

        code, doc, err = farm_build(root)
        assert code == 0 and doc["builds"][0]["status"] == "cached" and "queued" not in err
    finally:
        stop_worker(first)
        stop_worker(broken)
