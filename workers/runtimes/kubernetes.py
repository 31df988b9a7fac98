"""The Kubernetes seam for cluster-buildkit: make sure a namespace's builder objects exist and are current.

`buildkit_for()` is what a worker on the kubernetes runtime calls before a cluster-buildkit build: it
ensures the namespace's `garden-buildkit` objects and returns the BUILDKIT_HOST buildctl talks to —
the Service (`tcp://garden-buildkit.<ns>.svc:1234`) for a worker inside the cluster, or, when the
deployment registry is on the node's loopback (the local stack), buildkitd on the node's network at
`tcp://127.0.0.1:<FARM_CLUSTER_BUILDKIT_PORT>`, or, for a worker outside the cluster, a local
port-forward through the API server (FARM_CLUSTER_BUILDKIT_ACCESS: auto | node | service | port-forward).

`ensure_buildkit()` applies the manifests of `k8s_objects` idempotently (GARDEN-SPEC §5.1, §5.2):
an object is left alone when its manifest-hash annotation matches, otherwise it is created or
replaced; the Deployment is waited for until ready; when the ServiceAccount's annotations change
(IRSA / Workload Identity) a running Deployment is cycled so its pod picks up new credentials.
All of it runs under a Redis lock per namespace, so concurrent workers never race on the same objects
(Garden only had an in-process lock).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
import urllib3
from redis import Redis

from farm import keys
from farm.errors import PermanentBuildError, TransientBuildError
from workers import k8s_objects as objects

READY_TIMEOUT = 600
_clients: dict[tuple[str, str | None], Any] = {}


def api_client(kubeconfig: str, context: str | None) -> Any:
    """One ApiClient per (kubeconfig, context) in this process; an unknown context falls back to the
    kubeconfig's current one (a farm's kubeconfig need not name its contexts as projects do)."""
    from kubernetes import config

    key = (kubeconfig, context)
    if key not in _clients:
        contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
        known = {c["name"] for c in contexts}
        _clients[key] = config.new_client_from_config(config_file=kubeconfig,
                                                      context=context if context in known else None)
    return _clients[key]


def loopback_host(ref: str) -> bool:
    """A registry on 127.0.0.1 / localhost: only the node's own network reaches it."""
    host = ref.split("/", 1)[0].rsplit(":", 1)[0]
    return host in ("localhost", "127.0.0.1") or host.startswith("127.")


def buildkit_for(options: Any, image: str, settings: Any, log: Callable[[str], None] = lambda line: None) -> str:
    """Ensure the project namespace's `garden-buildkit` (options: farm.in_cluster.BuildkitOptions) and
    return the BUILDKIT_HOST to build `image` with."""
    import json as _json

    from farm.broker import redis_client
    from farm.registry.build_config import build_docker_config, config_bytes
    from farm.registry.docker_config import DockerConfig

    if not settings.kubeconfig:
        raise PermanentBuildError("cluster-buildkit on the kubernetes runtime needs a kubeconfig (KUBECONFIG)")
    local = loopback_host(image)
    docker_config = _json.loads(config_bytes(build_docker_config(
        DockerConfig.load(settings.docker_config), None, [image.split("/", 1)[0]])))
    deployment = {**options.deployment_options(), "state_volume": True}
    if local:
        deployment.update(host_network=True, tcp_address=f"tcp://127.0.0.1:{settings.cluster_buildkit_port}")
    api = api_client(settings.kubeconfig, options.kube_context)
    infra = ensure_buildkit(api, redis_client(settings), options.namespace, docker_config=docker_config,
                            service_account_annotations=options.service_account_annotations,
                            deployment_options=deployment)
    log(f"farm: garden-buildkit in namespace {options.namespace} "
        f"{'updated' if infra.updated else 'ready, unchanged'}")
    access = settings.cluster_buildkit_access
    if access == "auto":
        access = "node" if local else "service" if os.environ.get("KUBERNETES_SERVICE_HOST") else "port-forward"
    if access == "port-forward":
        port = settings.cluster_buildkit_port if local else objects.BUILDKIT_PORT
        return port_forward(api, options.namespace, f"app={objects.BUILDKIT_DEPLOYMENT}", port)
    return f"tcp://127.0.0.1:{settings.cluster_buildkit_port}" if access == "node" else infra.address


_forwards: dict[tuple[int, str, str, int], str] = {}


