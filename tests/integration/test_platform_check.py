"""Never a wrong image: a two-platform local-docker build on one engine (integration: redis,
docker-registry, dockerd, celery worker processes).

The Dockerfile is the demo's `api` (ARG and LABEL steps over FROM scratch): the classic builder's
local cache ignores the platform, so without a per-platform cache the arm64 build took the amd64
layers and an amd64 image was pushed as `-linux-arm64`. Every pushed image's config must name the
platform it is listed under, in the per-platform tags and in the index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from farm.broker import machine_platform
from farm.registry import RegistryClient, load_credentials, parse_reference
from farm.registry.platforms import image_platforms, mismatches
from farm.images import platform_tag
from farm.settings import get_settings
from tests.conftest import start_worker, stop_worker, write_project

pytestmark = pytest.mark.integration

API = ('FROM scratch\nARG GREETING\nARG GARDEN_ACTION_VERSION\n'
       'LABEL org.opencontainers.image.title="demo-api" farm.greeting="${GREETING}" '
       'farm.version="${GARDEN_ACTION_VERSION}"\nCOPY hello.txt /srv/hello.txt\n')
DOCKERFILE = "FROM scratch\nCOPY hello.txt /srv/hello.txt\nCOPY more.txt /srv/more.txt\n"
NATIVE = machine_platform()
FOREIGN = "linux/arm64" if NATIVE != "linux/arm64" else "linux/amd64"
PLATFORMS = sorted([NATIVE, FOREIGN])


def farm_build(root: Path, *args: str) -> tuple[int, dict, str]:
    out = subprocess.run([sys.executable, "-m", "farm.cli", "build", "--project", str(root), "--json", *args],
                         capture_output=True, text=True, timeout=300, env=os.environ.copy())
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else {}, out.stderr


def _project(tmp_path: Path, dockerfile: str) -> Path:
    # A fresh namespace and content, so no earlier run's image or cache helps or hides anything.
    return write_project(tmp_path / "p", {"api": {"Dockerfile": dockerfile, "hello.txt": uuid.uuid4().hex,
                                                  "more.txt": "same in every run\n"}},
                         namespace=f"plat{uuid.uuid4().hex[:8]}",
                         extra_build_yaml=f"spec:\n  platforms: {json.dumps(PLATFORMS)}\n")


def _registry(image: str) -> RegistryClient:
    ref = parse_reference(image)
    return RegistryClient(ref.host, load_credentials(get_settings().docker_config, ref.host), insecure=True)


def test_two_platforms_on_one_engine_are_each_their_own(stack_env: dict[str, str], tmp_path: Path) -> None:
    """One worker serving both platforms on one engine: the second platform's build used to take the
    first one's cached layers and push them under its own tag."""
    root = _project(tmp_path, DOCKERFILE)
    worker = start_worker(stack_env, PLATFORMS, tmp_path / "w.log", modes=["local-docker"])
    try:
        # This machine's platform alone first: its layers are then in the engine's cache ...
        code, doc, err = farm_build(root, "--platform", NATIVE)
        assert code == 0, err
        # ... when the same steps are built for both platforms on the same engine.
        code, doc, err = farm_build(root)
        assert code == 0, err
        (b,) = doc["builds"]
        assert b["status"] == "built", b
        ref = parse_reference(b["image"])
        with _registry(b["image"]) as reg:
            found = image_platforms(reg, ref.repository, ref.ref)
            assert sorted(f.listed or "" for f in found) == PLATFORMS
            assert mismatches(PLATFORMS, found) == [], found
            for p in b["platforms"]:
                pref = parse_reference(p["image"])
                [single] = image_platforms(reg, pref.repository, pref.ref)
                assert single.actual == p["platform"], (p["platform"], single)
    finally:
        stop_worker(worker)


def test_a_foreign_platform_the_worker_cannot_build_waits(stack_env: dict[str, str], tmp_path: Path) -> None:
    """The demo's api (ARG, LABEL over scratch) for a foreign platform on the classic builder: it
    would be committed as this machine's platform, so the job waits for a worker of its platform,
    with the reason shown, and nothing is pushed under the foreign tag."""
    root = _project(tmp_path, API)
    worker = start_worker(stack_env, PLATFORMS, tmp_path / "w.log", modes=["local-docker"])
    try:
        code, doc, err = farm_build(root, "--timeout", "25")
        assert code == 1, err
        assert f"api: {FOREIGN} is waiting: this worker ({NATIVE}) cannot build local-docker for {FOREIGN}" in err
        (b,) = doc["builds"]
        by_platform = {p["platform"]: p for p in b["platforms"]}
        assert by_platform[NATIVE]["status"] == "built"
        assert by_platform[FOREIGN]["status"] != "built"
        with _registry(b["image"]) as reg:
            fref = parse_reference(by_platform[FOREIGN]["image"])
            assert reg.head_manifest(fref.repository, fref.ref) is None
        subprocess.run([sys.executable, "-m", "farm.cli", "cancel", by_platform[FOREIGN]["job_id"]],
                       capture_output=True, text=True, timeout=60, env=os.environ.copy(), check=True)
    finally:
        stop_worker(worker)


def test_a_wrong_image_under_a_platform_tag_is_built_again(stack_env: dict[str, str], tmp_path: Path) -> None:
    """This machine's image under the foreign platform's tag (what the old cache reuse pushed): the
    status check does not count it, the foreign platform is built again, and the index is right."""
    root = _project(tmp_path, DOCKERFILE)
    worker = start_worker(stack_env, PLATFORMS, tmp_path / "w.log", modes=["local-docker"])
    try:
        code, doc, err = farm_build(root, "--platform", NATIVE)      # the version tag: a NATIVE image
        assert code == 0, err
        (b,) = doc["builds"]
        ref = parse_reference(b["image"])
        with _registry(b["image"]) as reg:
            info, body = reg.get_manifest(ref.repository, ref.ref)  # type: ignore[misc]
            wrong_tag = platform_tag(b["version"], FOREIGN)
            reg.put_manifest(ref.repository, wrong_tag, body, info.media_type)
        code, doc, err = farm_build(root)
        assert code == 0, err
        assert f"queued {FOREIGN}" in err and f"{FOREIGN} is already in the registry" not in err
        with _registry(b["image"]) as reg:
            assert mismatches(PLATFORMS, image_platforms(reg, ref.repository, ref.ref)) == []
            [single] = image_platforms(reg, ref.repository, wrong_tag)
            assert single.actual == FOREIGN
    finally:
        stop_worker(worker)
