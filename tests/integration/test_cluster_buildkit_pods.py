"""cluster-buildkit in the cluster, through the real API server (integration: the stack's cluster, its
registry, Redis, dockerd; BuildKit built from source and packed into the `gardendev/buildkit` image the
node pulls): the namespace's `garden-buildkit` objects created once, reused, rolled when the
ServiceAccount's annotations change, created once by racing workers, and a build through that
buildkitd pushing to the registry; `farm build` end to end with a worker on the kubernetes runtime.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client as k8s

from farm.in_cluster import BuildkitOptions
from farm.settings import get_settings
from farm.stack import _buildkit_image
from farm.stack._process import port_free
from farm.stack._services import buildkit_bin, registry_password
from farm.stack._state import REGISTRY_USER
from tests.conftest import ROOT, run_together, start_worker, stop_worker, write_project
from tests.integration.kube_cluster import Cluster, cluster, finished, free_port, pod, wait_for, worker_kubeconfig
from workers.builders.cluster_buildkit import BuildSpec, buildctl_job
from workers.k8s_objects import BUILDKIT_DEPLOYMENT, HASH_ANNOTATION
from workers.runtimes import process
from workers.runtimes.kubernetes import buildkit_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]
__all__ = ["cluster"]
NS = "farm-bk"


@pytest.fixture(scope="module")
def bk_env(cluster: Cluster) -> Iterator[dict[str, str]]:
    st = cluster.stack
    st.up(["redis", "registry", "docker", "kubernetes"])
    _buildkit_image.ensure(st.paths, cluster.settings)
    env = {**st.env(), "FARM_CLUSTER_BUILDKIT_PORT": str(free_port()), "FARM_BUILDCTL": str(buildkit_bin("buildctl")),
           "FARM_RUNTIME": "kubernetes"}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        for ns in (NS, f"{NS}-race"):
            cluster.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
        yield env


def options(env: dict[str, str], namespace: str = NS, **extra: object) -> BuildkitOptions:
    return BuildkitOptions(namespace=namespace, kube_context="farm-local",
                           util_image_registry_domain=env["FARM_REGISTRY"],
                           resources={"limits": {"cpu": "2", "memory": "2Gi"},
                                      "requests": {"cpu": "100m", "memory": "128Mi"}}, **extra)  # type: ignore[arg-type]


def deployment(c: Cluster, namespace: str = NS) -> k8s.V1Deployment:
    return k8s.AppsV1Api(c.api).read_namespaced_deployment(BUILDKIT_DEPLOYMENT, namespace)


def buildkit_pods(c: Cluster, namespace: str = NS) -> list[str]:
    pods = c.core.list_namespaced_pod(namespace, label_selector=f"app={BUILDKIT_DEPLOYMENT}").items
    return sorted(p.metadata.name for p in pods if p.metadata.deletion_timestamp is None)



def build_through(address: str, image: str, bk_env: dict[str, str], cluster: Cluster, tmp_path: Path) -> int:
    """A buildctl build through the buildkitd at `address`; the registry's answer to a HEAD of `image`."""
    token = uuid.uuid4().hex
    (tmp_path / "Dockerfile").write_text(f"FROM {bk_env['FARM_BASE_IMAGE']}\nRUN echo {token} > /built\n")
    job = buildctl_job([], BuildSpec(), platforms=["linux/amd64"], deployment_image_id=image, build_args={},
                       secret_ids=[], context_dir=str(tmp_path), insecure=True, buildkit_host=address,
                       docker_config=bk_env["DOCKER_CONFIG"], buildctl=bk_env["FARM_BUILDCTL"])
    process.run(job, {}, None)
    head = httpx.head(f"http://{bk_env['FARM_REGISTRY']}/v2/farmtest/bk/manifests/{image.rsplit(':', 1)[1]}",
                      auth=(REGISTRY_USER, registry_password(cluster.stack.paths)), trust_env=False,
                      headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                                         "application/vnd.docker.distribution.manifest.v2+json"})
    return head.status_code

