"""The stack's `kubernetes` service against the real thing (integration: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, a kubelet on Debian's containerd + runc + CNI bridge, the
stack's registry and dockerd, the Kaniko executor), driven with the `kubernetes` Python client.

The cluster lives in its own stack (a temporary state dir, free ports), so `down` can be tested
without touching the developer's stack. Its Go binaries are built by scripts/install-*.sh when this
machine has not built them yet (a cold build takes many minutes).
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from kubernetes.config import new_client_from_config

from farm.stack import Stack, _kaniko_image, _kubernetes_host
from farm.stack._kubernetes_configs import KubeLayout
from farm.stack._mounts import mounts_under
from farm.stack._process import ProcessRecord, port_free
from farm.stack._services import registry_password
from farm.stack._state import KUBE_PORTS, REGISTRY_USER, StackSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]
NS = "farm-it"
# Host paths a kubelet writes unless told otherwise (or whatever it is told): none may be left behind.
HOST_PATHS = (*_kubernetes_host.HOST_PATHS, Path("/usr/libexec/kubernetes"), Path("/var/log/pods"),
              Path("/run/containerd/runc"))


def free_port_block(n: int) -> int:
    for _ in range(200):
        base = random.randrange(20000, 32000)
        if all(port_free(p) for p in range(base, base + n)):
            return base
    raise RuntimeError(f"no {n} consecutive free ports")


def free_port() -> int:
    for _ in range(200):
        port = random.randrange(32000, 40000)
        if port_free(port):
            return port
    raise RuntimeError("no free port")


@dataclass
class Cluster:
    stack: Stack
    settings: StackSettings
    layout: KubeLayout
    api: k8s.ApiClient
    core: k8s.CoreV1Api
    host_before: dict[str, str]
    globals_before: dict[str, bool]
    seconds_to_ready: float


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state = tmp_path_factory.mktemp("k8s-stack") / "state"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FARM_REDIS_PORT", str(free_port()))
        mp.setenv("FARM_REGISTRY_PORT", str(free_port()))
        mp.setenv("FARM_FLOWER_PORT", str(free_port()))
        mp.setenv("FARM_KUBE_PORT", str(free_port_block(KUBE_PORTS)))
        st = Stack(state)
        host_before = _kubernetes_host.read_sysctls()
        globals_before = {str(p): os.path.lexists(p) for p in HOST_PATHS}
        st.up(["registry", "docker"])  # first, so the cluster's start is timed alone (binaries built)
        layout = KubeLayout.of(st.paths, StackSettings.load(st.paths.settings))  # type: ignore[arg-type]
        _kubernetes_buildable(st)
        start = time.monotonic()
        st.up(["registry", "docker", "kubernetes"])
        ready = time.monotonic() - start
        print(f"\nkubernetes: control plane + node Ready in {ready:.1f}s")
        settings = StackSettings.load(st.paths.settings)
        assert settings is not None
        st.base_image()
        api = new_client_from_config(config_file=st.env()["KUBECONFIG"])
        core = k8s.CoreV1Api(api)
        core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NS)))
        wait_for(lambda: _exists(lambda: core.read_namespaced_service_account("default", NS)), 60,
                 "the namespace's default ServiceAccount")
        try:
            yield Cluster(st, settings, layout, api, core, host_before, globals_before, ready)
        finally:
            api.close()
            st.down()


def _kubernetes_buildable(st: Stack) -> None:
    """Build the Go binaries outside the timed start (no-op on a warm machine)."""
    from farm.stack._kubernetes import ensure_binaries

    ensure_binaries(st.paths)


def _exists(read: Callable[[], Any]) -> bool:
    try:
        read()
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise


def pod(name: str, image: str, command: list[str], **spec: Any) -> k8s.V1Pod:
    container = k8s.V1Container(name="main", image=image, command=command,
                                resources=spec.pop("resources", None))
    return k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=name),
                     spec=k8s.V1PodSpec(containers=[container], restart_policy="Never",
                                        termination_grace_period_seconds=1, **spec))


def finished(core: k8s.CoreV1Api, name: str, timeout: float = 120) -> k8s.V1Pod:
    def done() -> k8s.V1Pod | None:
        p = core.read_namespaced_pod(name, NS)
        return p if p.status.phase in ("Succeeded", "Failed") else None
    try:
        return wait_for(done, timeout, f"pod {name} to finish")
    except AssertionError:
        p = core.read_namespaced_pod(name, NS)
        events = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items
        raise AssertionError(f"pod {name} did not finish: {p.status}\n"
                             + "\n".join(f"{e.reason}: {e.message}" for e in events)) from None


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
