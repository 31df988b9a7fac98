"""The stack's `kubernetes` service against the real thing (integration: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, a kubelet on Debian's containerd + runc + CNI bridge, the
stack's registry and dockerd, the Kaniko executor), driven with the `kubernetes` Python client.

The cluster (tests/integration/kube_cluster.py) lives in its own stack (a temporary state dir, free
ports), so `down` can be tested without touching the developer's stack. Its Go binaries are built by
scripts/install-*.sh when this machine has not built them yet (a cold build takes many minutes).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from farm.stack import _kaniko_image, _kubernetes_host
from farm.stack._mounts import mounts_under
from farm.stack._process import ProcessRecord
from farm.stack._services import registry_password
from farm.stack._state import REGISTRY_USER
from tests.integration.kube_cluster import HOST_PATHS, NS, Cluster, cluster, finished, pod, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]
__all__ = ["cluster"]  # the module-scoped fixture, imported for pytest


def test_node_is_ready_and_the_api_reports_the_release(cluster: Cluster) -> None:
    node = k8s.CoreV1Api(cluster.api).read_node(cluster.layout.net.node_name)
    ready = {c.type: c.status for c in node.status.conditions}
    assert ready["Ready"] == "True"
    assert node.status.node_info.kubelet_version == "v1.35.4"
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    assert {a.type: a.address for a in node.status.addresses}["InternalIP"] == cluster.layout.net.node_ip
    assert k8s.VersionApi(cluster.api).get_code().git_version == "v1.35.4"
    assert cluster.stack.status()["kubernetes"].startswith("running")
    assert oct(Path(cluster.stack.env()["KUBECONFIG"]).stat().st_mode & 0o777) == "0o600"


def test_pod_from_the_stack_registry_runs_to_completion_with_logs(cluster: Cluster) -> None:
    cluster.core.create_namespaced_pod(NS, pod("hello", cluster.settings.base_image,
                                               ["sh", "-c", "echo hello from the farm node; uname -s"]))
    p = finished(cluster.core, "hello")
    assert p.status.phase == "Succeeded", p.status
    assert p.status.container_statuses[0].state.terminated.exit_code == 0
    logs = cluster.core.read_namespaced_pod_log("hello", NS)
    assert logs == "hello from the farm node\nLinux\n"


def test_pod_over_its_memory_limit_is_oom_killed(cluster: Cluster) -> None:
    limits = k8s.V1ResourceRequirements(limits={"memory": "20Mi"}, requests={"memory": "20Mi"})
    cluster.core.create_namespaced_pod(NS, pod("hog", cluster.settings.base_image,
                                               ["sh", "-c", 'a=x; while :; do a="$a$a"; done'],
                                               resources=limits))
    p = finished(cluster.core, "hog")
    terminated = p.status.container_statuses[0].state.terminated
    assert p.status.phase == "Failed"
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)


def test_rbac_limits_a_service_account_to_its_role(cluster: Cluster) -> None:
    core, rbac = cluster.core, k8s.RbacAuthorizationV1Api(cluster.api)
    core.create_namespaced_service_account(NS, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="reader")))
    rbac.create_namespaced_role(NS, k8s.V1Role(
        metadata=k8s.V1ObjectMeta(name="pod-reader"),
        rules=[k8s.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get", "list"])]))
    rbac.create_namespaced_role_binding(NS, k8s.V1RoleBinding(
        metadata=k8s.V1ObjectMeta(name="reader-reads-pods"),
        role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"),
        subjects=[k8s.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=NS)]))
    token = core.create_namespaced_service_account_token(
        "reader", NS, k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[]))).status.token
    conf = k8s.Configuration(host=cluster.layout.apiserver_url, api_key={"authorization": f"Bearer {token}"})
    conf.ssl_ca_cert = str(cluster.layout.pki / "ca.crt")
    with k8s.ApiClient(conf) as sa_client:
        sa = k8s.CoreV1Api(sa_client)
        assert isinstance(sa.list_namespaced_pod(NS).items, list)
        for forbidden in (lambda: sa.list_namespaced_secret(NS), lambda: sa.list_namespaced_pod("kube-system"),
                          lambda: sa.delete_namespaced_pod("hello", NS)):
            with pytest.raises(ApiException) as err:
                forbidden()
            assert err.value.status == 403


def test_kaniko_executor_pod_builds_and_pushes_to_the_stack_registry(cluster: Cluster) -> None:
    st, settings = cluster.stack, cluster.settings
    executor = _kaniko_image.ensure(st.paths, settings)
    password = registry_password(st.paths)
    auth = base64.b64encode(f"{REGISTRY_USER}:{password}".encode()).decode()
    cluster.core.create_namespaced_secret(NS, k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name="registry-login"),
        string_data={"config.json": json.dumps({"auths": {settings.registry: {"auth": auth}}})}))
    marker = uuid.uuid4().hex
    built = f"{settings.registry}/farmtest/kaniko-pod:{marker[:12]}"
    dockerfile = f"FROM {settings.base_image}\nRUN echo {marker} > /built-by-kaniko\n"
    workspace = k8s.V1VolumeMount(name="workspace", mount_path="/workspace")
    spec = k8s.V1PodSpec(
        host_network=True, restart_policy="Never", termination_grace_period_seconds=1,
        volumes=[k8s.V1Volume(name="workspace", empty_dir=k8s.V1EmptyDirVolumeSource()),
                 k8s.V1Volume(name="docker", secret=k8s.V1SecretVolumeSource(secret_name="registry-login"))],
        init_containers=[k8s.V1Container(
            name="context", image=settings.base_image, volume_mounts=[workspace],
            env=[k8s.V1EnvVar(name="DOCKERFILE", value=dockerfile)],
            command=["sh", "-c", 'printf "%s" "$DOCKERFILE" > /workspace/Dockerfile'])],
        containers=[k8s.V1Container(
            name="kaniko", image=executor,
            args=["--context=dir:///workspace", "--dockerfile=/workspace/Dockerfile",
                  f"--destination={built}", "--insecure", "--insecure-pull"],
            volume_mounts=[workspace, k8s.V1VolumeMount(name="docker", mount_path="/kaniko/.docker")])])
    start = time.monotonic()
    cluster.core.create_namespaced_pod(NS, k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="kaniko"), spec=spec))
    p = finished(cluster.core, "kaniko", timeout=300)
    logs = cluster.core.read_namespaced_pod_log("kaniko", NS, container="kaniko")
    assert p.status.phase == "Succeeded", logs
    print(f"\nkaniko pod: built and pushed in {time.monotonic() - start:.1f}s")
    head = httpx.head(f"http://{settings.registry}/v2/farmtest/kaniko-pod/manifests/{marker[:12]}",
                      auth=(REGISTRY_USER, password), trust_env=False,
                      headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                                         "application/vnd.oci.image.manifest.v1+json"})
    assert head.status_code == 200
    cluster.core.create_namespaced_pod(NS, pod("run-built", built, ["cat", "/built-by-kaniko"]))
    assert finished(cluster.core, "run-built").status.phase == "Succeeded"
    assert cluster.core.read_namespaced_pod_log("run-built", NS) == f"{marker}\n"


def running_sleeper(cluster: Cluster, name: str) -> list[ProcessRecord]:
    """A pod left running at `down`; returns the records of the stack's processes."""
    st = cluster.stack
    cluster.core.create_namespaced_pod(NS, pod(name, cluster.settings.base_image, ["sleep", "3600"]))
    wait_for(lambda: cluster.core.read_namespaced_pod(name, NS).status.phase == "Running", 60,
             f"pod {name} running")
    assert {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-containerd",
            "kubelet"} <= {f.stem for f in st.paths.pids.glob("*.pid")}
    assert _kubernetes_host.shim_pids(cluster.layout.containerd_socket)
    assert _kubernetes_host.cgroup_pids(cluster.layout.cgroup_root)
    return [r for f in st.paths.pids.glob("*.pid") if (r := ProcessRecord.read(f)) is not None]


