from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import ConfigError
from farm.garden import load_project
from farm.garden.project import check_project
from tests.unit.garden.helpers import GIT, PROJECT, write

BUILD = """\
kind: Build
type: container
name: api
spec:
  buildArgs: {A: "1"}
"""


def load(root: Path, env: str | None = None):
    return load_project(root, env, git=GIT)


def test_loads_project_provider_and_builds(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT, "api/garden.yml": BUILD, "api/Dockerfile": "FROM scratch\n"})
    p = load(tmp_path)
    assert (p.name, p.environment, p.namespace) == ("demo", "dev", "dev-ns")
    assert p.root == tmp_path.resolve()
    assert p.provider is not None and p.provider.build_mode == "cluster-buildkit"
    reg = p.provider.deployment_registry
    assert reg is not None and (reg.hostname, reg.namespace, reg.port, reg.insecure) == (
        "registry.example.com", "team", None, False)
    assert p.provider.namespace is not None and p.provider.namespace.name == "demo-dev-ns"
    cache = p.provider.cluster_buildkit.cache
    assert [(c.type, c.mode, c.tag, c.export) for c in cache] == [("registry", "auto", "_buildcache", True)]
    b = p.builds["api"]
    assert b.config_file == tmp_path.resolve() / "api/garden.yml"
    assert b.source_dir == tmp_path.resolve() / "api"
    assert b.timeout == 600 and b.allow_publish and not b.build_at_source
    assert b.spec.dockerfile == "Dockerfile" and b.spec.build_args == {"A": "1"}
    assert b.spec.extra_flags is None and b.spec.platforms == []


def test_defaults_of_resources_and_kaniko(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT})
    p = load(tmp_path)
    assert p.provider is not None
    r = p.provider.resources
    assert (r.builder.limits.cpu, r.builder.limits.memory) == (4000, 8192)
    assert (r.builder.requests.cpu, r.builder.requests.memory) == (100, 512)
    assert r.builder.limits.quantities() == {"cpu": "4", "memory": "8Gi"}
    assert r.util.requests.quantities() == {"cpu": "256m", "memory": "512Mi"}
    assert p.provider.kaniko.image.startswith("gcr.io/kaniko-project/executor:v1.11.0-debug@sha256:32ba22")
    assert p.provider.image_pull_secrets == []


def test_environment_selection_and_unknown_env(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT})
    assert load(tmp_path, "ci").namespace == "default"
    assert load(tmp_path, "other.ci").namespace == "other"
    with pytest.raises(ConfigError, match="environment 'dve' is not defined.*did you mean 'dev'"):
        load(tmp_path, "dve")


def test_no_provider_means_local_docker(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": "kind: Project\nname: p\nenvironments: [{name: dev}]\n"})
    assert load(tmp_path).provider is None


def test_buildkit_mode_is_rejected_with_suggestion(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT.replace("cluster-buildkit", "buildkit")})
    with pytest.raises(ConfigError) as err:
        load(tmp_path)
    e = err.value
    assert e.line == 11 and e.field == "providers[0].buildMode"
    assert "did you mean 'cluster-buildkit'" in e.message
    assert str(e).startswith(str(tmp_path.resolve() / "project.garden.yml") + ":11 providers[0].buildMode:")


def test_unknown_provider_key_suggests(tmp_path: Path) -> None:
    text = PROJECT + "    clusterBuildkit:\n      rootles: true\n"
    write(tmp_path, {"project.garden.yml": text})
    with pytest.raises(ConfigError) as err:
        load(tmp_path)
    assert err.value.field == "providers[0].clusterBuildkit.rootles"
    assert err.value.line == 17  # PROJECT ends with its context line
    assert "did you mean 'rootless'" in err.value.message


def test_in_cluster_mode_needs_registry(tmp_path: Path) -> None:
    text = ("kind: Project\nname: p\nenvironments: [{name: dev}]\nproviders:\n  - name: kubernetes\n    context: c\n"
            "    buildMode: kaniko\n")
    write(tmp_path, {"project.garden.yml": text})
    with pytest.raises(ConfigError, match="needs a deploymentRegistry") as err:
        load(tmp_path)
    assert err.value.line == 5


def test_local_docker_accepts_a_registry(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT.replace("cluster-buildkit", "local-docker")})
    p = load(tmp_path)
    assert p.provider is not None and p.provider.deployment_registry is not None


def test_provider_filtered_by_environment(tmp_path: Path) -> None:
    text = PROJECT.replace("  - name: kubernetes\n", "  - name: kubernetes\n    environments: [ci]\n")
    write(tmp_path, {"project.garden.yml": text})
    assert load(tmp_path, "dev").provider is None
    assert load(tmp_path, "ci").provider is not None


def test_broken_yaml_names_line(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT, "api/garden.yml": "kind: Build\nname: [oops\n"})
    with pytest.raises(ConfigError, match="invalid YAML") as err:
        load(tmp_path)
    assert err.value.file and err.value.file.endswith("api/garden.yml") and err.value.line


