"""The Kubernetes objects of the cluster-buildkit builder (GARDEN-SPEC §5.1, §5.2) as pure functions.

Each function returns a plain manifest dict carrying a manifest-hash annotation, so the runtime
(`kubernetes.py`) can tell "deployed and current" from "outdated" without a deep diff.

Differences from Garden, on purpose:
- buildkitd also listens on TCP (`--addr tcp://0.0.0.0:1234`) behind a ClusterIP Service `garden-buildkit`,
  because farm workers run buildctl themselves and stream the context over BuildKit's session;
  so there is no `util` rsync/skopeo sidecar and no `garden-sync` volume.
- rootless mode keeps the user's pod annotations (Garden replaces them, §5.2 QUIRK) and also sets
  `seccompProfile: Unconfined`, since the seccomp annotation is ignored by current Kubernetes.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from farm.garden.models import Resources

BUILDER_SERVICE_ACCOUNT = "garden-in-cluster-builder"
BUILDKIT_DEPLOYMENT = "garden-buildkit"
BUILDKIT_SERVICE = "garden-buildkit"
BUILDKIT_CONTAINER = "buildkitd"
BUILDKIT_PORT = 1234
BUILDKIT_IMAGE = "gardendev/buildkit:v0.23.2"
BUILDKIT_ROOTLESS_IMAGE = "gardendev/buildkit:v0.23.2-rootless"
DOCKER_AUTH_KEY = ".dockerconfigjson"
HASH_ANNOTATION = "farm/manifest-hash"
MANAGED_BY = {"app.kubernetes.io/managed-by": "farm"}
BUILD_TOLERATION = {"key": "garden-build", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
ROOTLESS_ANNOTATIONS = {
    "container.apparmor.security.beta.kubernetes.io/buildkitd": "unconfined",
    "container.seccomp.security.alpha.kubernetes.io/buildkitd": "unconfined",
}

Manifest = dict[str, Any]


# Garden's default `resources.builder`, as Kubernetes quantities.
DEFAULT_RESOURCES: Mapping[str, Mapping[str, str]] = Resources().builder.requirements()


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of a manifest, ignoring its own hash annotation."""
    body = copy.deepcopy(dict(manifest))
    annotations = body.get("metadata", {}).get("annotations") or {}
    annotations.pop(HASH_ANNOTATION, None)
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def with_hash(manifest: Manifest) -> Manifest:
    manifest["metadata"].setdefault("annotations", {})[HASH_ANNOTATION] = manifest_hash(manifest)
    return manifest


def service_account(namespace: str, annotations: Mapping[str, str] | None = None) -> Manifest:
    """SA `garden-in-cluster-builder`; `{}` annotations are written too, so removed ones get cleared."""
    return with_hash({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": BUILDER_SERVICE_ACCOUNT,
            "namespace": namespace,
            "labels": dict(MANAGED_BY),
            "annotations": dict(annotations or {}),
        },
    })


def docker_auth_secret(namespace: str, docker_config: Mapping[str, Any]) -> Manifest:
    """The merged docker config (§7) as Secret `garden-docker-auth-<sha256(base64data)[:6]>`."""
    data = base64.b64encode(json.dumps(docker_config, separators=(",", ":")).encode()).decode()
    name = "garden-docker-auth-" + hashlib.sha256(data.encode()).hexdigest()[:6]
    return with_hash({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "data": {DOCKER_AUTH_KEY: data},
    })


