"""workers/rbac.py: the one list of the worker's Kubernetes permissions, and deploy/base/rbac.yaml rendered from it."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml

from workers import rbac

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "base"


def test_deploy_base_rbac_is_the_rendering_of_the_rules() -> None:
    assert (DEPLOY / "rbac.yaml").read_text() == rbac.render(), \
        "regenerate it: python -m workers.rbac > deploy/base/rbac.yaml"


def test_rendering_is_valid_and_names_exactly_the_rules() -> None:
    docs = list(yaml.safe_load_all(rbac.render()))
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30", strict=True)
    role = next(d for d in docs if d["kind"] == "Role")
    assert {(r["apiGroups"][0], r["resources"][0], v) for r in role["rules"] for v in r["verbs"]} == \
        {(r.api_group, r.resource, v) for r in rbac.RULES for v in r.verbs}
    assert "namespaces" not in {r.resource for r in rbac.RULES} and all(v != "*" for r in rbac.RULES for v in r.verbs)


def test_worker_deployment_runs_as_that_service_account() -> None:
    worker = yaml.safe_load((DEPLOY / "worker.yaml").read_text())
    assert worker["spec"]["template"]["spec"]["serviceAccountName"] == rbac.SERVICE_ACCOUNT
    assert "rbac.yaml" in yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]


def test_allowed() -> None:
    assert rbac.allowed("", "pods/attach", "create") and not rbac.allowed("", "pods/exec", "create")
    assert not rbac.allowed("", "secrets", "list") and rbac.allowed("apps", "deployments/scale", "patch")

