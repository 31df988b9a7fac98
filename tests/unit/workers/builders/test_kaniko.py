"""workers/builders/kaniko.py and the executor Pod of GARDEN-SPEC §5.4 (workers/k8s_objects.py), as data;
the Pod validated against the Kubernetes schemas."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest

from farm.errors import ConfigError, PermanentBuildError
from farm.jobs import BuildRequest
from farm.kaniko import KanikoOptions
from workers.builder_job import Workspace, accepted
from workers.builders import BUILDERS, builder_for
from workers.builders.kaniko import BUILDER, executor_job
from workers.k8s_objects import BUILD_TOLERATION, kaniko_pod, kaniko_pod_name, stdin_context

OPTIONS = KanikoOptions(flags=("--cache=true", "--cache-repo=reg:5000/ns/api/cache"), namespace="builds",
                        node_selector={"pool": "build"},
                        tolerations=({"key": "dedicated", "operator": "Equal", "value": "b", "effect": "NoSchedule",
                                      "tolerationSeconds": "30"},),
                        annotations={"team": "a"},
                        resources={"limits": {"cpu": "2", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "256Mi"}})


def request(**overrides: object) -> BuildRequest:
    fields: dict[str, object] = dict(
        job_id="j1", project="p", build="api", version="v-1", platform="linux/amd64", mode="kaniko",
        image="reg:5000/ns/api:v-1", insecure=True, context="sha256:" + "c" * 64, context_store="file:///s",
        build_args={"GARDEN_ACTION_VERSION": "v-1", "FROM_ENV": None}, target="prod", kaniko=OPTIONS)
    fields.update(overrides)
    return BuildRequest.model_validate(fields)


WS = Workspace(context_dir="/tmp/ctx", docker_config=Path("/tmp/dc"), arg_env={"FROM_ENV": "e"},
               kaniko_image="reg:5000/farm/kaniko-executor:v1.25.16")


def test_kaniko_is_a_registered_builder() -> None:
    assert builder_for("kaniko") is BUILDER and "kaniko" in BUILDERS


def test_executor_job() -> None:
    (job,) = BUILDER.jobs(request(), WS)
    assert job.image == "reg:5000/farm/kaniko-executor:v1.25.16"
    assert job.argv == (
        "/kaniko/executor", "--context=dir:///workspace", "--dockerfile=Dockerfile",
        "--destination=reg:5000/ns/api:v-1", "--cache=true", "--cache-repo=reg:5000/ns/api/cache",
        "--insecure", "--insecure-pull", "--build-arg=GARDEN_ACTION_VERSION=v-1", "--build-arg=FROM_ENV=e",
        "--target=prod", "--custom-platform=linux/amd64")
    assert (job.context_dir, job.timeout, job.context_mount) == ("/tmp/ctx", 600, "/workspace")
    assert job.placement.namespace == "builds" and job.placement.service_account == "garden-in-cluster-builder"
    assert job.placement.resources["limits"]["memory"] == "1Gi"


def test_the_users_kaniko_image_wins_over_the_workers() -> None:
    (job,) = BUILDER.jobs(request(kaniko=OPTIONS.model_copy(update={"image": "my/executor:1"})), WS)
    assert job.image == "my/executor:1"


def test_no_image_anywhere_is_a_permanent_error() -> None:
    with pytest.raises(PermanentBuildError, match="no executor image"):
        executor_job(request(), Workspace(context_dir="/x", docker_config=Path("/d")))


def test_secrets_refused_with_gardens_message() -> None:
    with pytest.raises(ConfigError, match="Kaniko does not support secret build arguments"):
        executor_job(request(secret_ids=["token"]), WS)


def test_an_immutable_ecr_tag_that_exists_counts_as_success() -> None:
    (job,) = BUILDER.jobs(request(), WS)
    assert accepted(job, ["error pushing image: PUT …", "tag invalid: The image tag 'v-1' already exists in the "
                          "'api' repository and cannot be overwritten because the repository is immutable."])
    assert not accepted(job, ["error pushing image: 401 Unauthorized"])


def valid(manifest: dict) -> dict:
    kubernetes_validate.validate(manifest, "1.30.0", strict=True)
    return manifest


def test_pod_name_fits_and_differs_per_seed() -> None:
    name = kaniko_pod_name("a" * 80, "t1")
    assert len(name) <= 63 and name.startswith("kaniko-aaa") and name != kaniko_pod_name("a" * 80, "t2")
    assert kaniko_pod_name("My_Build", "x").startswith("kaniko-my-build-")


def test_executor_pod_is_gardens_shape_with_the_context_on_stdin() -> None:
    (job,) = BUILDER.jobs(request(), WS)
    pod = valid(kaniko_pod("builds", "kaniko-api-abcdef", image=job.image or "", argv=job.argv,
                           auth_secret_name="garden-docker-auth-123456", active_deadline=660,
                           tolerations=job.placement.tolerations, node_selector=job.placement.node_selector,
                           annotations=job.placement.annotations, resources=job.placement.resources,
                           image_pull_secrets=("pull",), labels={"farm/job": "j1"}))
    assert pod["metadata"]["namespace"] == "builds" and pod["metadata"]["annotations"] == {"team": "a"}
    assert pod["metadata"]["labels"]["farm/job"] == "j1"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["serviceAccountName"] == "garden-in-cluster-builder"
    assert spec["automountServiceAccountToken"] is False and spec["activeDeadlineSeconds"] == 660
    assert spec["nodeSelector"] == {"pool": "build"} and spec["imagePullSecrets"] == [{"name": "pull"}]
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Equal", "value": "b", "effect": "NoSchedule",
                                    "tolerationSeconds": 30}, BUILD_TOLERATION]
    assert "hostNetwork" not in spec
    (c,) = spec["containers"]
    assert c["command"] == ["/kaniko/executor"] and c["args"][0] == "--context=tar://stdin"
    assert c["args"][1:] == list(job.argv[2:])
    assert (c["stdin"], c["stdinOnce"]) == (True, True)
    assert c["volumeMounts"] == [{"name": "garden-docker-auth-123456", "mountPath": "/kaniko/.docker",
                                  "readOnly": True}]
    assert spec["volumes"][0]["secret"] == {"secretName": "garden-docker-auth-123456",
                                            "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}
    assert c["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}


def test_a_loopback_registry_puts_the_pod_on_the_host_network() -> None:
    pod = valid(kaniko_pod("b", "n", image="i", argv=["/kaniko/executor", "--context=dir:///workspace"],
                           auth_secret_name="s", active_deadline=60, host_network=True))
    assert pod["spec"]["hostNetwork"] is True and pod["spec"]["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert "nodeSelector" not in pod["spec"] and "annotations" not in pod["metadata"]
    assert stdin_context(["x", "--context=dir:///a", "--y"]) == ["x", "--context=tar://stdin", "--y"]


def test_a_build_that_runs_steps_is_pinned_to_its_architectures_nodes() -> None:
    (job,) = BUILDER.jobs(request(platform="linux/arm64", steps=["FROM image", "RUN"]), WS)
    assert job.placement.node_selector == {"pool": "build", "kubernetes.io/arch": "arm64"}
    (job,) = BUILDER.jobs(request(platform="linux/arm64", steps=["FROM scratch", "COPY"]), WS)
    assert job.placement.node_selector == {"pool": "build"}      # metadata only: any node writes it