def toleration(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A user toleration in the API's shape: unset keys dropped, `tolerationSeconds` an int."""
    out = {k: v for k, v in spec.items() if v is not None}
    out.setdefault("operator", "Equal")
    if "tolerationSeconds" in out:
        out["tolerationSeconds"] = int(out["tolerationSeconds"])
    return out


def buildkit_deployment(
    namespace: str,
    auth_secret_name: str,
    *,
    rootless: bool = False,
    annotations: Mapping[str, str] | None = None,
    tolerations: Sequence[Mapping[str, Any]] = (),
    node_selector: Mapping[str, str] | None = None,
    resources: Mapping[str, Mapping[str, str]] = DEFAULT_RESOURCES,
    image_pull_secrets: Sequence[str] = (),
    util_image_registry_domain: str = "docker.io",
    host_network: bool = False,
    tcp_address: str = f"tcp://0.0.0.0:{BUILDKIT_PORT}",
    state_volume: bool = False,
) -> Manifest:
    """Deployment `garden-buildkit`: one buildkitd, Recreate, privileged or rootless (§5.2).

    `host_network` with a loopback `tcp_address`: for a registry only the node's loopback reaches (the
    local stack); `state_volume`: buildkitd's state on an emptyDir, not on the container's overlay root
    (overlayfs snapshots cannot stack on an overlay root)."""
    registry = util_image_registry_domain.rstrip("/")
    labels = {"app": BUILDKIT_DEPLOYMENT}
    tcp = tcp_address
    container: dict[str, Any] = {
        "name": BUILDKIT_CONTAINER,
        "image": f"{registry}/{BUILDKIT_IMAGE}",
        "args": ["--addr", "unix:///run/buildkit/buildkitd.sock", "--addr", tcp],
        # on the host network the container port is the node's: the one buildkitd listens on
        "ports": [{"name": "buildkitd", "containerPort": int(tcp.rsplit(":", 1)[1]), "protocol": "TCP"}],
        "readinessProbe": {
            "exec": {"command": ["buildctl", "debug", "workers"]},
            "initialDelaySeconds": 3,
            "periodSeconds": 5,
        },
        "securityContext": {"privileged": True},
        "volumeMounts": [{"name": auth_secret_name, "mountPath": "/.docker", "readOnly": True}],
        "env": [{"name": "DOCKER_CONFIG", "value": "/.docker"}],
        "resources": {side: dict(values) for side, values in resources.items()},
    }
    pod_annotations = dict(annotations or {})
    if rootless:
        container["image"] = f"{registry}/{BUILDKIT_ROOTLESS_IMAGE}"
        container["args"] = ["--addr", "unix:///run/user/1000/buildkit/buildkitd.sock", "--addr", tcp,
                             "--oci-worker-no-process-sandbox"]
        container["securityContext"] = {
            "runAsUser": 1000, "runAsGroup": 1000, "seccompProfile": {"type": "Unconfined"}}
        pod_annotations.update(ROOTLESS_ANNOTATIONS)

    if state_volume:
        state_dir = "/home/user/.local/share/buildkit" if rootless else "/var/lib/buildkit"
        container["volumeMounts"].append({"name": "buildkit-state", "mountPath": state_dir})

    pod_spec: dict[str, Any] = {
        "serviceAccountName": BUILDER_SERVICE_ACCOUNT,
        "containers": [container],
        "imagePullSecrets": [{"name": name} for name in image_pull_secrets],
        "volumes": [{
            "name": auth_secret_name,
            "secret": {"secretName": auth_secret_name,
                       "items": [{"key": DOCKER_AUTH_KEY, "path": "config.json"}]},
        }],
        "tolerations": [toleration(t) for t in tolerations] + [dict(BUILD_TOLERATION)],
    }
    if node_selector:
        pod_spec["nodeSelector"] = dict(node_selector)
    if state_volume:
        pod_spec["volumes"].append({"name": "buildkit-state", "emptyDir": {}})
    if host_network:
        pod_spec["hostNetwork"] = True
        pod_spec["dnsPolicy"] = "ClusterFirstWithHostNet"

    template_metadata: dict[str, Any] = {"labels": dict(labels)}
    if pod_annotations:
        template_metadata["annotations"] = pod_annotations
    return with_hash({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": BUILDKIT_DEPLOYMENT,
            "namespace": namespace,
            "labels": {**labels, **MANAGED_BY},
            "annotations": dict(annotations or {}),
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            # never two buildkitd pods at once: a build must not land on a pod that is going away
            "strategy": {"type": "Recreate"},
            "template": {"metadata": template_metadata, "spec": pod_spec},
        },
    })


