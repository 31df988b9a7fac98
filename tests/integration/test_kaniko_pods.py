"""kaniko on the `kubernetes` runtime, through the real API server (integration: the stack's cluster —
etcd, kube-apiserver, controller-manager, scheduler, a kubelet on containerd — its registry and
dockerd, the Kaniko executor built from source): one Pod per build, the context written to the
executor's stdin through the attach API, the end of each Pod mapped to its own message.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from kubernetes.config import new_client_from_config

from farm.errors import PermanentBuildError, TransientBuildError
from farm.jobs import BuildRequest
from farm.kaniko import KanikoOptions
from farm.stack import _kaniko_image
from farm.stack._services import registry_password
from farm.stack._state import REGISTRY_USER
from tests.integration.kube_cluster import NS, Cluster, cluster, finished, pod, worker_kubeconfig
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
    assert lines[0].startswith(f"farm: executor Pod {NS}/kaniko-kpod-") and out == lines[1:]
    assert any(f"built-{token}" in line for line in lines)
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


def test_farm_build_of_two_builds_with_a_worker_on_the_kubernetes_runtime(
        cluster: Cluster, kube_env: dict[str, str], tmp_path: Path) -> None:
    """End to end as CI runs it: `farm build` -> Redis -> a `farm worker --runtime kubernetes` -> one
    executor Pod per Build on the node -> the registry."""
    import json
    import subprocess

    from tests.conftest import ROOT, start_worker, stop_worker, write_project

    cluster.stack.up(["redis", "registry", "docker", "kubernetes"])     # the broker too
    env = {**cluster.stack.env(), "FARM_KANIKO_IMAGE": kube_env["FARM_KANIKO_IMAGE"], "FARM_RUNTIME": "kubernetes",
           "FARM_RETRIES": "0"}
    token = uuid.uuid4().hex
    base = kube_env["FARM_BASE_IMAGE"]
    root = write_project(tmp_path / "p", {
        "api": {"Dockerfile": f"FROM {base}\nRUN echo api-{token} > /who\n"},
        "web": {"Dockerfile": f"FROM {base}\nCOPY page /page\nRUN echo web-{token} > /who\n", "page": token}},
        mode="kaniko")
    config = root / "project.garden.yml"
    config.write_text(config.read_text() + f"    kaniko:\n      namespace: {NS}\n")
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "ns"], cwd=root, check=True)
    worker = start_worker(env, ["linux/amd64"], tmp_path / "worker.log", modes=["kaniko"])
    try:
        out = subprocess.run([str(ROOT / ".venv/bin/farm"), "build", "--project", str(root), "--json"],
                             capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=900)
    finally:
        stop_worker(worker)
    assert out.returncode == 0, out.stderr[-3000:]
    builds = {b["name"]: b for b in json.loads(out.stdout)["builds"]}
    assert {n: b["status"] for n, b in builds.items()} == {"api": "built", "web": "built"}
    assert "Checking for cached layer" in out.stderr       # the executors' logs, followed live
    assert executor_pods(cluster) == []
    for name in ("api", "web"):
        runner = f"who-{name}-{token[:6]}"
        cluster.core.create_namespaced_pod(NS, pod(runner, builds[name]["image"], ["cat", "/who"]))
        assert finished(cluster.core, runner).status.phase == "Succeeded"
        assert cluster.core.read_namespaced_pod_log(runner, NS) == f"{name}-{token}\n"


VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


def namespaced_resources(c: Cluster) -> list[tuple[str, str, tuple[str, ...]]]:
    """(apiGroup, resource[/subresource], verbs) of every namespaced resource the API server serves
    (discovery through the client's typed group APIs; a group the client has no class for is skipped)."""
    out = []
    lists = [("", k8s.CoreV1Api(c.api).get_api_resources())]
    for g in k8s.ApisApi(c.api).get_api_versions().groups:
        version = g.preferred_version.version
        cls = "".join(part.capitalize() for part in g.name.removesuffix(".k8s.io").split(".")) + \
            version.capitalize() + "Api"
        if hasattr(k8s, cls):
            lists.append((g.name, getattr(k8s, cls)(c.api).get_api_resources()))
    for group, listing in lists:
        for r in listing.resources:
            if r.namespaced:
                out.append((group, r.name, tuple(r.verbs or VERBS)))
    return out


def test_the_workers_role_is_enough_to_build_and_denies_everything_else(
        cluster: Cluster, kube_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import rbac

    kubeconfig = worker_kubeconfig(cluster, NS, tmp_path / "worker.kubeconfig")
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    job, _ = job_for(kube_env, tmp_path, f"FROM {kube_env['FARM_BASE_IMAGE']}\nRUN echo {uuid.uuid4().hex}\n")
    assert any("Pushed " in line for line in kubernetes_pod.run(job, {}, None))     # the Role is enough

    with new_client_from_config(config_file=kubeconfig) as sa_api:
        authz = k8s.AuthorizationV1Api(sa_api)

        def may(namespace: str | None, group: str, resource: str, verb: str) -> bool:
            name, _, sub = resource.partition("/")
            review = k8s.V1SelfSubjectAccessReview(spec=k8s.V1SelfSubjectAccessReviewSpec(
                resource_attributes=k8s.V1ResourceAttributes(namespace=namespace, group=group, resource=name,
                                                             subresource=sub or None, verb=verb)))
            return bool(authz.create_self_subject_access_review(review).status.allowed)

        checked = wrong = 0
        for group, resource, verbs in namespaced_resources(cluster):
            for verb in verbs:
                if verb not in VERBS:
                    continue
                checked += 1
                if may(NS, group, resource, verb) != rbac.allowed(group, resource, verb):
                    wrong += 1
                    print(f"unexpected: {verb} {group}/{resource}: {may(NS, group, resource, verb)}")
        assert checked > 200 and wrong == 0
        for group, resource, verb in rbac_extra_denied():
            assert not may("default", group, resource, verb), (group, resource, verb)
        assert not may(None, "", "namespaces", "create") and not may(None, "", "nodes", "list")

        # A call outside the Role fails with a clear RBAC error, not a traceback.
        with pytest.raises(ApiException) as err:
            k8s.CoreV1Api(sa_api).list_namespaced_secret(NS)
        assert err.value.status == 403


def rbac_extra_denied() -> list[tuple[str, str, str]]:
    """The Role's own rules, in another namespace: a Role binds in its namespace only."""
    from workers import rbac

    return [(r.api_group, r.resource, v) for r in rbac.RULES for v in r.verbs]


def test_a_role_without_attach_ends_the_build_with_a_clear_rbac_error(
        cluster: Cluster, kube_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ns = "farm-no-attach"
    cluster.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
    kubeconfig = worker_kubeconfig(cluster, ns, tmp_path / "worker.kubeconfig")
    role = k8s.RbacAuthorizationV1Api(cluster.api).read_namespaced_role("farm-worker", ns)
    role.rules = [r for r in role.rules if r.resources != ["pods/attach"]]
    k8s.RbacAuthorizationV1Api(cluster.api).replace_namespaced_role("farm-worker", ns, role)
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    job, _ = job_for(kube_env, tmp_path, "FROM scratch\n")
    job = replace(job, placement=replace(job.placement, namespace=ns))
    with pytest.raises(PermanentBuildError) as err:
        kubernetes_pod.run(job, {}, None)
    assert "Kubernetes refused the worker in namespace farm-no-attach (403" in str(err.value), err.value
    assert 'cannot get resource "pods/attach"' in str(err.value)
    assert cluster.core.list_namespaced_pod(ns).items == []           # the Pod was deleted all the same


def test_the_builds_timeout_ends_the_pod(cluster: Cluster, kube_env: dict[str, str], tmp_path: Path) -> None:
    job, _ = job_for(kube_env, tmp_path, f"FROM {kube_env['FARM_BASE_IMAGE']}\nRUN echo {uuid.uuid4().hex}; sleep 300\n")
    job = replace(job, timeout=15)
    with pytest.raises(TransientBuildError) as err:
        kubernetes_pod.run(job, {}, None)
    assert str(err.value) == "kaniko: /kaniko/executor timed out after 15 s"
    assert executor_pods(cluster) == []
