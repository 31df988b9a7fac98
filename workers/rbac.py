"""Least privilege: every Kubernetes call a worker's runtimes make, declared once.

`RULES` is the whole list of (apiGroup, resource, verbs) the kubernetes runtime needs in a namespace
it builds in (the kaniko namespace, the project namespace of cluster-buildkit); nothing cluster-wide.
deploy/base/rbac.yaml is rendered from it (`python -m workers.rbac > deploy/base/rbac.yaml`; a unit
test keeps the file equal to the rendering) and the integration tests bind exactly this Role to a
ServiceAccount, build with it, and check it is denied everything else.

    kaniko            pods create/get/delete, pods/log get, pods/attach create+get (the context goes
                      to the executor's stdin; websocket attach is a GET that also needs create),
                      the builder ServiceAccount and docker-auth Secret get/create/update
    cluster-buildkit  the same ServiceAccount and Secret, deployments get/create/update,
                      deployments/scale patch (the roll on a ServiceAccount change), services
                      get/create/update, pods list (why a Deployment is not ready; the Pod a
                      port-forward goes to), pods/portforward create+get (buildctl from outside)
    pull secrets      secrets get (imagePullSecrets, read by workers/pull_secrets.py)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

ROLE = "farm-worker"
SERVICE_ACCOUNT = "farm-worker"


@dataclass(frozen=True)
class Rule:
    api_group: str
    resource: str
    verbs: tuple[str, ...]


RULES: tuple[Rule, ...] = (
    Rule("", "pods", ("create", "delete", "get", "list")),
    Rule("", "pods/attach", ("create", "get")),
    Rule("", "pods/log", ("get",)),
    Rule("", "pods/portforward", ("create", "get")),
    Rule("", "secrets", ("create", "get", "update")),
    Rule("", "serviceaccounts", ("create", "get", "update")),
    Rule("", "services", ("create", "get", "update")),
    Rule("apps", "deployments", ("create", "get", "update")),
    Rule("apps", "deployments/scale", ("patch",)),
)


def allowed(api_group: str, resource: str, verb: str) -> bool:
    return any(r.api_group == api_group and r.resource == resource and verb in r.verbs for r in RULES)


def role(namespace: str | None = None, name: str = ROLE) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": "farm"}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata,
            "rules": [{"apiGroups": [r.api_group], "resources": [r.resource], "verbs": list(r.verbs)}
                      for r in RULES]}


def service_account(namespace: str | None = None, name: str = SERVICE_ACCOUNT) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": "farm"}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}


def role_binding(namespace: str | None = None, subject_namespace: str = "farm",
                 name: str = ROLE) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": "farm"}}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": subject_namespace}]}


def render() -> str:
    """deploy/base/rbac.yaml: the worker's ServiceAccount, its Role and the binding (namespace: kustomize's)."""
    header = ("# Generated from workers/rbac.py (python -m workers.rbac > deploy/base/rbac.yaml): the worker's\n"
              "# ServiceAccount and exactly the calls its kubernetes runtime makes, in the farm's namespace.\n"
              "# To build in other namespaces (kaniko.namespace, project namespaces), bind the same Role there.\n")
    docs = [service_account(), role(), role_binding()]
    return header + "---\n".join(yaml.safe_dump(d, sort_keys=False) for d in docs)


if __name__ == "__main__":
    print(render(), end="")
