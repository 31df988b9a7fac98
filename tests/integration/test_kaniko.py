"""kaniko mode for real (integration: redis, docker-registry, dockerd, a celery worker, the Kaniko executor
built from source): each build runs in its own executor container on the stack's engine via the
`docker` runtime, reads its context from the farm's context store and pushes to the stack's registry.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from farm import build as flow
from farm import plan
from farm.errors import TransientBuildError
from farm.jobs import BuildRequest
from farm.kaniko import KanikoOptions
from farm.settings import get_settings
from farm.stack import Stack
from farm.stack._services import registry_password
from farm.stack._state import REGISTRY_USER
from tests.conftest import start_worker, stop_worker, write_project
from workers.builder_job import Workspace
from workers.builders.kaniko import executor_job
from workers.runtimes import docker as docker_runtime

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
ACCEPT = ("application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, "
          "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")


DBS = (7, 8, 9, 10)        # Redis databases of this module's workers (test_scheduling has 4 and 5)


@pytest.fixture(scope="module")
def kaniko_image(stack_env: dict[str, str]) -> str:
    image = Stack(Path(stack_env["FARM_STATE_DIR"])).kaniko_image()
    os.environ["FARM_KANIKO_IMAGE"] = image
    return image


@pytest.fixture(scope="module")
def kaniko_worker(stack_env: dict[str, str], kaniko_image: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[bytes]]:
    log = tmp_path_factory.mktemp("kaniko-worker") / "worker.log"
    # Redis databases of this module's own: a stack worker that offers kaniko (`make demo` leaves one
    # running) must not take these builds with its own settings.
    base = stack_env["FARM_BROKER_URL"].rsplit("/", 1)[0]
    own = {"FARM_BROKER_URL": f"{base}/{DBS[0]}", "FARM_RESULT_BACKEND": f"{base}/{DBS[1]}"}
    env = {**stack_env, **own, "FARM_KANIKO_IMAGE": kaniko_image, "FARM_RETRIES": "0"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in own.items():
            mp.setenv(key, value)
        proc = start_worker(env, ["linux/amd64", "linux/arm64"], log, modes=["kaniko"])
        yield proc
        if proc.poll() is None:
            stop_worker(proc)


def project(root: Path, builds: dict[str, dict[str, str]], provider_extra: str = "", build_extra: str = "") -> Path:
    root = write_project(root, builds, mode="kaniko", extra_build_yaml=build_extra)
    if provider_extra:
        config = root / "project.garden.yml"
        config.write_text(config.read_text() + provider_extra)
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "provider"],
                       cwd=root, check=True)
    return root


def build(root: Path) -> tuple[plan.PlannedBuild, flow.Outcome, list[str]]:
    planned = plan.plan(*plan.load(root))
    lines: list[str] = []
    outcome = flow.run(planned, get_settings(), force=False, wait=True, say=lambda text: None,
                       progress=lambda name: (lambda done, total: None),
                       on_line=lambda job, line: lines.append(line))
    return planned.builds[0], outcome, lines


def result(outcome: flow.Outcome, name: str = "api") -> object:
    return outcome.results[name][-1]


def registry(path: str, accept: str = ACCEPT) -> httpx.Response:
    state = Path(os.environ["FARM_STATE_DIR"])
    from farm.stack._state import StackPaths

    return httpx.get(f"http://{os.environ['FARM_REGISTRY']}{path}", headers={"Accept": accept},
                     auth=(REGISTRY_USER, registry_password(StackPaths(state))), trust_env=False, timeout=30)


def file_in_image(image: str, path: str) -> str:
    """The content of `path` in the image's layers (the last layer that has it), read from the registry."""
    repo, _, tag = image.split("/", 1)[1].rpartition(":")
    manifest = registry(f"/v2/{repo}/manifests/{tag}").json()
    found = None
    for layer in manifest["layers"]:
        blob = registry(f"/v2/{repo}/blobs/{layer['digest']}").content
        data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                if member.name.lstrip("./") == path.lstrip("/") and member.isfile():
                    found = tar.extractfile(member).read().decode()  # type: ignore[union-attr]
    assert found is not None, f"{path} not in {image}"
    return found


