"""GARDEN-SPEC §5.1/§5.2: builder manifests, compared as values and validated against OpenAPI schemas."""

from __future__ import annotations

import base64
import hashlib
import json

import kubernetes_validate
import pytest

from farm.garden.models import BuilderResources
from workers.k8s_objects import (
    BUILD_TOLERATION,
    HASH_ANNOTATION,
    ROOTLESS_ANNOTATIONS,
    buildkit_address,
    buildkit_deployment,
    buildkit_service,
    docker_auth_secret,
    manifest_hash,
    service_account,
)

K8S_VERSION = "1.30.0"
NS = "shop-dev"


def valid(manifest: dict) -> dict:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    return manifest


def without_hash(manifest: dict) -> dict:
    out = json.loads(json.dumps(manifest))
    out["metadata"]["annotations"].pop(HASH_ANNOTATION)
    return out


def test_service_account() -> None:
    sa = valid(service_account(NS, {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/b"}))
    assert without_hash(sa) == {
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "garden-in-cluster-builder", "namespace": NS,
                     "labels": {"app.kubernetes.io/managed-by": "farm"},
                     "annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/b"}},
    }


def test_service_account_writes_empty_annotations() -> None:
    assert without_hash(valid(service_account(NS)))["metadata"]["annotations"] == {}


def test_docker_auth_secret_is_content_addressed() -> None:
    config = {"experimental": "enabled", "auths": {"ghcr.io": {"auth": "dTpw"}}, "credHelpers": {}}
    secret = valid(docker_auth_secret(NS, config))
    data = base64.b64encode(json.dumps(config, separators=(",", ":")).encode()).decode()
    assert secret["metadata"]["name"] == "garden-docker-auth-" + hashlib.sha256(data.encode()).hexdigest()[:6]
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["data"] == {".dockerconfigjson": data}
    assert json.loads(base64.b64decode(data)) == config
    other = docker_auth_secret(NS, {**config, "auths": {"ghcr.io": {"auth": "eDp5"}}})
    assert other["metadata"]["name"] != secret["metadata"]["name"]


def test_default_deployment() -> None:
    d = valid(buildkit_deployment(NS, "garden-docker-auth-abc123"))
    assert without_hash(d) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "garden-buildkit", "namespace": NS, "annotations": {},
                     "labels": {"app": "garden-buildkit", "app.kubernetes.io/managed-by": "farm"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "garden-buildkit"}},
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": {"app": "garden-buildkit"}},
                "spec": {
                    "serviceAccountName": "garden-in-cluster-builder",
                    "containers": [{
                        "name": "buildkitd",
                        "image": "docker.io/gardendev/buildkit:v0.23.2",
                        "args": ["--addr", "unix:///run/buildkit/buildkitd.sock",
                                 "--addr", "tcp://0.0.0.0:1234"],
                        "ports": [{"name": "buildkitd", "containerPort": 1234, "protocol": "TCP"}],
                        "readinessProbe": {"exec": {"command": ["buildctl", "debug", "workers"]},
                                           "initialDelaySeconds": 3, "periodSeconds": 5},
                        "securityContext": {"privileged": True},
                        "volumeMounts": [{"name": "garden-docker-auth-abc123", "mountPath": "/.docker",
                                          "readOnly": True}],
                        "env": [{"name": "DOCKER_CONFIG", "value": "/.docker"}],
                        "resources": {"limits": {"cpu": "4", "memory": "8Gi"},
                                      "requests": {"cpu": "100m", "memory": "512Mi"}},
                    }],
                    "imagePullSecrets": [],
                    "volumes": [{"name": "garden-docker-auth-abc123",
                                 "secret": {"secretName": "garden-docker-auth-abc123",
                                            "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}}],
                    "tolerations": [BUILD_TOLERATION],
                },
            },
        },
    }


def test_deployment_with_user_settings() -> None:
    d = valid(buildkit_deployment(
        NS, "garden-docker-auth-abc123",
        annotations={"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
        tolerations=[{"key": "spot", "operator": "Exists", "effect": "NoSchedule", "value": None},
                     {"key": "x", "value": "y", "effect": "NoExecute", "tolerationSeconds": "30"}],
        node_selector={"pool": "builders"},
        resources=BuilderResources(limits={"cpu": 2500, "memory": 4096, "ephemeralStorage": 20480},
                                   requests={"cpu": 1000, "memory": 1024, "ephemeralStorage": 1000}).requirements(),
        image_pull_secrets=["regcred"],
        util_image_registry_domain="mirror.example.com/",
    ))
    pod = d["spec"]["template"]
    assert d["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"
    assert pod["metadata"]["annotations"] == {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}
    assert pod["spec"]["tolerations"] == [
        {"key": "spot", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "x", "operator": "Equal", "value": "y", "effect": "NoExecute", "tolerationSeconds": 30},
        BUILD_TOLERATION,
    ]
    assert pod["spec"]["nodeSelector"] == {"pool": "builders"}
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    container = pod["spec"]["containers"][0]
    assert container["image"] == "mirror.example.com/gardendev/buildkit:v0.23.2"
    assert container["resources"] == {
        "limits": {"cpu": "2500m", "memory": "4Gi", "ephemeral-storage": "20Gi"},
        "requests": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1000Mi"},
    }


def test_empty_node_selector_is_left_out() -> None:
    assert "nodeSelector" not in buildkit_deployment(NS, "s", node_selector={})["spec"]["template"]["spec"]


def test_rootless_keeps_user_annotations() -> None:
    d = valid(buildkit_deployment(NS, "s", rootless=True, annotations={"team": "shop"}))
    pod = d["spec"]["template"]
    assert pod["metadata"]["annotations"] == {"team": "shop", **ROOTLESS_ANNOTATIONS}
    container = pod["spec"]["containers"][0]
    assert container["image"] == "docker.io/gardendev/buildkit:v0.23.2-rootless"
    assert container["args"] == ["--addr", "unix:///run/user/1000/buildkit/buildkitd.sock",
                                 "--addr", "tcp://0.0.0.0:1234", "--oci-worker-no-process-sandbox"]
    assert container["securityContext"] == {"runAsUser": 1000, "runAsGroup": 1000,
                                            "seccompProfile": {"type": "Unconfined"}}


def test_service() -> None:
    s = valid(buildkit_service(NS))
    assert without_hash(s)["spec"] == {
        "type": "ClusterIP", "selector": {"app": "garden-buildkit"},
        "ports": [{"name": "buildkitd", "port": 1234, "targetPort": "buildkitd", "protocol": "TCP"}],
    }
    assert buildkit_address(NS) == "tcp://garden-buildkit.shop-dev.svc:1234"


def test_manifest_hash_tracks_content_only() -> None:
    a = buildkit_deployment(NS, "s")
    assert a["metadata"]["annotations"][HASH_ANNOTATION] == manifest_hash(a)
    assert buildkit_deployment(NS, "s") == a                                  # deterministic
    assert buildkit_deployment(NS, "s2")["metadata"]["annotations"][HASH_ANNOTATION] != manifest_hash(a)
    assert service_account(NS, {"a": "1"})["metadata"]["annotations"][HASH_ANNOTATION] != \
        service_account(NS, {"a": "2"})["metadata"]["annotations"][HASH_ANNOTATION]


def test_schema_validation_catches_a_bad_manifest() -> None:
    bad = buildkit_deployment(NS, "s")
    bad["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        valid(bad)
