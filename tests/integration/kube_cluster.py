"""A real Kubernetes cluster for tests: the stack's `kubernetes` service (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, a kubelet on Debian's containerd + runc + CNI bridge) in a
stack of its own (a temporary state dir, free ports), next to that stack's registry and dockerd.

Only one kubelet may run on a machine, so the cluster holds a machine-wide `flock` on
`/tmp/farm-kube-node.lock` from before its node starts until after it is down: a second test session
(another worktree, another module) waits for it instead of starting a second node.

Use it from a test module with `from tests.integration.kube_cluster import cluster` (the fixture is
module-scoped), or `with kube_cluster(dir) as c:` for a scope of your own.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from kubernetes.config import new_client_from_config

from farm.stack import Stack, _kubernetes_host
from farm.stack._kubernetes_configs import KubeLayout
from farm.stack._process import port_free
from farm.stack._state import KUBE_PORTS, StackSettings

NS = "farm-it"
NODE_LOCK = Path("/tmp/farm-kube-node.lock")
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

    @property
    def kubeconfig(self) -> str:
        return self.stack.env()["KUBECONFIG"]


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def running_kubelets() -> list[str]:
    """`pid: command line` of every kubelet on this machine."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and argv and os.path.basename(argv[0].decode(errors="replace")) == "kubelet":
            found.append(f"{proc.name}: {b' '.join(argv).decode(errors='replace')[:200]}")
    return found


@contextlib.contextmanager
def node_lock(path: Path = NODE_LOCK) -> Iterator[None]:
    """The machine-wide right to run a kubelet, held until the block ends (waits for another test
    session holding it; fails at once when a node outside any test runs, e.g. `make demo-cluster`'s)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"\nkube_cluster: another session runs the node; waiting for {path}", file=sys.stderr)
            start = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            print(f"kube_cluster: got {path} after {time.monotonic() - start:.0f}s", file=sys.stderr)
        if others := running_kubelets():
            pytest.fail("a Kubernetes node already runs on this machine and only one can: stop it "
                        "(`make down` or `farm stack down` in the checkout that started it, e.g. after "
                        f"`make demo-cluster`). Running: {'; '.join(others)}", pytrace=False)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.contextmanager
def kube_cluster(root: Path) -> Iterator[Cluster]:
    """A cluster in a stack under `root` (ports of its own), down and the host restored at the end."""
    state = root / "state"
    with node_lock(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("FARM_REDIS_PORT", str(free_port()))
        mp.setenv("FARM_REGISTRY_PORT", str(free_port()))
        mp.setenv("FARM_FLOWER_PORT", str(free_port()))
        mp.setenv("FARM_METRICS_PORT", str(free_port()))
        mp.setenv("FARM_KUBE_PORT", str(free_port_block(KUBE_PORTS)))
        st = Stack(state)
        host_before = _kubernetes_host.read_sysctls()
        globals_before = {str(p): os.path.lexists(p) for p in HOST_PATHS}
        try:
            st.up(["registry", "docker"])  # first, so the cluster's start is timed alone (binaries built)
            layout = KubeLayout.of(st.paths, StackSettings.load(st.paths.settings))  # type: ignore[arg-type]
            kubernetes_buildable(st)
            start = time.monotonic()
            st.up(["registry", "docker", "kubernetes"])
            ready = time.monotonic() - start
            print(f"\nkubernetes: control plane + node Ready in {ready:.1f}s")
            settings = StackSettings.load(st.paths.settings)
            assert settings is not None
            st.base_image()
            api = new_client_from_config(config_file=st.env()["KUBECONFIG"])
            try:
                core = k8s.CoreV1Api(api)
                core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NS)))
                wait_for(lambda: exists(lambda: core.read_namespaced_service_account("default", NS)), 60,
                         "the namespace's default ServiceAccount")
                yield Cluster(st, settings, layout, api, core, host_before, globals_before, ready)
            finally:
                api.close()
        finally:
            st.down()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with kube_cluster(tmp_path_factory.mktemp("k8s-stack")) as c:
        yield c


def kubernetes_buildable(st: Stack) -> None:
    """Build the Go binaries outside the timed start (no-op on a warm machine)."""
    from farm.stack._kubernetes import ensure_binaries

    ensure_binaries(st.paths)


def exists(read: Callable[[], Any]) -> bool:
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


def finished(core: k8s.CoreV1Api, name: str, timeout: float = 120, namespace: str = NS) -> k8s.V1Pod:
    def done() -> k8s.V1Pod | None:
        p = core.read_namespaced_pod(name, namespace)
        return p if p.status.phase in ("Succeeded", "Failed") else None
    try:
        return wait_for(done, timeout, f"pod {name} to finish")
    except AssertionError:
        p = core.read_namespaced_pod(name, namespace)
        events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        raise AssertionError(f"pod {name} did not finish: {p.status}\n"
                             + "\n".join(f"{e.reason}: {e.message}" for e in events)) from None


def worker_kubeconfig(c: Cluster, namespace: str, path: Path, rules_namespace: str | None = None) -> str:
    """A kubeconfig for the worker's ServiceAccount `farm-worker` in `namespace`, bound to the Role of
    workers/rbac.py there (created if missing); returns its path."""
    from workers import rbac

    rbac_api = k8s.RbacAuthorizationV1Api(c.api)
    for create, body in ((c.core.create_namespaced_service_account, rbac.service_account(namespace)),
                         (rbac_api.create_namespaced_role, rbac.role(namespace)),
                         (rbac_api.create_namespaced_role_binding, rbac.role_binding(namespace, namespace))):
        try:
            create(namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
    token = c.core.create_namespaced_service_account_token(
        rbac.SERVICE_ACCOUNT, namespace,
        k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[]))).status.token
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "farm-worker",
        "clusters": [{"name": "farm", "cluster": {"server": c.layout.apiserver_url,
                                                   "certificate-authority": str(c.layout.pki / "ca.crt")}}],
        "users": [{"name": "farm-worker", "user": {"token": token}}],
        "contexts": [{"name": "farm-worker", "context": {"cluster": "farm", "user": "farm-worker",
                                                         "namespace": namespace}}]}))
    path.chmod(0o600)
    return str(path)