def executors() -> list[str]:
    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"])
    return [c.name for c in client.containers.list(all=True, filters={"label": docker_runtime.LABEL})]


def test_build_is_pushed_and_served_and_a_rebuild_reuses_the_registry_cache(
        kaniko_worker: object, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    base = os.environ["FARM_BASE_IMAGE"]
    root = project(tmp_path / "p", {"api": {
        "Dockerfile": f"FROM {base}\nRUN echo {token} > /built\nCOPY f /f\n", "f": "one\n"}})
    b, outcome, lines = build(root)
    res = result(outcome)
    assert res.status == "built", (res.error, lines[-20:])
    assert res.digest and res.image == b.outputs.deployment_image_id
    head = registry(f"/v2/farmtest/api/manifests/{res.image.rsplit(':', 1)[1]}")
    assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == res.digest
    assert file_in_image(res.image, "/built") == f"{token}\n"
    assert any("No cached layer found for cmd RUN" in line for line in lines)
    assert executors() == []                    # the executor's container is gone

    # A one-line change: a fresh executor finds the RUN layer in the registry cache.
    (root / "api" / "f").write_text("two\n")
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "change"], cwd=root, check=True)
    b2, outcome2, lines2 = build(root)
    res2 = result(outcome2)
    assert res2.status == "built", res2.error
    assert res2.image != res.image
    assert any(f"Using caching version of cmd: RUN echo {token}" in line for line in lines2), lines2
    assert file_in_image(res2.image, "/f") == "two\n"