def port_forward(api: Any, namespace: str, selector: str, port: int) -> str:
    """`tcp://127.0.0.1:<local>`: a listener in this worker whose every connection reaches `port` of a
    running Pod matching `selector`, through the API server's `pods/portforward` (for a worker outside
    the cluster). One listener per target for the worker's lifetime; the Pod is looked up per
    connection, so a rolled Deployment is followed."""
    import select
    import socket

    from kubernetes.stream import portforward

    key = (id(api), namespace, selector, port)
    if key in _forwards:
        return _forwards[key]
    core = client.CoreV1Api(api)
    listener = socket.create_server(("127.0.0.1", 0))

    def pump(conn: socket.socket) -> None:
        try:
            listed: list[Any] = core.list_namespaced_pod(namespace, label_selector=selector).items
            pods = [p for p in listed if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]
            if not pods:
                return
            pf = portforward(core.connect_get_namespaced_pod_portforward, pods[0].metadata.name, namespace,
                             ports=str(port))
            remote = pf.socket(port)
            remote.setblocking(True)
            pair = {conn: remote, remote: conn}
            while True:
                ready, _, _ = select.select(list(pair), [], [], 60)
                if not ready and not pf.connected:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    pair[s].sendall(data)
        except Exception:  # noqa: BLE001 - one connection fails; buildctl reports it
            return
        finally:
            conn.close()

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=pump, args=(conn,), name="buildkit-port-forward", daemon=True).start()

    threading.Thread(target=serve, name="buildkit-port-forward-listener", daemon=True).start()
    _forwards[key] = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    return _forwards[key]
LOCK_TIMEOUT = 2 * READY_TIMEOUT + 120          # longest possible hold: a cycle waits twice
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
T = TypeVar("T")


@dataclass(frozen=True)
class BuildkitInfra:
    """What a worker needs after `ensure_buildkit`: where buildkitd listens, and whether anything changed."""

    address: str
    auth_secret_name: str
    updated: bool


def ensure_buildkit(
    api: client.ApiClient,
    redis: Redis,
    namespace: str,
    *,
    docker_config: Mapping[str, Any],
    service_account_annotations: Mapping[str, str] | None = None,
    deployment_options: Mapping[str, Any] | None = None,
    timeout: float = READY_TIMEOUT,
) -> BuildkitInfra:
    """Ensure SA, docker-auth Secret, Deployment and Service `garden-buildkit` in `namespace`.

    `deployment_options` are the keyword arguments of `k8s_objects.buildkit_deployment`.
    """
    try:
        return _ensure(client.CoreV1Api(api), client.AppsV1Api(api), redis, namespace, docker_config,
                       service_account_annotations, deployment_options, timeout)
    except ApiException as exc:
        message = f"Kubernetes API error in namespace {namespace}: {exc.status} {exc.reason}"
        if exc.status in RETRY_STATUSES or not exc.status:
            raise TransientBuildError(message) from exc
        raise PermanentBuildError(message) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise TransientBuildError(f"Kubernetes API unreachable: {exc}") from exc


def _ensure(core: client.CoreV1Api, apps: client.AppsV1Api, redis: Redis, namespace: str,
            docker_config: Mapping[str, Any], service_account_annotations: Mapping[str, str] | None,
            deployment_options: Mapping[str, Any] | None, timeout: float) -> BuildkitInfra:
    lock = redis.lock(keys.lock(f"k8s-builder:{namespace}"), timeout=LOCK_TIMEOUT,
                      blocking_timeout=LOCK_TIMEOUT, thread_local=False)
    if not lock.acquire():
        raise TransientBuildError(f"timed out waiting for the builder lock of namespace {namespace}")
    try:
        sa = objects.service_account(namespace, service_account_annotations)
        sa_changed = apply(core, "service_account", sa)
        secret = objects.docker_auth_secret(namespace, docker_config)
        apply(core, "secret", secret)
        secret_name = secret["metadata"]["name"]
        deployment = objects.buildkit_deployment(namespace, secret_name, **dict(deployment_options or {}))

        live = _read(lambda: apps.read_namespaced_deployment(objects.BUILDKIT_DEPLOYMENT, namespace))
        if live is not None and sa_changed and _current(live, deployment):
            # a replaced Deployment restarts its pod anyway (Recreate); an unchanged one must be cycled
            _cycle(apps, namespace, live.spec.replicas or 1, timeout)
        changed = apply(apps, "deployment", deployment)
        _wait_ready(apps, core, namespace, timeout)
        changed = apply(core, "service", objects.buildkit_service(namespace)) or changed
    finally:
        lock.release()
    return BuildkitInfra(objects.buildkit_address(namespace), secret_name, changed or sa_changed)


