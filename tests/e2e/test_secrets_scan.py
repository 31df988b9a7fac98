"""Secrets stay secret: after a real build through a real worker and `farm registry check` runs with
good and wrong logins, no secret value used appears in any log file of the test run, any Redis key
(broker, results, job records, log streams), any Flower task page or API answer, Flower's metrics,
the CLI's output (text and --json), or the Python log records of an in-process check at DEBUG.

Secrets: the stack registry's password (and its base64 `auth`), the token registry's passwords,
every bearer token its token service handed out."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from farm.registry.access import Use, check_registry
from farm.registry.docker_config import DockerConfig
from farm.registry.tokens import TOKENS
from tests.conftest import ROOT, broker_holds, write_project
from tests.integration.registry_services import Account, TokenIssuer, token_registry

pytestmark = pytest.mark.e2e

GOOD = "good-" + uuid.uuid4().hex
WRONG = "wrong-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def issuer_and_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TokenIssuer, str]]:
    issuer = TokenIssuer(accounts={"ci": Account(lambda p: p == GOOD)})
    try:
        with token_registry(tmp_path_factory.mktemp("scan-token-registry"), issuer) as host:
            yield issuer, host
    finally:
        issuer.stop()


def farm(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "farm.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=ROOT, timeout=600, check=False)


def test_no_secret_value_anywhere(worker: object, stack_env: dict[str, str], issuer_and_host: tuple[TokenIssuer, str],
                                  tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                  caplog: pytest.LogCaptureFixture) -> None:
    issuer, token_host = issuer_and_host
    stack_config = json.loads((Path(stack_env["DOCKER_CONFIG"]) / "config.json").read_text())
    stack_auth = stack_config["auths"][stack_env["FARM_REGISTRY"]]["auth"]
    stack_password = base64.b64decode(stack_auth).decode().partition(":")[2]
    outputs: list[str] = []

    # 1. a real build through the worker, pushing to the stack's htpasswd registry
    proj = write_project(tmp_path / "p", {"api": {"Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n",
                                                  "a.txt": uuid.uuid4().hex}})
    built = farm(["build", "--project", str(proj), "--json"], {})
    assert built.returncode == 0, built.stderr
    job_ids = [p["job_id"] for b in json.loads(built.stdout)["builds"] for p in b["platforms"]]
    assert job_ids and all(job_ids)
    outputs += [built.stdout, built.stderr]

    # 2. `farm registry check`, good and wrong logins, text and JSON, with the stack login beside them
    for password in (GOOD, WRONG):
        cfg = tmp_path / f"cfg-{password[:4]}"
        cfg.mkdir()
        (cfg / "config.json").write_text(json.dumps({"auths": {
            token_host: {"auth": base64.b64encode(f"ci:{password}".encode()).decode()},
            stack_env["FARM_REGISTRY"]: {"auth": stack_auth}}}))
        for extra in ([], ["--json"]):
            out = farm(["registry", "check", "--project", str(proj), *extra], {"DOCKER_CONFIG": str(cfg)})
            outputs += [out.stdout, out.stderr]

    # 3. in-process checks with every logger at DEBUG (httpx, botocore, google-auth, ours)
    TOKENS.clear()
    with caplog.at_level(logging.DEBUG):
        for password in (GOOD, WRONG):
            config = DockerConfig.from_json({"auths": {token_host: {"username": "ci", "password": password}}})
            result = check_registry(token_host, [Use("team/api", "v-1", ("deployment",), push=True)], config,
                                    insecure=True)
            outputs += [repr(result), json.dumps(result.as_json())]
    outputs += [caplog.text]

    secrets = [GOOD, WRONG, stack_password, stack_auth, *issuer.tokens]
    assert len(issuer.tokens) >= 2          # tokens were handed out, so there was something to leak

    # Flower: the task list, each task's page, the API and the metrics
    flower = stack_env["FARM_FLOWER_URL"]
    pages = ["/api/tasks", "/tasks", "/metrics", "/api/workers"] + [f"/task/{j}" for j in job_ids if j]
    for page in pages:
        resp = httpx.get(flower + page, timeout=30, trust_env=False)
        assert resp.status_code == 200, page
        outputs.append(resp.text)
    assert any(job_ids[0] in text for text in outputs)      # the task pages were really read

    logs = list(Path(stack_env["FARM_STATE_DIR"]).rglob("*.log")) + list(tmp_path_factory.getbasetemp().rglob("*.log"))
    assert logs
    for secret in secrets:
        for text in outputs:
            assert secret not in text
        for log in logs:
            assert secret not in log.read_text(errors="replace"), log
        assert broker_holds(stack_env, secret) == []
