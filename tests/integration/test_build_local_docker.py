"""A real build, end to end: a real worker process on the real Redis builds with the real engine
and pushes to the real registry (integration: redis, docker-registry, dockerd, celery worker)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from farm import build as flow
from farm import plan
from farm.broker import redis_client
from farm.jobs import JobStore
from farm.registry import RegistryClient, load_credentials, parse_reference
from farm.settings import get_settings
from farm.status import check_status
from tests.conftest import write_project

pytestmark = pytest.mark.integration


def _run(project_dir: Path, names: list[str] = []) -> tuple[list[plan.PlannedBuild], flow.Outcome]:
    planned = plan.plan(*plan.load(project_dir), names)
    outcome = flow.run(planned, get_settings(), force=False, wait=True, say=lambda text: None,
                       progress=lambda name: None, on_line=lambda job, line: None)  # type: ignore[arg-type,return-value]
    return planned.builds, outcome


def results(outcome: flow.Outcome) -> dict:
    return {name: rs[-1] for name, rs in outcome.results.items()}


def test_builds_pushes_and_then_answers_from_the_registry(worker: object, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    root = write_project(tmp_path / "p", {"api": {
        "Dockerfile": "FROM scratch\nARG GARDEN_ACTION_VERSION\nLABEL v=$GARDEN_ACTION_VERSION\nCOPY data.txt /data.txt\n",
        "data.txt": token}})
    planned, outcome = _run(root)
    res = results(outcome)["api"]
    assert res.status == "built", res.error
    assert res.digest and res.digest.startswith("sha256:")
    assert res.image == planned[0].outputs.deployment_image_id
    assert res.image.startswith(f"{os.environ['FARM_REGISTRY']}/farmtest/api:v-")

    # The registry serves exactly the manifest the worker pushed.
    settings = get_settings()
    ref = parse_reference(res.image)
    with RegistryClient(ref.host, load_credentials(settings.docker_config, ref.host), insecure=True) as reg:
        info = reg.head_manifest(ref.repository, ref.ref)
    assert info is not None and info.digest == res.digest

    # Second submit: answered by the status check, nothing enqueued (one `cached` record for the history).
    jobs_before = set(redis_client(settings).scan_iter("farm:job:*"))
    _, again = _run(root)
    assert again.queued == [] and results(again)["api"].status == "cached"
    assert check_status(planned[0], settings).digest == res.digest
    (cached,) = set(redis_client(settings).scan_iter("farm:job:*")) - jobs_before
    record = redis_client(settings).hgetall(cached)
    assert record["status"] == "cached" and record["digest"] == res.digest and "request" not in record


def test_failing_dockerfile_gives_a_failed_result_with_the_log(worker: object, tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"bad": {
        "Dockerfile": f"FROM scratch\nLABEL t={uuid.uuid4().hex}\nCOPY does-not-exist.txt /x\n"}})
    _, outcome = _run(root)
    res = results(outcome)["bad"]
    assert res.status == "failed"
    assert "exit" in (res.error or "")
    assert any("does-not-exist.txt" in line for line in res.log_tail)
    record = JobStore(redis_client(get_settings())).get(res.job_id or "")
    assert record["status"] == "failed" and record["error"]


def test_dependency_is_built_before_its_dependant(worker: object, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    root = write_project(tmp_path / "p", {
        "base": {"Dockerfile": f"FROM scratch\nCOPY f /f\n", "f": token},
        "app": {"Dockerfile": "ARG BASE\nFROM scratch\nCOPY g /g\n", "g": token}})
    (root / "app" / "garden.yml").write_text("kind: Build\ntype: container\nname: app\ndependencies: [build.base]\n")
    planned, outcome = _run(root, ["app"])
    assert [b.name for b in planned] == ["base", "app"]
    base, app = results(outcome)["base"], results(outcome)["app"]
    assert base.status == app.status == "built"
    # The dependant started only after its dependency was pushed.
    store = JobStore(redis_client(get_settings()))
    assert float(store.get(app.job_id or "")["started_at"]) >= float(store.get(base.job_id or "")["finished_at"])