def test_wrong_type_in_build(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT,
                     "api/garden.yml": BUILD + "timeout: soon\n"})
    with pytest.raises(ConfigError) as err:
        load(tmp_path)
    assert err.value.field == "timeout" and err.value.line == 6


def test_unknown_build_spec_field(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT,
                     "api/garden.yml": BUILD + "  dockerFile: x\n"})
    with pytest.raises(ConfigError, match="did you mean 'dockerfile'") as err:
        load(tmp_path)
    assert err.value.field == "spec.dockerFile"


def test_check_project_reports_every_problem(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT.replace("cluster-buildkit", "buildkit"),
                     "a/garden.yml": "kind: Build\ntype: container\nname: a\ntimeout: x\n",
                     "b/garden.yml": "kind: Build\ntype: container\nname: b\ndependencies: [build.nope]\n"})
    errors = check_project(tmp_path, git=GIT)
    assert len(errors) == 3
    assert all(e.file and e.line for e in errors)


def test_ignores_other_kinds_and_types(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT, "api/garden.yml": BUILD + """\
---
kind: Deploy
type: kubernetes
name: api
spec: {whatever: [1, 2]}
---
kind: Build
type: exec
name: tool
"""})
    assert list(load(tmp_path).builds) == ["api"]


def test_dependencies_and_unknown_dependency(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT, "api/garden.yml": BUILD + "dependencies: [build.base]\n",
                     "base/garden.yml": "kind: Build\ntype: container\nname: base\n"})
    assert load(tmp_path).builds["api"].dependencies == ["base"]
    write(tmp_path, {"api/garden.yml": BUILD + "dependencies: [build.bsae]\n"})
    with pytest.raises(ConfigError, match="did you mean 'base'"):
        load(tmp_path)


def test_no_project_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no Garden project config"):
        load(tmp_path)


def test_top_level_provider_typo(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT.replace("    buildMode:", "    buildMod:")})
    with pytest.raises(ConfigError, match="unknown field 'buildMod' \\(did you mean 'buildMode'\\?\\)") as err:
        load(tmp_path)
    assert err.value.line == 11


def test_other_providers_are_not_validated(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT + "  - name: exec\n    whatever: {x: 1}\n"
                                                     "  - name: terraform\n    initRoot: tf\n"})
    assert load(tmp_path).provider is not None


def test_resources_quantities_and_ephemeral(tmp_path: Path) -> None:
    text = PROJECT + ("    resources:\n      builder:\n        limits: {cpu: 1500, memory: 3000, ephemeralStorage: 10240}\n"
                      "      util:\n        requests: {cpu: 2000}\n")
    write(tmp_path, {"project.garden.yml": text})
    r = load(tmp_path).provider.resources  # type: ignore[union-attr]
    assert r.builder.limits.quantities() == {"cpu": "1500m", "memory": "3000Mi", "ephemeral-storage": "10Gi"}
    assert r.util.requests.quantities() == {"cpu": "2", "memory": "512Mi"}
    assert r.util.limits.cpu == 256


def test_bad_secret_and_platform(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT,
                     "api/garden.yml": BUILD + "  secrets: {'bad key': x}\n  platforms: [amd64]\n"})
    errors = check_project(tmp_path, git=GIT)
    assert {e.field for e in errors} == {"spec.secrets", "spec.platforms"}


def test_registry_error_names_the_provider_field(tmp_path: Path) -> None:
    text = ("kind: Project\nname: p\nenvironments:\n  - name: dev\n    providers:\n      - name: kubernetes\n"
            "        context: c\n        buildMode: cluster-buildkit\n")
    write(tmp_path, {"project.garden.yml": text})
    with pytest.raises(ConfigError) as err:
        load(tmp_path)
    assert err.value.field == "environments[0].providers[0].deploymentRegistry" and err.value.line == 6


def test_null_default_namespace_needs_namespace_on_the_command_line(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": "kind: Project\nname: p\nenvironments:\n  - name: dev\n"
                                           "    defaultNamespace: null\n"})
    with pytest.raises(ConfigError, match="--env <namespace>.dev"):
        load(tmp_path)
    assert load(tmp_path, "mine.dev").namespace == "mine"


@pytest.mark.parametrize("cpu, memory, quantities", [
    (4000, 8192, {"cpu": "4", "memory": "8Gi"}), (100, 512, {"cpu": "100m", "memory": "512Mi"}),
    (1500, 1000, {"cpu": "1500m", "memory": "1000Mi"}), (1000, 1536, {"cpu": "1", "memory": "1536Mi"}),
    (256, 1048576, {"cpu": "256m", "memory": "1Ti"}), (1, 1, {"cpu": "1m", "memory": "1Mi"}),
])
def test_resource_quantities(cpu: int, memory: int, quantities: dict) -> None:
    from farm.garden.models import ResourceConfig

    assert ResourceConfig(cpu=cpu, memory=memory).quantities() == quantities
