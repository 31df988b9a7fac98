from __future__ import annotations

from pathlib import Path

import pytest

from farm.garden.models import BuildAction, KubernetesProvider
from farm.images import build_args, image_outputs, parse_image_id


def build(name: str = "api", **spec: object) -> BuildAction:
    return BuildAction.model_validate({"name": name, "configFile": Path("/p/garden.yml"),
                                       "sourceDir": Path("/p"), "spec": spec})


def provider(**registry: object) -> KubernetesProvider:
    return KubernetesProvider.model_validate({"deploymentRegistry": registry} if registry else {})


def test_spec_example() -> None:
    out = image_outputs(build(), provider(hostname="my-registry.com", namespace="proj"), "v-0123456789")
    assert out.deployment_image_id == "my-registry.com/proj/api:v-0123456789"
    assert out.local_image_id == "api:v-0123456789"
    assert out.deployment_image_tag == "v-0123456789"


def test_no_registry_deployment_is_local() -> None:
    for prov in (None, provider()):
        out = image_outputs(build(), prov, "v-1")
        assert out.deployment_image_name == out.local_image_name == "api"


def test_namespace_less_and_port() -> None:
    out = image_outputs(build(), provider(hostname="reg.local", port=5000), "v-1")
    assert out.deployment_image_id == "reg.local:5000/api:v-1"
    out = image_outputs(build(), provider(hostname="reg.local", namespace=""), "v-1")
    assert out.deployment_image_name == "reg.local/api"


def test_local_id_rules() -> None:
    b = build(localId="ghcr.io/org/thing:latest")
    out = image_outputs(b, provider(hostname="gcr.io/deploymentRegistry", namespace="ns"), "v-2")
    assert out.local_image_name == "ghcr.io/org/thing"
    assert out.local_image_id == "ghcr.io/org/thing:v-2"
    assert out.deployment_image_name == "gcr.io/deploymentRegistry/ns/thing"


@pytest.mark.parametrize("image,parts", [
    ("busybox", (None, None, "busybox", "latest")),
    ("org/app:1.0", (None, "org", "app", "1.0")),
    ("localhost:5000/org/app", ("localhost:5000", "org", "app", "latest")),
    ("h.io/a/b/c:t", ("h.io", "a/b", "c", "t")),
])
def test_parse_image_id(image: str, parts: tuple[object, ...]) -> None:
    p = parse_image_id(image)
    assert (p.host, p.namespace, p.repository, p.tag) == parts


def test_build_args() -> None:
    b = build(buildArgs={"GARDEN_ACTION_VERSION": "mine", "EMPTY": "", "FROM_ENV": None, "ZERO": 0,
                         "FLAG": True})
    assert build_args(b, "v-9") == {"GARDEN_MODULE_VERSION": "v-9", "GARDEN_ACTION_VERSION": "mine",
                                    "FROM_ENV": None, "ZERO": "0", "FLAG": "true"}