def test_cache_repo_from_extra_flags_is_honoured(kaniko_worker: object, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    repo = f"farmtest/kcache-{token[:8]}"
    root = project(tmp_path / "p", {"api": {"Dockerfile": f"FROM {os.environ['FARM_BASE_IMAGE']}\nRUN echo {token}\n"}},
                   provider_extra=f"    kaniko:\n      extraFlags: [\"--cache-repo {os.environ['FARM_REGISTRY']}/{repo}\"]\n")
    _, outcome, lines = build(root)
    assert result(outcome).status == "built", result(outcome).error
    assert any(f"Pushing layer {os.environ['FARM_REGISTRY']}/{repo}:" in line for line in lines), lines
    tags = registry(f"/v2/{repo}/tags/list").json()["tags"]
    assert len(tags) == 1


def test_two_platforms_end_as_an_index(kaniko_worker: object, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    root = project(tmp_path / "p", {"api": {"Dockerfile": "FROM scratch\nCOPY f /f\n", "f": token}},
                   build_extra="spec:\n  platforms: [linux/amd64, linux/arm64]\n")
    b, outcome, _ = build(root)
    results = outcome.results["api"]
    assert [r.status for r in results].count("built") == 3, [(r.platform, r.status, r.error) for r in results]
    index = registry(f"/v2/farmtest/api/manifests/{b.outputs.deployment_image_id.rsplit(':', 1)[1]}").json()
    assert index["mediaType"] in ("application/vnd.oci.image.index.v1+json",
                                  "application/vnd.docker.distribution.manifest.list.v2+json")
    assert sorted(f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]) == \
        ["linux/amd64", "linux/arm64"]
    for m in index["manifests"]:      # each executor built for its own platform
        config_digest = registry(f"/v2/farmtest/api/manifests/{m['digest']}").json()["config"]["digest"]
        assert registry(f"/v2/farmtest/api/blobs/{config_digest}").json()["architecture"] == m["platform"]["architecture"]


def test_failing_run_names_its_cause_with_the_last_lines(kaniko_worker: object, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    root = project(tmp_path / "p", {"api": {
        "Dockerfile": f"FROM {os.environ['FARM_BASE_IMAGE']}\nRUN echo boom-{token} && exit 3\n"}})
    _, outcome, lines = build(root)
    res = result(outcome)
    assert res.status == "failed"
    assert "kaniko: /kaniko/executor exited with code 3: error building image" in (res.error or "")
    assert "exit status 3" in (res.error or ""), res.error
    assert any(f"boom-{token}" in line for line in res.log_tail)
    assert executors() == []


def test_timeout_kills_and_removes_the_executor(kaniko_worker: object, tmp_path: Path) -> None:
    root = project(tmp_path / "p", {"api": {
        "Dockerfile": f"FROM {os.environ['FARM_BASE_IMAGE']}\nRUN echo {uuid.uuid4().hex} && sleep 120\n"}},
        build_extra="timeout: 8\n")
    _, outcome, _ = build(root)
    res = result(outcome)
    assert res.status == "failed" and "timed out after 8 s" in (res.error or ""), res.error
    assert executors() == []


def test_out_of_memory_is_named(kaniko_worker: object, tmp_path: Path) -> None:
    root = project(tmp_path / "p", {"api": {"Dockerfile": (
        f"FROM {os.environ['FARM_BASE_IMAGE']}\nRUN echo {uuid.uuid4().hex}; a=x; while :; do a=\"$a$a\"; done\n")}},
        provider_extra="    resources:\n      builder:\n        limits: {cpu: 1000, memory: 96}\n"
                       "        requests: {cpu: 100, memory: 64}\n")
    _, outcome, _ = build(root)
    res = result(outcome)
    assert res.status == "failed" and "out of memory" in (res.error or ""), res.error
    assert "limit 96Mi" in (res.error or "")
    assert executors() == []


def test_unreachable_registry_is_a_transient_failure_naming_it(kaniko_image: str, tmp_path: Path) -> None:
    """The executor itself against a registry nobody listens on (the pre-build check of `farm build`
    would stop such a build before any executor ran)."""
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /x\n")
    req = BuildRequest(job_id="j", project="p", build="api", version="v-1", platform="linux/amd64", mode="kaniko",
                       image="127.0.0.1:9/nobody/api:v-1", insecure=True, context="sha256:" + "0" * 64,
                       context_store="file:///nowhere", timeout=120, kaniko=KanikoOptions(flags=("--cache=false",)))
    job = executor_job(req, Workspace(context_dir=str(tmp_path), docker_config=get_settings().docker_config,
                                      kaniko_image=kaniko_image))
    with pytest.raises(TransientBuildError) as err:
        docker_runtime.run(job, {}, None)
    assert str(err.value).startswith("a registry is unreachable")
    assert "127.0.0.1:9" in str(err.value) and "connection refused" in str(err.value)
    assert executors() == []


def test_a_worker_killed_mid_build_leaves_no_executor_behind(stack_env: dict[str, str], kaniko_image: str,
                                                             tmp_path: Path) -> None:
    # Its own Redis databases: a queue no other worker of this session consumes.
    redis_url = stack_env["FARM_BROKER_URL"].rsplit("/", 1)[0]
    env = {**stack_env, "FARM_KANIKO_IMAGE": kaniko_image, "FARM_RETRIES": "0",
           "FARM_BROKER_URL": f"{redis_url}/{DBS[2]}", "FARM_RESULT_BACKEND": f"{redis_url}/{DBS[3]}"}
    proc = start_worker(env, ["linux/amd64"], tmp_path / "victim.log", modes=["kaniko"])
    root = project(tmp_path / "p", {"api": {
        "Dockerfile": f"FROM {os.environ['FARM_BASE_IMAGE']}\nRUN echo {uuid.uuid4().hex} && sleep 300\n"}})
    subprocess.run([".venv/bin/farm", "build", "--project", str(root), "--no-wait"], check=True,
                   cwd=Path(__file__).resolve().parents[2], capture_output=True, env={**os.environ, **env})
    deadline = time.monotonic() + 120
    while not executors():
        assert time.monotonic() < deadline, "no executor container started"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)         # the whole worker, pool processes included
    proc.wait()
    assert executors()                          # nobody was left to remove it ...
    second = start_worker(env, ["linux/arm64"], tmp_path / "next.log", modes=["kaniko"])
    try:
        assert executors() == []                # ... until the next worker on this host started
        assert "removed container" in (tmp_path / "next.log").read_text()
    finally:
        stop_worker(second)
