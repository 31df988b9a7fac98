"""The worker's side of imagePullSecrets: which registries a build's docker config must cover, and
how a secret that cannot be used fails the build before its builder starts (the reader is the seam
the real Kubernetes read plugs into; tests/integration/test_pull_secrets_cluster.py drives the real one)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from farm.errors import PermanentBuildError
from farm.images import CacheRef
from farm.jobs import BuildRequest, PullSecretRef
from farm.registry.docker_config import DockerConfig
from farm.registry.pull_secrets import PullSecret
from workers.pull_secrets import build_docker_config_dir, merged_pull_secrets, registries_of

PASSWORD = "pull-s3cret"


def request(**fields: object) -> BuildRequest:
    base: dict[str, object] = dict(job_id="j", project="p", build="api", version="v-0123456789",
                                   platform="linux/amd64", mode="local-docker",
                                   image="reg.example.com:5000/team/api:v-0123456789", context="sha256:00",
                                   context_store="file:///tmp/store")
    return BuildRequest(**{**base, **fields})


def dockerconfig(host: str, user: str) -> PullSecret:
    doc = {"auths": {host: {"auth": base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()}}}
    return PullSecret("regcred", "ci", "kubernetes.io/dockerconfigjson",
                      {".dockerconfigjson": base64.b64encode(json.dumps(doc).encode()).decode()})


def test_registries_are_the_image_the_caches_and_the_base_images_once_each(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("ARG BASE=private.example.com/base/os:1\n"
                                         "FROM ${BASE} AS build\nFROM gcr.io/p/x:2\nCOPY --from=build / /\n"
                                         "FROM reg.example.com:5000/team/other\n")
    cache = CacheRef(ref="cache.example.com/team/api:_buildcache", mode="max", export=True, insecure=False,
                     image_manifest=False)
    assert registries_of(request(cache=[cache]), tmp_path) == [
        "reg.example.com:5000", "cache.example.com", "private.example.com", "gcr.io"]


def test_a_build_arg_changes_the_base_image_registry(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("ARG BASE=a.example.com/x\nFROM ${BASE}\n")
    assert registries_of(request(build_args={"BASE": "b.example.com/y"}), tmp_path) == [
        "reg.example.com:5000", "b.example.com"]


def test_a_missing_secret_fails_the_build_naming_it() -> None:
    req = request(pull_secrets=[PullSecretRef(name="regcred", namespace="ci")])
    with pytest.raises(PermanentBuildError, match="Could not find secret 'regcred' in namespace 'ci'"):
        merged_pull_secrets(req, lambda name, namespace: None)


def test_a_malformed_secret_fails_the_build_without_its_value() -> None:
    bad = PullSecret("regcred", "ci", "Opaque", {".dockerconfigjson": base64.b64encode(PASSWORD.encode()).decode()})
    req = request(pull_secrets=[PullSecretRef(name="regcred", namespace="ci")])
    with pytest.raises(PermanentBuildError) as caught:
        merged_pull_secrets(req, lambda name, namespace: bad)
    assert "imagePullSecret 'regcred' in namespace 'ci' has type 'Opaque'" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_secrets_merge_in_order_later_wins() -> None:
    first, second = dockerconfig("private.example.com", "first"), dockerconfig("private.example.com", "second")
    secrets = {"a": first, "b": second}
    req = request(pull_secrets=[PullSecretRef(name="a", namespace="ci"), PullSecretRef(name="b", namespace="ci")])
    merged = merged_pull_secrets(req, lambda name, namespace: secrets[name])
    entry = DockerConfig.from_json(merged).entry("private.example.com")
    assert entry is not None and entry.username == "second"


def test_without_pull_secrets_the_worker_config_is_used_as_it_is(tmp_path: Path) -> None:
    with build_docker_config_dir(request(), tmp_path / "worker", tmp_path, tmp_path / "root") as directory:
        assert directory == tmp_path / "worker"
    assert not (tmp_path / "root").exists()
