"""imagePullSecrets read from a REAL API server (the stack's kubernetes service) by the worker's code
path: each malformed shape its own message, Garden's merge order, and a private base image pulled
and pushed by the local-docker builder with the docker config the secret alone provides.

The project's registry here is the cluster stack's htpasswd registry; the worker's own docker
config is empty, so only the secret can open it.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from pathlib import Path

import pytest
from kubernetes import client as k8s

from farm.errors import BuildError, PermanentBuildError
from farm.jobs import BuildRequest, PullSecretRef
from tests.integration.kube_cluster import NS, Cluster, cluster
from workers.builder_job import Workspace
from workers.builders import local_docker
from workers.pull_secrets import build_docker_config_dir, kubernetes_reader, merged_pull_secrets
from workers.runtimes import process

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]
__all__ = ["cluster"]


def registry_auth(c: Cluster) -> tuple[str, dict[str, str]]:
    env = c.stack.env()
    host = env["FARM_REGISTRY"]
    return host, json.loads((Path(env["DOCKER_CONFIG"]) / "config.json").read_text())["auths"][host]


def put_secret(c: Cluster, name: str, type_: str, data: dict[str, str]) -> None:
    body = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=name), type=type_,
                        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()})
    c.core.create_namespaced_secret(NS, body)


def request(c: Cluster, *secrets: str, image: str = "", dockerfile: str = "Dockerfile") -> BuildRequest:
    host, _ = registry_auth(c)
    return BuildRequest(job_id="j", project="p", build="api", version="v-1", platform="linux/amd64",
                        mode="local-docker", image=image or f"{host}/team/api:v-{uuid.uuid4().hex[:8]}",
                        insecure=True, context="sha256:" + "0" * 64, context_store="file:///nowhere",
                        timeout=300, dockerfile=dockerfile, kube_context="farm",
                        pull_secrets=[PullSecretRef(name=s, namespace=NS) for s in secrets])


@pytest.fixture
def kube_env(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return cluster


@pytest.mark.parametrize(("kind", "data", "says"), [
    ("Opaque", {".dockerconfigjson": "{}"}, "has type 'Opaque'; it must be kubernetes.io/dockerconfigjson"),
    ("kubernetes.io/dockercfg", {".dockercfg": "{}"}, "the old .dockercfg format"),
    ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": '{"credsStore": "desktop"}'},
     "with neither 'auths' nor 'credHelpers' (its keys: credsStore)"),
])
def test_each_malformed_secret_read_from_the_api_server_has_its_own_message(
        kube_env: Cluster, kind: str, data: dict[str, str], says: str) -> None:
    name = f"bad-{uuid.uuid4().hex[:6]}"
    put_secret(kube_env, name, kind, data)
    with pytest.raises(PermanentBuildError) as caught:
        merged_pull_secrets(request(kube_env, name), kubernetes_reader(context="farm"))
    assert f"imagePullSecret '{name}' in namespace '{NS}'" in str(caught.value)
    assert says in str(caught.value)


def test_a_secret_that_is_not_there_is_named(kube_env: Cluster) -> None:
    with pytest.raises(PermanentBuildError, match=f"Could not find secret 'nope' in namespace '{NS}'"):
        merged_pull_secrets(request(kube_env, "nope"), kubernetes_reader(context="farm"))


def test_a_context_the_worker_does_not_have_is_a_clear_error(kube_env: Cluster) -> None:
    with pytest.raises(PermanentBuildError, match="no usable kubeconfig context 'prod-eu'"):
        kubernetes_reader(context="prod-eu")


def test_secrets_merge_in_order_later_wins(kube_env: Cluster) -> None:
    names = []
    for user in ("first", "second"):
        name = f"{user}-{uuid.uuid4().hex[:6]}"
        auth = base64.b64encode(f"{user}:pw".encode()).decode()
        put_secret(kube_env, name, "kubernetes.io/dockerconfigjson",
                   {".dockerconfigjson": json.dumps({"auths": {"private.example.com": {"auth": auth}}})})
        names.append(name)
    merged = merged_pull_secrets(request(kube_env, *names), kubernetes_reader(context="farm"))
    assert base64.b64decode(merged["auths"]["private.example.com"]["auth"]).decode() == "second:pw"


def build(c: Cluster, req: BuildRequest, tmp_path: Path) -> list[str]:
    """The worker's path: per-build docker config from the cluster, then the builder's jobs."""
    ctx = tmp_path / f"ctx-{uuid.uuid4().hex[:6]}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {c.stack.env()['FARM_BASE_IMAGE']}\nCOPY a.txt /a.txt\n")
    (ctx / "a.txt").write_text(uuid.uuid4().hex)
    worker_config = tmp_path / "worker-config"      # the worker's own login: none for this registry
    worker_config.mkdir(exist_ok=True)
    lines: list[str] = []
    with build_docker_config_dir(req, worker_config, ctx, tmp_path / "configs") as config_dir:
        ws = Workspace(context_dir=str(ctx), docker_config=config_dir)
        for job in local_docker.BUILDER.jobs(req, ws):
            job_env = (("DOCKER_HOST", c.stack.env()["DOCKER_HOST"]),)
            lines += process.run(dataclasses.replace(job, env=job.env + job_env), {}, None)
    assert not list((tmp_path / "configs").iterdir()), "the build's docker config outlived the build"
    return lines


def test_a_private_base_image_is_pulled_and_pushed_with_the_secrets_login(kube_env: Cluster, tmp_path: Path) -> None:
    host, auth = registry_auth(kube_env)
    name = f"registry-{uuid.uuid4().hex[:6]}"
    put_secret(kube_env, name, "kubernetes.io/dockerconfigjson",
               {".dockerconfigjson": json.dumps({"auths": {host: auth}})})
    # The engine must pull: its cache would otherwise answer FROM without asking the registry.
    req = request(kube_env, name).model_copy(update={"extra_flags": ["--pull"]})
    lines = build(kube_env, req, tmp_path)
    assert local_docker.pushed_digest(lines) is not None
    password = base64.b64decode(auth["auth"]).decode().split(":", 1)[1]
    assert password not in "\n".join(lines)


def test_without_the_secret_the_private_registry_refuses(kube_env: Cluster, tmp_path: Path) -> None:
    req = request(kube_env).model_copy(update={"extra_flags": ["--pull"]})
    with pytest.raises(BuildError) as caught:
        build(kube_env, req, tmp_path)
    assert "no basic auth credentials" in str(caught.value) or "unauthorized" in str(caught.value).lower()