def apply(api: Any, kind: str, manifest: dict[str, Any]) -> bool:
    """Create or replace `manifest` unless the live object carries the same hash; True when it wrote."""
    name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    live = _read(lambda: getattr(api, f"read_namespaced_{kind}")(name, namespace))
    if live is None:
        _retry(lambda: getattr(api, f"create_namespaced_{kind}")(namespace, manifest))
        return True
    if _current(live, manifest):
        return False
    metadata = {**manifest["metadata"], "resourceVersion": live.metadata.resource_version}
    body = {**manifest, "metadata": metadata}
    if kind == "service":                        # clusterIP is immutable: keep the allocated one
        body["spec"] = {**manifest["spec"], "clusterIP": live.spec.cluster_ip}
    _retry(lambda: getattr(api, f"replace_namespaced_{kind}")(name, namespace, body))
    return True


def _current(live: Any, manifest: Mapping[str, Any]) -> bool:
    want = manifest["metadata"]["annotations"][objects.HASH_ANNOTATION]
    return bool((live.metadata.annotations or {}).get(objects.HASH_ANNOTATION) == want)


def _cycle(apps: client.AppsV1Api, namespace: str, replicas: int, timeout: float) -> None:
    """Scale to 0 and back, so pods restart with the ServiceAccount's new credentials."""
    name = objects.BUILDKIT_DEPLOYMENT
    _retry(lambda: apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": 0}}))
    _poll(lambda: not (_any(apps.read_namespaced_deployment(name, namespace)).status.replicas or 0),
          timeout, f"Deployment {name} in {namespace} did not scale to 0")
    _retry(lambda: apps.patch_namespaced_deployment_scale(name, namespace, {"spec": {"replicas": replicas}}))


def _wait_ready(apps: client.AppsV1Api, core: client.CoreV1Api, namespace: str, timeout: float) -> None:
    name = objects.BUILDKIT_DEPLOYMENT

    def ready() -> bool:
        d: Any = apps.read_namespaced_deployment(name, namespace)
        want, status = d.spec.replicas or 0, d.status
        return bool((status.observed_generation or 0) >= (d.metadata.generation or 0)
                    and (status.updated_replicas or 0) == want and (status.ready_replicas or 0) >= want
                    and (status.replicas or 0) == want)

    try:
        _poll(ready, timeout, f"Deployment {name} in {namespace} was not ready after {timeout:.0f} s")
    except TransientBuildError as exc:
        raise TransientBuildError(f"{exc}{_pod_problems(core, namespace)}") from None


def _pod_problems(core: client.CoreV1Api, namespace: str) -> str:
    """Why the builder pods are not ready (ImagePullBackOff, CrashLoopBackOff …), for the error message."""
    try:
        pods = core.list_namespaced_pod(namespace, label_selector=f"app={objects.BUILDKIT_DEPLOYMENT}").items
    except ApiException:
        return ""
    reasons = []
    pod: Any
    for pod in pods:
        for status in pod.status.container_statuses or []:
            waiting = status.state.waiting if status.state else None
            if waiting and waiting.reason:
                detail = f"{waiting.reason} {waiting.message or ''}".rstrip()
                reasons.append(f"{pod.metadata.name}/{status.name}: {detail}")
    return (": " + "; ".join(reasons)) if reasons else ""


def _any(obj: object) -> Any:
    """A client model whose optional fields the API server always fills for a live object."""
    return obj


def _poll(check: Callable[[], bool], timeout: float, message: str) -> None:
    deadline, n = time.monotonic() + timeout, 0
    while not _retry(check):
        if time.monotonic() >= deadline:
            raise TransientBuildError(message)
        time.sleep(min(2 + 0.5 * n, 10))
        n += 1


def _read(call: Callable[[], T]) -> T | None:
    try:
        return _retry(call)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _retry(call: Callable[[], T], attempts: int = 5) -> T:
    """Retry API calls on transient HTTP statuses, 500 ms × n apart (Garden's `kubernetes/retry.ts`)."""
    for n in range(1, attempts + 1):
        try:
            return call()
        except ApiException as exc:
            if exc.status not in RETRY_STATUSES or n == attempts:
                raise
            time.sleep(0.5 * n)
    raise AssertionError("unreachable")
