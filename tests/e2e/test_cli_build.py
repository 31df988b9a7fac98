"""The `farm` command as CI runs it: a subprocess against the real stack and a real worker."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from tests.conftest import broker_holds, write_project

pytestmark = pytest.mark.e2e


def farm(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "farm.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=600)


def _project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "p", {"api": {"Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n",
                                                  "a.txt": uuid.uuid4().hex}})


def test_build_json_then_cached(worker: object, tmp_path: Path) -> None:
    root = _project(tmp_path)
    first = farm("build", "--project", str(root), "--json")
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    (b,) = doc["builds"]
    assert b["name"] == "api" and b["status"] == "built"
    assert b["version"].startswith("v-") and len(b["version"]) == 12
    assert b["image"] == f"{os.environ['FARM_REGISTRY']}/farmtest/api:{b['version']}"
    assert b["digest"].startswith("sha256:")
    assert b["timings"]["total_s"] > 0

    second = farm("build", "--project", str(root), "--json")
    assert second.returncode == 0, second.stderr
    (c,) = json.loads(second.stdout)["builds"]
    assert c["status"] == "cached" and c["digest"] == b["digest"]
    assert "queued" not in second.stderr

    human = farm("build", "--project", str(root))
    assert human.stdout.strip() == f"{b['image']}@{b['digest']}"


def test_failed_build_exits_1_with_cause_and_log(worker: object, tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"bad": {"Dockerfile": f"FROM scratch\nLABEL x={uuid.uuid4().hex}\nCOPY nope /\n"}})
    out = farm("build", "--project", str(root))
    assert out.returncode == 1
    assert "bad: FAILED" in out.stderr and "nope" in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_build_name_is_a_usage_error(stack_env: dict[str, str], tmp_path: Path) -> None:
    out = farm("build", "nosuch", "--project", str(_project(tmp_path)))
    assert out.returncode == 2
    assert "nosuch" in out.stderr and "api" in out.stderr and "Traceback" not in out.stderr


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "api" / "garden.yml").write_text("kind: Build\ntype: container\nname: api\nspec: [unclosed\n")
    out = farm("build", "--project", str(root))
    assert out.returncode == 2
    assert "garden.yml:" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unreachable_redis_is_one_clear_line(tmp_path: Path, stack_env: dict[str, str]) -> None:
    out = farm("build", "--project", str(_project(tmp_path)), "--force",
               env={"FARM_BROKER_URL": "redis://127.0.0.1:1/0"})
    assert out.returncode == 1
    assert "cannot reach the broker" in out.stderr and "Traceback" not in out.stderr


def test_registry_auth_failure_is_one_clear_line(tmp_path: Path, stack_env: dict[str, str]) -> None:
    bad = tmp_path / "dockercfg"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps(
        {"auths": {stack_env["FARM_REGISTRY"]: {"auth": base64.b64encode(b"farm:wrong-password").decode()}}}))
    out = farm("build", "--project", str(_project(tmp_path)), env={"DOCKER_CONFIG": str(bad)})
    assert out.returncode == 1
    assert "refused" in out.stderr and stack_env["FARM_REGISTRY"] in out.stderr
    assert "wrong-password" not in out.stderr and "Traceback" not in out.stderr


def test_registry_password_never_leaves_the_docker_config(worker: object, tmp_path: Path,
                                                          stack_env: dict[str, str]) -> None:
    cfg = json.loads((Path(stack_env["DOCKER_CONFIG"]) / "config.json").read_text())
    password = base64.b64decode(cfg["auths"][stack_env["FARM_REGISTRY"]]["auth"]).decode().split(":", 1)[1]
    assert len(password) >= 16
    out = farm("build", "--project", str(_project(tmp_path)), "--json")
    assert out.returncode == 0, out.stderr
    assert password not in out.stdout + out.stderr
    # Nowhere in the broker: job records, log streams, task messages, results.
    assert broker_holds(stack_env, password) == []
    # Nor in what Flower shows of the tasks.
    import httpx
    tasks = httpx.get(stack_env["FARM_FLOWER_URL"] + "/api/tasks", timeout=10).text
    assert password not in tasks


def test_no_wait_then_status_and_logs(worker: object, tmp_path: Path) -> None:
    root = _project(tmp_path)
    sent = farm("build", "--project", str(root), "--no-wait", "--json")
    assert sent.returncode == 0, sent.stderr
    (job,) = json.loads(sent.stdout)["queued"]
    followed = farm("logs", job["job_id"], "--follow")
    assert followed.returncode == 0 and "farm: built sha256:" in followed.stdout
    shown = farm("status", job["job_id"], "--json")
    (record,) = json.loads(shown.stdout)["jobs"]
    assert record["status"] == "built" and record["digest"].startswith("sha256:") and record["build"] == "api"
    missing = farm("status", "nosuchjob")
    assert missing.returncode == 2 and "no such job" in missing.stderr
