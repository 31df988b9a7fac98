"""deploy/'s overlays, rendered by kustomize, sent to the stack's REAL kube-apiserver as a server-side
dry run (dryRun=All, fieldValidation=Strict): the API server's own defaulting, validation and
admission accept every object. KEDA's ScaledObject is left out: its CRD cannot be fetched here (the
offline schema check in tests/unit/test_deploy_manifests.py covers its shape by hand)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from tests.integration.kube_cluster import Cluster, cluster  # noqa: F401  (fixture)
from tests.unit.test_deploy_manifests import DEPLOY, OVERLAYS, _binary, render

pytestmark = pytest.mark.integration
NOT_INSTALLED = {"ScaledObject"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    import subprocess

    from tests.unit.test_deploy_manifests import ROOT
    subprocess.run(["bash", str(ROOT / "scripts/install-kustomize.sh")], check=True, capture_output=True,
                   timeout=1800)
    return {o: render(_binary(), DEPLOY / "overlays" / o) for o in OVERLAYS}


def test_every_overlay_passes_a_server_side_dry_run(cluster: Cluster,  # noqa: F811
                                                    rendered: dict[str, list[dict[str, Any]]]) -> None:
    dyn = DynamicClient(cluster.api)
    # The Namespace for real: a dry-run Namespace leaves the namespaced objects nowhere to go.
    try:
        cluster.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="farm")))
    except ApiException as exc:
        if exc.status != 409:
            raise
    checked: dict[str, int] = {}
    failures: list[str] = []
    for overlay, docs in rendered.items():
        for doc in docs:
            if doc["kind"] in NOT_INSTALLED or doc["kind"] == "Namespace":
                continue
            resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            try:
                got = resource.create(body=doc, namespace=doc["metadata"].get("namespace"), dry_run="All",
                                      query_params=[("fieldValidation", "Strict")])
            except ApiException as exc:
                failures.append(f"{overlay}: {doc['kind']}/{doc['metadata']['name']}: {exc.status} {exc.body}")
                continue
            assert got.metadata.name == doc["metadata"]["name"]
            checked[overlay] = checked.get(overlay, 0) + 1
    # The Secrets deploy/cluster-secrets.sh makes for the operator, as the API server sees them.
    import os
    import subprocess
    import sys
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["bash", str(DEPLOY / "cluster-secrets.sh"), f"{tmp}/out"], check=True, capture_output=True,
                       env={"PATH": os.environ["PATH"], "PYTHON": sys.executable}, timeout=120)
        secrets = [d for d in yaml.safe_load_all(open(f"{tmp}/out/farm-secrets.yaml")) if d]
    for doc in secrets:
        try:
            cluster.core.create_namespaced_secret("farm", doc, dry_run="All", field_validation="Strict")
        except ApiException as exc:
            failures.append(f"cluster-secrets.sh: Secret/{doc['metadata']['name']}: {exc.status} {exc.body}")
    assert len(secrets) == 4
    assert not failures, "\n".join(failures)
    assert set(checked) == set(OVERLAYS) and all(n >= 20 for n in checked.values()), checked
    # The dry run does judge: the same Deployment with a misspelt field is refused.
    import copy
    bad = copy.deepcopy(next(d for d in rendered["onprem"] if d["kind"] == "Deployment"))
    bad["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    with pytest.raises(ApiException) as refused:
        dyn.resources.get(api_version="apps/v1", kind="Deployment").create(
            body=bad, namespace="farm", dry_run="All", query_params=[("fieldValidation", "Strict")])
    assert refused.value.status in (400, 422) and "terminationGracePeriod" in str(refused.value.body)
    # Dry run: nothing was created.
    assert k8s.AppsV1Api(cluster.api).list_namespaced_deployment("farm").items == []


def test_the_deployed_service_account_can_do_what_the_runtime_needs_and_nothing_else(
        cluster: Cluster, rendered: dict[str, list[dict[str, Any]]]) -> None:  # noqa: F811
    """The overlay's ServiceAccount, Role and RoleBinding created for real; a token of that account
    asks the API server what it may do (SelfSubjectAccessReview) and makes real calls."""
    from workers import rbac

    dyn = DynamicClient(cluster.api)
    try:
        cluster.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="farm")))
    except ApiException as exc:
        if exc.status != 409:
            raise
    for doc in rendered["onprem"]:
        if doc["kind"] in ("ServiceAccount", "Role", "RoleBinding") and doc["metadata"]["name"] == "farm-worker":
            dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"]).create(body=doc, namespace="farm")
    token = cluster.core.create_namespaced_service_account_token(
        "farm-worker", "farm", k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(
            audiences=[], expiration_seconds=600))).status.token
    conf = k8s.Configuration()
    base = cluster.api.configuration
    conf.host, conf.ssl_ca_cert, conf.verify_ssl = base.host, base.ssl_ca_cert, base.verify_ssl
    conf.api_key = {"authorization": f"Bearer {token}"}
    worker_api = k8s.ApiClient(conf)
    try:
        auth = k8s.AuthorizationV1Api(worker_api)

        def may(group: str, resource: str, verb: str, namespace: str = "farm") -> bool:
            res, _, sub = resource.partition("/")
            review = k8s.V1SelfSubjectAccessReview(spec=k8s.V1SelfSubjectAccessReviewSpec(
                resource_attributes=k8s.V1ResourceAttributes(group=group, resource=res, subresource=sub or None,
                                                             verb=verb, namespace=namespace)))
            return bool(auth.create_self_subject_access_review(review).status.allowed)

        for rule in rbac.RULES:
            for verb in rule.verbs:
                assert may(rule.api_group, rule.resource, verb), (rule, verb)
        for group, resource, verb in [("", "pods/exec", "create"), ("", "secrets", "list"), ("", "secrets", "delete"),
                                      ("", "namespaces", "create"), ("apps", "deployments", "delete"),
                                      ("rbac.authorization.k8s.io", "roles", "create"), ("", "configmaps", "get"),
                                      ("", "nodes", "list")]:
            assert not may(group, resource, verb), (group, resource, verb)
        assert not may("", "pods", "create", namespace="default")       # only in its own namespace
        core = k8s.CoreV1Api(worker_api)
        assert core.list_namespaced_pod("farm").items == []            # a real call, allowed
        with pytest.raises(ApiException) as denied:
            core.list_namespaced_secret("farm")
        assert denied.value.status == 403
    finally:
        worker_api.close()
