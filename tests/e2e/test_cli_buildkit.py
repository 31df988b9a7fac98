"""cluster-buildkit through the farm: the CLI enqueues, a real worker runs buildctl against the
stack's real buildkitd, which pushes to the real registry (e2e: CLI, redis, celery, buildkitd, registry)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from farm.registry import RegistryClient, load_credentials, parse_reference
from tests.conftest import broker_holds, write_project

pytestmark = pytest.mark.e2e


def farm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "farm.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_multi_stage_build_with_args_target_and_a_secret(worker: object, stack_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    token = secrets.token_hex(16)
    sha = hashlib.sha256(token.encode()).hexdigest()
    dockerfile = f"""\
FROM {stack_env["FARM_BASE_IMAGE"]} AS build
ARG GREETING
RUN --mount=type=secret,id=api-token test "$(sha256sum /run/secrets/api-token | cut -d' ' -f1)" = "{sha}" || exit 9
RUN echo "$GREETING {uuid.uuid4().hex}" > /out.txt
FROM scratch AS final
COPY --from=build /out.txt /out.txt
FROM final AS never
COPY missing-file /nope
"""
    root = write_project(tmp_path / "p", {"api": {"Dockerfile": dockerfile}}, mode="cluster-buildkit",
                         extra_build_yaml=("spec:\n  targetStage: final\n  buildArgs:\n    GREETING: hi\n"
                                           "  secrets:\n    api-token: ${local.env.FARM_TEST_TOKEN}\n"))
    out = farm("build", "--project", str(root), "--json", env={"FARM_TEST_TOKEN": token})
    assert out.returncode == 0, out.stderr
    (b,) = json.loads(out.stdout)["builds"]
    assert b["status"] == "built" and b["digest"].startswith("sha256:")
    assert "buildctl build --frontend=dockerfile.v0" in out.stderr
    assert "--secret id=api-token,env=GARDEN_BUILD_SECRET_API_TOKEN" in out.stderr

    ref = parse_reference(b["image"])
    with RegistryClient(ref.host, load_credentials(Path(stack_env["DOCKER_CONFIG"]), ref.host), insecure=True) as reg:
        info = reg.head_manifest(ref.repository, ref.ref)
        assert info is not None and info.digest == b["digest"]
        # 127.0.0.1:<port> resolves `mode: auto` to inline: the cache tag is pushed as an image too.
        assert reg.head_manifest(ref.repository, "_buildcache") is not None

    # The secret reached the RUN step (it checked its sha) and nothing else: not the CLI's output,
    # the job records, logs, task messages or results (its own key is gone with the job), nor Flower.
    assert token not in out.stdout + out.stderr
    assert broker_holds(stack_env, token) == []
    tasks = httpx.get(stack_env["FARM_FLOWER_URL"] + "/api/tasks", timeout=10).text
    assert token not in tasks

    again = farm("build", "--project", str(root), "--json", env={"FARM_TEST_TOKEN": token})
    assert json.loads(again.stdout)["builds"][0]["status"] == "cached"


def test_failing_run_step_reports_the_cause(worker: object, stack_env: dict[str, str], tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"bad": {
        "Dockerfile": f"FROM {stack_env['FARM_BASE_IMAGE']}\nRUN echo {uuid.uuid4().hex} && exit 7\n"}},
        mode="cluster-buildkit")
    out = farm("build", "--project", str(root), "--json")
    assert out.returncode == 1
    (b,) = json.loads(out.stdout)["builds"]
    assert b["status"] == "failed" and "buildctl" in b["error"]
    assert any("exit code: 7" in line or "exit code 7" in line for line in b["log_tail"]), b["log_tail"]
