"""deploy/ rendered by kustomize (built from the Go module proxy by scripts/install-kustomize.sh, cached),
every object validated against the Kubernetes OpenAPI schemas (offline, strict), and the wiring
between objects checked: namespaces, ServiceAccounts, Services' selectors, each pool's buildkitd and
KEDA query, probes, grace periods, the cloud overlays' identities and stores."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
# Secrets the operator creates (README): referenced, never shipped. deploy/cluster-secrets.sh makes
# the farm's own (GENERATED); the others hold the operator's cloud and registry logins.
GENERATED_SECRETS = {"farm-redis-acl", "farm-redis-users", "farm-flower-auth", "farm-sealing-key"}
EXTERNAL_SECRETS = {"farm-registry-auth", "farm-gcs-hmac"} | GENERATED_SECRETS


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


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, str]]]:
    """deploy/cluster-secrets.sh run for real: its output directory and {Secret: stringData}."""
    out = tmp_path_factory.mktemp("secrets") / "farm"
    run = subprocess.run(["bash", str(DEPLOY / "cluster-secrets.sh"), str(out)], capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"], "PYTHON": sys.executable}, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    docs = list(yaml.safe_load_all((out / "farm-secrets.yaml").read_text()))
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["metadata"]["namespace"] == "farm"
    data = {d["metadata"]["name"]: d["stringData"] for d in docs}
    # Nothing secret printed: only the public sealing key and the file's name.
    assert not any(v in run.stdout + run.stderr for d in data.values() for v in d.values())
    assert "FARM_SEALING_PUBLIC_KEY=" in run.stdout
    return out, data


def test_cluster_secrets_are_made_once_and_private(generated: tuple[Path, dict[str, dict[str, str]]]) -> None:
    out, data = generated
    assert set(data) == GENERATED_SECRETS
    assert oct(out.stat().st_mode)[-3:] == "700"
    assert oct((out / "farm-secrets.yaml").stat().st_mode)[-3:] == "600"
    acl = data["farm-redis-acl"]["users.acl"]
    for key, value in data["farm-redis-users"].items():
        url = urlsplit(value)
        assert url.password and url.password not in acl, key                # hashes only
        digest = hashlib.sha256(url.password.encode()).hexdigest()
        assert f"user {url.username} on #{digest} " in acl, key               # its own password's hash
        assert (url.hostname, url.port) == ("farm-redis", 6379)
    users = {k: urlsplit(v).username for k, v in data["farm-redis-users"].items()}
    assert users == {"worker-broker-url": "worker", "worker-backend-url": "worker", "flower-broker-url": "flower",
                     "producer-broker-url": "producer", "producer-backend-url": "producer", "admin-url": "admin"}
    assert re.fullmatch(r"farm:[0-9a-f]{48}", data["farm-flower-auth"]["basic_auth"])
    again = subprocess.run(["bash", str(DEPLOY / "cluster-secrets.sh"), str(out)], capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], "PYTHON": sys.executable}, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    redone = {d["metadata"]["name"]: d["stringData"] for d in yaml.safe_load_all((out / "farm-secrets.yaml").read_text())}
    assert redone == data                                                   # a second run keeps them


def _secret_refs(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """env name -> (Secret, key) for the container's secretKeyRef variables."""
    return {e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_redis_users_and_the_sealing_key_are_wired(rendered: dict[str, list[dict[str, Any]]], overlay: str,
                                                   generated: tuple[Path, dict[str, dict[str, str]]]) -> None:
    docs, data = rendered[overlay], generated[1]
    # Every Secret a pod reads, and each key of it, is one cluster-secrets.sh makes (or the operator's).
    for workload, t in pods(docs):
        for c in t["spec"]["containers"]:
            for secret, key in _secret_refs(c).values():
                assert secret in EXTERNAL_SECRETS, (workload["metadata"]["name"], secret)
                if secret in GENERATED_SECRETS:
                    assert key in data[secret], (workload["metadata"]["name"], secret, key)
            # No Redis URL (nor its password) in argv or a plain env value.
            plain = [*c.get("command", []), *c.get("args", []), *(e.get("value", "") for e in c.get("env", []))]
            assert not [a for a in plain if "redis://" in a], workload["metadata"]["name"]
        for v in t["spec"].get("volumes", []):
            if v.get("secret", {}).get("secretName") in GENERATED_SECRETS:
                assert not v["secret"].get("optional"), v
                assert {i["key"] for i in v["secret"]["items"]} <= set(data[v["secret"]["secretName"]])
    assert not [v for v in by(docs, "ConfigMap")["farm-config"]["data"].values() if "redis://" in v]

    def mounted_file(t: dict[str, Any], c: dict[str, Any], secret: str) -> str:
        """The path at which container `c` sees the single item of Secret `secret`."""
        vol = next(v for v in t["spec"]["volumes"] if v.get("secret", {}).get("secretName") == secret)
        mount = next(m for m in c["volumeMounts"] if m["name"] == vol["name"])
        assert mount.get("readOnly") is True
        return f"{mount['mountPath']}/{vol['secret']['items'][0]['path']}"

    # Redis loads the ACL file from its Secret; the clients log in as their own users.
    redis = by(docs, "StatefulSet")["farm-redis"]["spec"]["template"]
    rc = redis["spec"]["containers"][0]
    assert rc["args"][rc["args"].index("--aclfile") + 1] == mounted_file(redis, rc, "farm-redis-acl")
    expect = {"farm-worker-amd64": {"FARM_BROKER_URL": "worker-broker-url", "FARM_RESULT_BACKEND": "worker-backend-url"},
              "farm-worker-arm64": {"FARM_BROKER_URL": "worker-broker-url", "FARM_RESULT_BACKEND": "worker-backend-url"},
              "farm-flower": {"CELERY_BROKER_URL": "flower-broker-url"},
              "farm-metrics": {"FARM_BROKER_URL": "flower-broker-url"}}
    deployments = by(docs, "Deployment")
    for name, wanted in expect.items():
        c = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        refs = _secret_refs(c)
        assert {var: refs[var] for var in wanted} == {var: ("farm-redis-users", key) for var, key in wanted.items()}
        assert urlsplit(data["farm-redis-users"][next(iter(wanted.values()))]).hostname == \
            by(docs, "Service")["farm-redis"]["metadata"]["name"]
    # Every worker holds the sealing key, where FARM_SEALING_KEY_FILE says; nobody else does.
    for name, d in deployments.items():
        t = d["spec"]["template"]
        c = t["spec"]["containers"][0]
        has_key = any(v.get("secret", {}).get("secretName") == "farm-sealing-key" for v in t["spec"].get("volumes", []))
        assert has_key == (d["metadata"]["labels"].get("app") == "farm-worker"), name
        if has_key:
            env = {e["name"]: e.get("value") for e in c["env"]}
            assert env["FARM_SEALING_KEY_FILE"] == mounted_file(t, c, "farm-sealing-key")
