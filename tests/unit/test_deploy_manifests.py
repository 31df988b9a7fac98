"""deploy/ rendered by kustomize (built from the Go module proxy by scripts/install-kustomize.sh, cached),
every object validated against the Kubernetes OpenAPI schemas (offline, strict), and the wiring
between objects checked: namespaces, ServiceAccounts, Services' selectors, each pool's buildkitd and
KEDA query, probes, grace periods, the cloud overlays' identities and stores."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from farm.stack._go_tools import cache_dir

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("onprem", "aws", "gcp")
K8S_VERSION = "1.30"
CRDS = {"ScaledObject"}                 # KEDA's: no schema offline; checked by hand below
NAMESPACED_NOT = {"Namespace"}
# Secrets the operator creates (README): referenced, never shipped.
EXTERNAL_SECRETS = {"farm-registry-auth", "farm-flower-auth", "farm-gcs-hmac", "farm-sealing-key"}


@pytest.fixture(scope="module")
def kustomize() -> str:
    out = subprocess.run(["bash", str(ROOT / "scripts/install-kustomize.sh")], capture_output=True, text=True,
                         check=False, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    return _binary()


def _binary() -> str:
    version = re.search(r'version="\$\{KUSTOMIZE_VERSION:-([^}]+)\}"',
                        (ROOT / "scripts/install-kustomize.sh").read_text())
    assert version
    return str(cache_dir() / f"kustomize-{version.group(1)}" / "bin/kustomize")


def render(kustomize: str, path: Path) -> list[dict[str, Any]]:
    out = subprocess.run([kustomize, "build", str(path)], capture_output=True, text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def rendered(kustomize: str) -> dict[str, list[dict[str, Any]]]:
    return {o: render(kustomize, DEPLOY / "overlays" / o) for o in OVERLAYS}


def by(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pods(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod template) of every Deployment and StatefulSet."""
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet"):
            yield d, d["spec"]["template"]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_and_in_the_farm_namespace(rendered: dict[str, list[dict[str, Any]]],
                                                         overlay: str) -> None:
    docs = rendered[overlay]
    for doc in docs:
        if doc["kind"] not in CRDS:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        if doc["kind"] not in NAMESPACED_NOT:
            assert doc["metadata"].get("namespace") == "farm", f"{doc['kind']}/{doc['metadata']['name']}"
    assert "farm" in by(docs, "Namespace")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_references_resolve(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    accounts, configmaps, claims = by(docs, "ServiceAccount"), by(docs, "ConfigMap"), by(docs, "PersistentVolumeClaim")
    templates = [t for _, t in pods(docs)]
    for workload, t in pods(docs):
        spec = t["spec"]
        assert spec.get("serviceAccountName") in accounts, workload["metadata"]["name"]
        for c in spec["containers"]:
            assert re.match(r"^[a-z0-9.-]+(:\d+)?/", c["image"]) or c["image"].startswith(("redis:", "moby/")), \
                c["image"]                                     # the farm's image names its registry
            for src in c.get("envFrom", []):
                if "configMapRef" in src:
                    assert src["configMapRef"]["name"] in configmaps
                else:
                    assert src["secretRef"]["name"] in EXTERNAL_SECRETS
        for v in spec.get("volumes", []):
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims
            if "secret" in v:
                assert v["secret"]["secretName"] in EXTERNAL_SECRETS
            if "configMap" in v:
                assert v["configMap"]["name"] in configmaps
    for svc in by(docs, "Service").values():
        assert any(matches(svc["spec"]["selector"], t["metadata"]["labels"]) for t in templates), svc["metadata"]
    for pol in by(docs, "NetworkPolicy").values():
        assert any(matches(pol["spec"]["podSelector"]["matchLabels"], t["metadata"]["labels"]) for t in templates)
    deployments = by(docs, "Deployment")
    for so in by(docs, "ScaledObject").values():
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        assert so["spec"]["scaleTargetRef"]["name"] in deployments


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_pools(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    config = by(docs, "ConfigMap")["farm-config"]["data"]
    assert config["FARM_CONTEXT_STORE"]                         # an overlay says where contexts live
    soft = int(config["FARM_SOFT_SHUTDOWN_TIMEOUT"])
    services = by(docs, "Service")
    scaled = by(docs, "ScaledObject")
    workers = {n: d for n, d in by(docs, "Deployment").items() if d["metadata"]["labels"].get("app") == "farm-worker"}
    assert set(workers) == {"farm-worker-amd64", "farm-worker-arm64"}
    for name, d in workers.items():
        arch = name.rsplit("-", 1)[1]
        spec = d["spec"]["template"]["spec"]
        c = spec["containers"][0]
        assert spec["nodeSelector"]["kubernetes.io/arch"] == arch
        assert c["command"][:4] == ["farm", "worker", "--platform", f"linux/{arch}"]
        assert {"key": "garden-build", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
        assert spec["terminationGracePeriodSeconds"] > soft     # the soft shutdown fits in the grace
        assert c["livenessProbe"]["exec"]["command"][:3] == ["python3", "-m", "workers.alive"]
        assert "inspect" not in str(c)
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        host = re.fullmatch(r"tcp://([a-z0-9-]+):1234", env["BUILDKIT_HOST"])
        assert host and services[host.group(1)]["spec"]["selector"] == {"app": "farm-buildkitd", "arch": arch}
        query = scaled[name]["spec"]["triggers"][0]["metadata"]["query"]
        assert f"linux-{arch}" in query and "farm_queue_waiting" in query
        if config["FARM_CONTEXT_STORE"].startswith("file://"):
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert config["FARM_CONTEXT_STORE"].removeprefix("file://") in mounts


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_flower_and_privacy(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    redis = by(docs, "StatefulSet")["farm-redis"]
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    flower = by(docs, "Deployment")["farm-flower"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in flower["containers"][0]["env"]}
    assert env["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]["name"] == "farm-flower-auth"
    assert "--persistent=True" in flower["containers"][0]["command"]
    assert [v for v in flower["volumes"] if "persistentVolumeClaim" in v]
    policies = by(docs, "NetworkPolicy")
    assert set(policies) == {"farm-redis", "farm-buildkitd-amd64", "farm-buildkitd-arm64"}
    for arch in ("amd64", "arm64"):
        rule = policies[f"farm-buildkitd-{arch}"]["spec"]["ingress"]
        assert rule == [{"from": [{"podSelector": {"matchLabels": {"app": "farm-worker", "arch": arch}}}],
                         "ports": [{"port": 1234, "protocol": "TCP"}]}]
    # Only the worker carries a ServiceAccount token.
    for sa in by(docs, "ServiceAccount").values():
        assert sa.get("automountServiceAccountToken", True) == (sa["metadata"]["name"] == "farm-worker")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_worker_may_do_what_workers_rbac_declares_in_its_namespace(
        rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    from workers import rbac

    docs = rendered[overlay]
    role = by(docs, "Role")[rbac.ROLE]
    assert {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]} == {(r.api_group, r.resource, v) for r in rbac.RULES for v in r.verbs}
    binding = by(docs, "RoleBinding")[rbac.ROLE]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "farm-worker", "namespace": "farm"}]
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    # The kubeconfig the worker's runtime reads: its own cluster, with the pod's token.
    kubeconfig = yaml.safe_load(by(docs, "ConfigMap")["farm-kubeconfig"]["data"]["config"])
    user = kubeconfig["users"][0]["user"]
    assert user == {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://kubernetes.default.svc"
    for name in ("farm-worker-amd64", "farm-worker-arm64"):
        c = by(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in c["env"]}
        mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == "kubeconfig")
        assert env["KUBECONFIG"] == f"{mount}/config"


def test_cloud_overlays(rendered: dict[str, list[dict[str, Any]]]) -> None:
    aws, gcp = rendered["aws"], rendered["gcp"]
    assert by(aws, "ServiceAccount")["farm-worker"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] \
        .startswith("arn:aws:iam::")
    assert by(aws, "ConfigMap")["farm-config"]["data"]["FARM_CONTEXT_STORE"].startswith("s3://")
    assert ".dkr.ecr." in by(aws, "Deployment")["farm-worker-amd64"]["spec"]["template"]["spec"]["containers"][0][
        "image"]
    assert "iam.gke.io/gcp-service-account" in by(gcp, "ServiceAccount")["farm-worker"]["metadata"]["annotations"]
    data = by(gcp, "ConfigMap")["farm-config"]["data"]
    assert data["FARM_CONTEXT_STORE"].startswith("s3://") and data["FARM_S3_ENDPOINT_URL"]
    worker = by(gcp, "Deployment")["farm-worker-arm64"]["spec"]["template"]["spec"]
    assert "-docker.pkg.dev/" in worker["containers"][0]["image"]
    assert worker["nodeSelector"] == {"kubernetes.io/arch": "arm64", "iam.gke.io/gke-metadata-server-enabled": "true"}
    assert [s["configMapRef"]["name"] for s in worker["containers"][0]["envFrom"] if "configMapRef" in s] == \
        ["farm-config"]


def test_the_arm64_pool_is_the_amd64_pool_with_the_arch_swapped() -> None:
    base = {p.stem: p.read_text() for p in (DEPLOY / "base").glob("*.yaml")}
    for path in (DEPLOY / "components/arm64").glob("*-arm64.yaml"):
        arm = list(yaml.safe_load_all(path.read_text()))
        stem = path.stem.removesuffix("-arm64")
        amd = [d for d in yaml.safe_load_all(base[stem].replace("amd64", "arm64")) if d]
        if stem == "networkpolicy":
            amd = [d for d in amd if d["metadata"]["name"] == "farm-buildkitd-arm64"]
        assert arm == amd, path
