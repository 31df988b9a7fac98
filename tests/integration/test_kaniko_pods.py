"""kaniko on the `kubernetes` runtime, through the real API server (integration: the stack's cluster —
etcd, kube-apiserver, controller-manager, scheduler, a kubelet on containerd — its registry and
dockerd, the Kaniko executor built from source): one Pod per build, the context written to the
executor's stdin through the attach API, the end of each Pod mapped to its own message.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from farm.errors import PermanentBuildError, TransientBuildError
from farm.jobs import BuildRequest
from farm.kaniko import KanikoOptions
from farm.stack import _kaniko_image
from farm.stack._services import registry_password
from farm.stack._state import REGISTRY_USER
from tests.integration.kube_cluster import NS, Cluster, cluster, finished, pod
from workers.builder_job import BuilderJob, Workspace
from workers.builders.kaniko import executor_job
from workers.runtimes import kubernetes_pod

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]
__all__ = ["cluster"]


@pytest.fixture(scope="module")
def kube_env(cluster: Cluster) -> Iterator[dict[str, str]]:
    """The worker's environment for the cluster's stack: KUBECONFIG, DOCKER_CONFIG, the executor image."""
    image = _kaniko_image.ensure(cluster.stack.paths, cluster.settings)
    env = {**cluster.stack.env(), "FARM_KANIKO_IMAGE": image, "FARM_KUBE_SCHEDULE_TIMEOUT": "8"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


def job_for(env: dict[str, str], context: Path, dockerfile: str, **options: object) -> tuple[BuilderJob, str]:
    (context / "Dockerfile").write_text(dockerfile)
    tag = uuid.uuid4().hex[:12]
    image = f"{env['FARM_REGISTRY']}/farmtest/kpod:{tag}"
    opts = KanikoOptions(namespace=NS, kube_context="farm-local", **options)  # type: ignore[arg-type]
    req = BuildRequest(job_id=uuid.uuid4().hex, project="p", build="kpod", version="v-1", platform="linux/amd64",
                       mode="kaniko", image=image, insecure=True, context="sha256:" + "0" * 64,
                       context_store="file:///nowhere", timeout=240, kaniko=opts)
    ws = Workspace(context_dir=str(context), docker_config=Path(env["DOCKER_CONFIG"]),
                   kaniko_image=env["FARM_KANIKO_IMAGE"])
    return executor_job(req, ws), image


def executor_pods(c: Cluster) -> list[str]:
    return [p.metadata.name for p in c.core.list_namespaced_pod(NS, label_selector="app=farm-kaniko").items]


def test_a_pod_per_build_pushes_the_image(cluster: Cluster, kube_env: dict[str, str], tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    (tmp_path / "data.txt").write_text(token)
    job, image = job_for(kube_env, tmp_path, f"FROM {kube_env['FARM_BASE_IMAGE']}\nCOPY data.txt /data.txt\n"
                                             f"RUN cat /data.txt > /built && echo built-{token}\n")
    assert kubernetes_pod.loopback_registry(job.argv)
    lines: list[str] = []
    out = kubernetes_pod.run(job, {}, lines.append)
    assert out == lines and any(f"built-{token}" in line for line in lines)
    assert any("Pushed " in line for line in lines)
    assert executor_pods(cluster) == []                  # deleted after
    password = registry_password(cluster.stack.paths)
    head = httpx.head(f"http://{kube_env['FARM_REGISTRY']}/v2/farmtest/kpod/manifests/{image.rsplit(':', 1)[1]}",
                      auth=(REGISTRY_USER, password), trust_env=False,
                      headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                                         "application/vnd.docker.distribution.manifest.v2+json"})
    assert head.status_code == 200
    name = f"run-{token[:8]}"
    cluster.core.create_namespaced_pod(NS, pod(name, image, ["cat", "/built"]))
    assert finished(cluster.core, name).status.phase == "Succeeded"
    assert cluster.core.read_namespaced_pod_log(name, NS) == token


def test_a_failing_run_ends_with_its_exit_and_the_executors_error(cluster: Cluster, kube_env: dict[str, str],
                                                                  tmp_path: Path) -> None:
    job, _ = job_for(kube_env, tmp_path, f"FROM {kube_env['FARM_BASE_IMAGE']}\nRUN echo boom-{uuid.uuid4().hex}; exit 3\n")
    with pytest.raises(PermanentBuildError) as err:
        kubernetes_pod.run(job, {}, None)
    message = str(err.value)
    assert message.startswith("kaniko: /kaniko/executor exited with code 3: error building image"), message
    assert "boom-" in message
    assert executor_pods(cluster) == []


def test_out_of_memory_is_named_with_its_limit(cluster: Cluster, kube_env: dict[str, str], tmp_path: Path) -> None:
    job, _ = job_for(kube_env, tmp_path,
                     f"FROM {kube_env['FARM_BASE_IMAGE']}\nRUN echo {uuid.uuid4().hex}; a=x; while :; do a=\"$a$a\"; done\n",
                     resources={"limits": {"cpu": "1", "memory": "96Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}})
    with pytest.raises(TransientBuildError) as err:
        kubernetes_pod.run(job, {}, None)
    assert "killed out of memory (OOMKilled, limit 96Mi" in str(err.value), err.value
    assert executor_pods(cluster) == []


def test_an_image_that_cannot_be_pulled_is_named(cluster: Cluster, kube_env: dict[str, str], tmp_path: Path) -> None:
    job, _ = job_for(kube_env, tmp_path, "FROM scratch\n",
                     image=f"{kube_env['FARM_REGISTRY']}/farmtest/no-such-executor:1")
    with pytest.raises(PermanentBuildError) as err:
        kubernetes_pod.run(job, {}, None)
    assert "the executor image could not be pulled (ErrImagePull" in str(err.value) or \
        "could not be pulled (ImagePullBackOff" in str(err.value), err.value
    assert "no-such-executor" in str(err.value)
    assert executor_pods(cluster) == []


def test_a_pod_no_node_can_take_is_never_scheduled(cluster: Cluster, kube_env: dict[str, str], tmp_path: Path) -> None:
    job, _ = job_for(kube_env, tmp_path, "FROM scratch\n", node_selector={"farm.test/pool": "none"})
    with pytest.raises(PermanentBuildError) as err:
        kubernetes_pod.run(job, {}, None)
    message = str(err.value)
    assert message.startswith("kaniko: the Pod was never scheduled within 8 s:"), message
    assert "node affinity/selector" in message or "didn't match" in message
    assert executor_pods(cluster) == []
