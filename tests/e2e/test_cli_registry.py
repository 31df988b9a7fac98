"""`farm registry check` as a user runs it, against REAL registries: a Distribution registry with
token auth (the test-run JWT issuer) as the deployment and cache registry, and the stack's
htpasswd registry holding the private base image."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_project
from tests.integration.registry_services import Account, TokenIssuer, token_registry

pytestmark = pytest.mark.e2e

WRITER = "wr-" + uuid.uuid4().hex
READER = "rd-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def token_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    issuer = TokenIssuer(accounts={"writer": Account(lambda p: p == WRITER),
                                   "reader": Account(lambda p: p == READER, frozenset({"pull"}))})
    try:
        with token_registry(tmp_path_factory.mktemp("token-registry"), issuer) as host:
            yield host
    finally:
        issuer.stop()


def stack_login(stack_env: dict[str, str]) -> tuple[str, dict[str, str]]:
    config = json.loads((Path(stack_env["DOCKER_CONFIG"]) / "config.json").read_text())
    host = stack_env["FARM_REGISTRY"]
    return host, config["auths"][host]


def docker_config(tmp: Path, entries: dict[str, dict[str, str]]) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "config.json").write_text(json.dumps({"auths": entries}))
    return tmp


def login(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def project(root: Path, token_host: str, base_image: str) -> Path:
    proj = write_project(root, {"api": {"Dockerfile": f"ARG BASE={base_image}\nFROM $BASE AS build\n"
                                                      "FROM scratch\nCOPY --from=build /bin/busybox /busybox\n"}},
                         namespace="team", mode="cluster-buildkit")
    text = (proj / "project.garden.yml").read_text()
    host, _, port = token_host.partition(":")
    stack_host = os.environ["FARM_REGISTRY"]
    text = text.replace(f"hostname: {stack_host.split(':')[0]}\n      port: {stack_host.split(':')[1]}",
                        f"hostname: {host}\n      port: {port}")
    (proj / "project.garden.yml").write_text(text)
    return proj


def farm(args: list[str], config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "farm.cli", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, check=False)


def test_a_writer_can_use_every_registry(stack_env: dict[str, str], token_host: str, tmp_path: Path) -> None:
    stack_host, stack_auth = stack_login(stack_env)
    proj = project(tmp_path / "p", token_host, stack_env["FARM_BASE_IMAGE"])
    config = docker_config(tmp_path / "cfg", {token_host: login("writer", WRITER), stack_host: stack_auth})
    out = farm(["registry", "check", "--project", str(proj)], config)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"registry {token_host}  ok" in out.stdout
    assert "team/api:v-" in out.stdout and "(deployment)" in out.stdout
    assert "team/api:_buildcache  (cache)  pull ok  push ok" in out.stdout
    assert f"registry {stack_host}  ok" in out.stdout
    assert "library/busybox:1.36  (base image of api)  pull ok  push -" in out.stdout
    assert f"credentials  auths: auths entry in {config}/config.json (user 'writer')" in out.stdout
    assert WRITER not in out.stdout + out.stderr


def test_a_read_only_account_cannot_push_and_says_so(stack_env: dict[str, str], token_host: str,
                                                      tmp_path: Path) -> None:
    stack_host, stack_auth = stack_login(stack_env)
    proj = project(tmp_path / "p", token_host, stack_env["FARM_BASE_IMAGE"])
    config = docker_config(tmp_path / "cfg", {token_host: login("reader", READER), stack_host: stack_auth})
    out = farm(["registry", "check", "--project", str(proj)], config)
    assert out.returncode == 1
    assert f"cannot push to {token_host}/team/api" in out.stdout
    assert f"error: the farm cannot use 1 of 2 registries: {token_host}" in out.stderr
    assert "Traceback" not in out.stderr
    assert READER not in out.stdout + out.stderr


def test_json_names_sources_and_reasons_never_secrets(stack_env: dict[str, str], token_host: str,
                                                       tmp_path: Path) -> None:
    stack_host, stack_auth = stack_login(stack_env)
    proj = project(tmp_path / "p", token_host, stack_env["FARM_BASE_IMAGE"])
    wrong = "wrong-" + WRITER
    config = docker_config(tmp_path / "cfg", {token_host: login("writer", wrong)})   # nothing for the base image
    out = farm(["registry", "check", "--project", str(proj), "--json"], config)
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["ok"] is False
    by_host = {r["registry"]: r for r in doc["registries"]}
    token = by_host[token_host]
    assert token["credentials"]["source"] == "auths"
    reason = token["repositories"][0]["pull"]["reason"]
    assert f"registry {token_host} refused the credentials of 'writer'" in reason
    base = by_host[stack_host]
    assert base["credentials"]["source"] == "none"
    assert base["repositories"][0]["roles"] == ["base image of api"]
    assert "cannot pull from" in base["repositories"][0]["pull"]["reason"]
    secret_auth = stack_auth["auth"]
    stack_password = base64.b64decode(secret_auth).decode().partition(":")[2]
    for secret in (wrong, WRITER, secret_auth, stack_password):
        assert secret not in out.stdout + out.stderr


def test_farm_build_with_a_read_only_account_stops_before_anything_is_sent(
        stack_env: dict[str, str], token_host: str, tmp_path: Path) -> None:
    import redis

    stack_host, stack_auth = stack_login(stack_env)
    proj = project(tmp_path / "p", token_host, stack_env["FARM_BASE_IMAGE"])
    config = docker_config(tmp_path / "cfg", {token_host: login("reader", READER), stack_host: stack_auth})
    r = redis.Redis.from_url(stack_env["FARM_BROKER_URL"])
    jobs_before = set(r.scan_iter("farm:job:*"))
    out = farm(["build", "--project", str(proj)], config)
    assert out.returncode == 1
    assert f"cannot push to {token_host}/team/api" in out.stderr
    assert "context" not in out.stderr and "queued" not in out.stderr    # nothing uploaded or enqueued
    assert set(r.scan_iter("farm:job:*")) == jobs_before
    assert READER not in out.stdout + out.stderr