def buildkit_service(namespace: str) -> Manifest:
    """ClusterIP Service `garden-buildkit` on buildkitd's TCP port, for farm workers in the cluster."""
    return with_hash({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": BUILDKIT_SERVICE, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": BUILDKIT_DEPLOYMENT},
            "ports": [{"name": "buildkitd", "port": BUILDKIT_PORT, "targetPort": "buildkitd",
                       "protocol": "TCP"}],
        },
    })


def buildkit_address(namespace: str) -> str:
    """BUILDKIT_HOST for a worker inside the cluster."""
    return f"tcp://{BUILDKIT_SERVICE}.{namespace}.svc:{BUILDKIT_PORT}"


# --- kaniko: one Pod per build (GARDEN-SPEC §5.4) ------------------------------------------------

KANIKO_CONTAINER = "kaniko"
KANIKO_LABEL = {"app": "farm-kaniko"}
STDIN_CONTEXT = "--context=tar://stdin"


def kaniko_pod_name(build: str, seed: str) -> str:
    """`kaniko-<build>-<6 hex>` (§5.4): sha1 of the build name and `seed`, the prefix cut so the whole
    name fits 63 characters; lower-cased and stripped to what a Pod name allows."""
    digest = hashlib.sha1(f"{build}{seed}".encode()).hexdigest()[:6]
    prefix = "".join(c if c.isalnum() or c == "-" else "-" for c in f"kaniko-{build}".lower())[:56].rstrip("-")
    return f"{prefix}-{digest}"


def stdin_context(argv: Sequence[str]) -> list[str]:
    """The executor's arguments with its context read from stdin (kaniko's `tar://stdin`, a gzip tar)."""
    return [STDIN_CONTEXT if a.startswith("--context=") else a for a in argv]


def kaniko_pod(
    namespace: str,
    name: str,
    *,
    image: str,
    argv: Sequence[str],
    auth_secret_name: str,
    active_deadline: int,
    tolerations: Sequence[Mapping[str, Any]] = (),
    node_selector: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    resources: Mapping[str, Mapping[str, str]] = DEFAULT_RESOURCES,
    image_pull_secrets: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    host_network: bool = False,
) -> Manifest:
    """The executor Pod of one build (§5.4), with the farm's context delivery: no init container and
    no rsync `garden-util` service; the container's stdin is open once (`stdinOnce`) and the worker
    writes the context to it as a gzip tar through the attach API, so the Pod needs no volume for it.

    Unlike Garden: the executor runs directly (no `/bin/sh -c` wrapper, so any executor image works,
    not only `-debug` ones; no `shareProcessNamespace`), the Pod gets no API token (kaniko needs none)
    and an `activeDeadlineSeconds`, so the node ends a build whose worker died.
    """
    args = stdin_context(argv)
    container: dict[str, Any] = {
        "name": KANIKO_CONTAINER,
        "image": image,
        "command": [args[0]],
        "args": list(args[1:]),
        "stdin": True,
        "stdinOnce": True,
        "volumeMounts": [{"name": auth_secret_name, "mountPath": "/kaniko/.docker", "readOnly": True}],
        "resources": {side: dict(values) for side, values in resources.items()},
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": BUILDER_SERVICE_ACCOUNT,
        "automountServiceAccountToken": False,
        "activeDeadlineSeconds": int(active_deadline),
        "terminationGracePeriodSeconds": 5,
        "containers": [container],
        "volumes": [{
            "name": auth_secret_name,
            "secret": {"secretName": auth_secret_name, "items": [{"key": DOCKER_AUTH_KEY, "path": "config.json"}]},
        }],
        "tolerations": [toleration(t) for t in tolerations] + [dict(BUILD_TOLERATION)],
    }
    if image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in image_pull_secrets]
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if host_network:            # a registry on the node's loopback (the local stack)
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    metadata: dict[str, Any] = {"name": name, "namespace": namespace,
                                "labels": {**KANIKO_LABEL, **MANAGED_BY, **dict(labels or {})}}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