def test_infra_is_created_reused_and_rolled_and_builds_push(cluster: Cluster, bk_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    image = f"{bk_env['FARM_REGISTRY']}/farmtest/bk:{uuid.uuid4().hex[:12]}"
    lines: list[str] = []
    address = buildkit_for(options(bk_env), image, get_settings(), lines.append)
    assert address == f"tcp://127.0.0.1:{bk_env['FARM_CLUSTER_BUILDKIT_PORT']}"
    assert lines == [f"farm: garden-buildkit in namespace {NS} updated"]
    first = deployment(cluster)
    (pod_before,) = buildkit_pods(cluster)

    # Reused: nothing written the second time.
    lines.clear()
    assert buildkit_for(options(bk_env), image, get_settings(), lines.append) == address
    assert lines == [f"farm: garden-buildkit in namespace {NS} ready, unchanged"]
    assert deployment(cluster).metadata.resource_version == first.metadata.resource_version

    # A build through the buildkitd running in its Pod on the node.
    assert build_through(address, image, bk_env, cluster, tmp_path) == 200

    # Rolled: a new ServiceAccount annotation (IRSA / Workload Identity) restarts buildkitd.
    role = {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/farm"}
    buildkit_for(options(bk_env, service_account_annotations=role), image, get_settings())
    sa = cluster.core.read_namespaced_service_account("garden-in-cluster-builder", NS)
    assert sa.metadata.annotations["eks.amazonaws.com/role-arn"] == role["eks.amazonaws.com/role-arn"]
    wait_for(lambda: buildkit_pods(cluster) and buildkit_pods(cluster) != [pod_before], 120, "a new buildkitd pod")

    # A changed spec (annotations on the Deployment) replaces it: a new hash.
    before = deployment(cluster).metadata.annotations[HASH_ANNOTATION]
    buildkit_for(options(bk_env, annotations={"team": "shop"}), image, get_settings())
    assert deployment(cluster).metadata.annotations[HASH_ANNOTATION] != before


def test_two_racing_workers_create_the_infra_once(cluster: Cluster, bk_env: dict[str, str], tmp_path: Path) -> None:
    """...as the worker's ServiceAccount, with nothing but the Role of workers/rbac.py."""
    image = f"{bk_env['FARM_REGISTRY']}/farmtest/bk:race"
    ns = f"{NS}-race"
    # Another node port: the first namespace's buildkitd holds the first.
    port = free_port()
    os.environ["FARM_CLUSTER_BUILDKIT_PORT"] = str(port)
    os.environ["KUBECONFIG"] = worker_kubeconfig(cluster, ns, tmp_path / "worker.kubeconfig")
    try:
        addresses: list[str] = []
        errors = run_together(2, lambda: addresses.append(buildkit_for(options(bk_env, ns), image, get_settings())))
    finally:
        os.environ["FARM_CLUSTER_BUILDKIT_PORT"] = bk_env["FARM_CLUSTER_BUILDKIT_PORT"]
        os.environ["KUBECONFIG"] = bk_env["KUBECONFIG"]
    assert errors == [] and addresses == [f"tcp://127.0.0.1:{port}"] * 2
    d = deployment(cluster, ns)
    assert d.metadata.generation == 1                       # created once, never replaced
    assert len(k8s.AppsV1Api(cluster.api).list_namespaced_replica_set(ns).items) == 1
    assert port_free(port) is False                         # its buildkitd listens


def test_farm_build_of_two_builds_with_a_worker_on_the_kubernetes_runtime(
        cluster: Cluster, bk_env: dict[str, str], tmp_path: Path) -> None:
    """`farm build` -> Redis -> a `farm worker --runtime kubernetes` -> buildctl against the project
    namespace's garden-buildkit on the node -> the registry."""
    token = uuid.uuid4().hex
    base = bk_env["FARM_BASE_IMAGE"]
    root = write_project(tmp_path / "p", {
        "api": {"Dockerfile": f"FROM {base}\nRUN echo api-{token} > /who\n"},
        "web": {"Dockerfile": f"FROM {base}\nCOPY page /page\nRUN echo web-{token} > /who\n", "page": token}},
        mode="cluster-buildkit")
    config = root / "project.garden.yml"
    config.write_text(config.read_text() + f"    namespace: {NS}\n    utilImageRegistryDomain: {bk_env['FARM_REGISTRY']}\n"
                      "    clusterBuildkit:\n      cache: []\n")
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "ns"], cwd=root, check=True)
    env = {**bk_env, "FARM_RETRIES": "0"}
    env.pop("BUILDKIT_HOST", None)
    worker = start_worker(env, ["linux/amd64"], tmp_path / "worker.log", modes=["cluster-buildkit"])
    try:
        out = subprocess.run([str(ROOT / ".venv/bin/farm"), "build", "--project", str(root), "--json"],
                             capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=900)
    finally:
        stop_worker(worker)
    assert out.returncode == 0, out.stderr[-3000:]
    builds = {b["name"]: b for b in json.loads(out.stdout)["builds"]}
    assert {n: b["status"] for n, b in builds.items()} == {"api": "built", "web": "built"}
    assert f"garden-buildkit in namespace {NS}" in out.stderr
    for name in ("api", "web"):
        runner = f"who-{name}-{token[:6]}"
        cluster.core.create_namespaced_pod(NS, pod(runner, builds[name]["image"], ["cat", "/who"]))
        assert finished(cluster.core, runner, namespace=NS).status.phase == "Succeeded"
        assert cluster.core.read_namespaced_pod_log(runner, NS) == f"{name}-{token}\n"


def test_a_worker_outside_the_cluster_reaches_buildkitd_through_a_port_forward(
        cluster: Cluster, bk_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_CLUSTER_BUILDKIT_ACCESS", "port-forward")
    image = f"{bk_env['FARM_REGISTRY']}/farmtest/bk:{uuid.uuid4().hex[:12]}"
    address = buildkit_for(options(bk_env), image, get_settings())
    assert address.startswith("tcp://127.0.0.1:") and address != f"tcp://127.0.0.1:{bk_env['FARM_CLUSTER_BUILDKIT_PORT']}"
    assert build_through(address, image, bk_env, cluster, tmp_path) == 200