def assert_host_restored(cluster: Cluster, records: list[ProcessRecord]) -> None:
    st, layout = cluster.stack, cluster.layout
    assert not [r.pid for r in records if r.alive()]
    assert not _kubernetes_host.shim_pids(layout.containerd_socket)
    assert not _kubernetes_host.cgroup_pids(layout.cgroup_root)
    assert not any((h / layout.cgroup_root.lstrip("/")).exists() for h in Path("/sys/fs/cgroup").iterdir())
    assert mounts_under(st.paths.state, st.paths.run) == []
    assert not Path("/sys/class/net", layout.net.bridge).exists()
    assert not _kubernetes_host.lo_has(layout.net.node_ip)
    assert _kubernetes_host.read_sysctls() == cluster.host_before
    assert {str(p): os.path.lexists(p) for p in HOST_PATHS} == cluster.globals_before
    assert st.status()["kubernetes"] == "stopped"
    assert "KUBECONFIG" not in st.env()


def test_down_leaves_nothing_behind(cluster: Cluster) -> None:
    records = running_sleeper(cluster, "sleeper")
    cluster.stack.down()
    assert_host_restored(cluster, records)


def test_down_after_the_node_crashed_leaves_nothing_behind(cluster: Cluster) -> None:
    st = cluster.stack
    start = time.monotonic()
    st.up(["registry", "docker", "kubernetes"])  # warm: state, images and PKI are kept
    print(f"\nkubernetes: warm restart to node Ready in {time.monotonic() - start:.1f}s")
    records = running_sleeper(cluster, "crash-victim")
    for unit in ("kubelet", "kube-containerd"):  # their pods' shims and processes live on
        record = ProcessRecord.read(st.paths.pidfile(unit))
        assert record is not None
        os.kill(record.pid, signal.SIGKILL)
    wait_for(lambda: st.status()["kubernetes"] == "stopped", 10, "the node to be seen down")
    st.down()
    assert_host_restored(cluster, records)
