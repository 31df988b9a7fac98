"""A per-build docker config used by a REAL builder: local-docker's `docker build --pull` on the
stack's dockerd pulls a private base image from the stack's htpasswd registry whose login only an
imagePullSecret payload holds, then `docker push` goes to a REAL token-auth Distribution registry
with the worker's own login. Without the secret the pull is refused.

(The Secret's bytes are made here as the API server returns them; reading it from a live API
server is the cluster work's part.)"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm.errors import BuildError
from farm.jobs import BuildRequest
from farm.registry.build_config import build_docker_config, private_config_dir
from farm.registry.docker_config import AuthEntry, DockerConfig
from farm.registry.pull_secrets import PullSecret, merge_pull_secrets
from tests.integration.registry_services import Account, TokenIssuer, token_registry
from workers.builders import local_docker
from workers.runtimes import process

pytestmark = pytest.mark.integration

WORKER_PASSWORD = "worker-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def token_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    issuer = TokenIssuer(accounts={"worker": Account(lambda p: p == WORKER_PASSWORD)})
    try:
        with token_registry(tmp_path_factory.mktemp("push-registry"), issuer) as host:
            yield host
    finally:
        issuer.stop()


def pull_secret(stack_env: dict[str, str]) -> PullSecret:
    host = stack_env["FARM_REGISTRY"]
    auth = json.loads((Path(stack_env["DOCKER_CONFIG"]) / "config.json").read_text())["auths"][host]
    payload = json.dumps({"auths": {host: auth}}).encode()
    return PullSecret("base-images", "build", "kubernetes.io/dockerconfigjson",
                      {".dockerconfigjson": base64.b64encode(payload).decode()})


def jobs(tmp_path: Path, base: str, image: str, config_dir: Path) -> list:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY a.txt /a.txt\n")
    (ctx / "a.txt").write_text(uuid.uuid4().hex)
    req = BuildRequest(job_id="j", project="p", build="api", version="v-1", platform="linux/amd64",
                       mode="local-docker", image=image, insecure=True, context="sha256:" + "0" * 64,
                       context_store="file:///nowhere", extra_flags=["--pull"], timeout=300)
    env = (("DOCKER_CONFIG", str(config_dir)),)
    return [dataclasses.replace(j, env=j.env + env) for j in (local_docker.build_job(req, str(ctx)),
                                                               local_docker.push_job(req, str(ctx)))]


def test_a_private_base_image_with_the_secrets_login_then_a_push(stack_env: dict[str, str], token_host: str,
                                                                  tmp_path: Path) -> None:
    worker = DockerConfig(auths={token_host: AuthEntry("worker", WORKER_PASSWORD)})
    merged = merge_pull_secrets([pull_secret(stack_env)])
    config = build_docker_config(worker, merged, [stack_env["FARM_REGISTRY"], token_host])
    image = f"{token_host}/team/api:v-{uuid.uuid4().hex[:8]}"
    lines: list[str] = []
    with private_config_dir(tmp_path / "configs", config) as config_dir:
        for job in jobs(tmp_path, stack_env["FARM_BASE_IMAGE"], image, config_dir):
            lines += process.run(job, {}, None)
    assert local_docker.pushed_digest(lines) is not None
    text = "\n".join(lines)
    assert WORKER_PASSWORD not in text


def test_without_the_secret_the_base_image_is_refused(stack_env: dict[str, str], token_host: str,
                                                      tmp_path: Path) -> None:
    config = build_docker_config(DockerConfig(auths={token_host: AuthEntry("worker", WORKER_PASSWORD)}), None,
                                 [stack_env["FARM_REGISTRY"], token_host])
    with private_config_dir(tmp_path / "configs", config) as config_dir:
        build = jobs(tmp_path, stack_env["FARM_BASE_IMAGE"], f"{token_host}/team/api:x", config_dir)[0]
        with pytest.raises(BuildError) as info:
            process.run(build, {}, None)
    assert "no basic auth credentials" in str(info.value) or "unauthorized" in str(info.value).lower()


def test_cluster_buildkit_reads_the_same_config(stack_env: dict[str, str], token_host: str, tmp_path: Path) -> None:
    """buildctl + the stack's buildkitd: DOCKER_CONFIG is the per-build directory; the private base
    image comes with the secret's login, the push (no cache) with the worker's."""
    from workers.builders.cluster_buildkit import BuildSpec, buildctl_job

    worker = DockerConfig(auths={token_host: AuthEntry("worker", WORKER_PASSWORD)})
    config = build_docker_config(worker, merge_pull_secrets([pull_secret(stack_env)]),
                                 [stack_env["FARM_REGISTRY"], token_host])
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {stack_env['FARM_BASE_IMAGE']}\nCOPY a.txt /a.txt\n")
    (ctx / "a.txt").write_text(uuid.uuid4().hex)
    image = f"{token_host}/team/bk:v-{uuid.uuid4().hex[:8]}"
    with private_config_dir(tmp_path / "configs", config) as config_dir:
        job = buildctl_job([], BuildSpec(), platforms=["linux/amd64"], deployment_image_id=image, build_args={},
                           secret_ids=[], context_dir=str(ctx), timeout=300, insecure=True,
                           buildkit_host=stack_env["BUILDKIT_HOST"], docker_config=str(config_dir),
                           buildctl=stack_env.get("FARM_BUILDCTL", "buildctl"))
        lines = process.run(job, {}, None)
    assert WORKER_PASSWORD not in "\n".join(lines)
    from farm.registry import RegistryClient
    from farm.registry.credentials import Credentials

    with RegistryClient(token_host, Credentials("worker", WORKER_PASSWORD), insecure=True) as c:
        assert c.head_manifest("team/bk", image.rsplit(":", 1)[1]) is not None
