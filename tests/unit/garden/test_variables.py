"""Variables, varfiles, environment overrides and templates inside real config files."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm.errors import ConfigError
from farm import plan
from farm.garden import load_project
from farm.version import compute_versions
from tests.unit.garden.helpers import GIT, write

PROJECT = """\
kind: Project
name: demo
variables:
  channel: edge
  tag-prefix: ${project.name}
  secret-ish: abc123
excludeValuesFromActionVersions: ["abc[0-9]+"]
environments:
  - name: dev
    defaultNamespace: ns-${local.env.FARM_TEST_USER || "anon"}
    variables:
      channel: ${var.channel}-dev
  - name: prod
providers:
  - name: kubernetes
    context: test-context
    deploymentRegistry:
      hostname: reg.example.com
      namespace: ${environment.namespace}
"""
BUILD = """\
kind: Build
type: container
name: api
variables:
  local-var: ${var.tag-prefix}-x
varfiles: [api.env, {path: missing.env, optional: true}]
spec:
  buildArgs:
    CHANNEL: ${var.channel}
    LOCAL: ${var.local-var}
    FROM_FILE: ${var.from-file}
    NAME: ${this.name}
    ENV: ${environment.name}/${environment.namespace}
    BRANCH: ${git.branch}
    TOKEN: ${var.secret-ish}
    COUNT: ${var.count}
"""


def project(tmp_path: Path, env: str | None = None, **files: str):
    write(tmp_path, {"project.garden.yml": PROJECT, "api/garden.yml": BUILD, "api/api.env": "from-file=yes\n",
                     "garden.env": "count=3\n", **files})
    return load_project(tmp_path, env, git=GIT)


def test_variables_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_TEST_USER", "alice")
    p = project(tmp_path)
    assert p.namespace == "ns-alice"
    assert p.provider is not None and p.provider.deployment_registry is not None
    assert p.provider.deployment_registry.namespace == "ns-alice"
    assert p.builds["api"].spec.build_args == {
        "CHANNEL": "edge-dev", "LOCAL": "demo-x", "FROM_FILE": "yes", "NAME": "api",
        "ENV": "dev/ns-alice", "BRANCH": GIT.branch, "TOKEN": "abc123", "COUNT": "3"}


def test_env_specific(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FARM_TEST_USER", raising=False)
    assert project(tmp_path).namespace == "ns-anon"
    prod = project(tmp_path, "prod")
    assert prod.namespace == "default" and prod.builds["api"].spec.build_args["CHANNEL"] == "edge"


def test_env_varfile_wins(tmp_path: Path) -> None:
    p = project(tmp_path, **{"garden.dev.env": "channel=from-env-file\n"})
    assert p.builds["api"].spec.build_args["CHANNEL"] == "from-env-file"


def test_exclude_values_mask_config_hash(tmp_path: Path) -> None:
    v1 = compute_versions(project(tmp_path))["api"]
    write(tmp_path, {"project.garden.yml": PROJECT.replace("abc123", "abc999")})
    v2 = compute_versions(load_project(tmp_path, git=GIT))["api"]
    assert v1.config_version == v2.config_version


def test_missing_varfile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="varfile .*nope.env does not exist") as err:
        project(tmp_path, **{"api/garden.yml": BUILD.replace("api.env", "nope.env")})
    assert err.value.field == "varfiles[0]"


def test_unknown_variable_names_file_line_and_expression(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        project(tmp_path, **{"api/garden.yml": BUILD + "    OOPS: x-${var.nope}\n"})
    e = err.value
    assert e.file and e.file.endswith("api/garden.yml") and e.line == 17
    assert e.field == "spec.buildArgs.OOPS" and "${var.nope}" in e.message


def test_unknown_function(tmp_path: Path) -> None:
    with pytest.raises(ConfigError,
                       match=r"Could not find helper function 'snakeCase'.*\$\{snakeCase\(git.branch\)\}"):
        project(tmp_path, **{"api/garden.yml": BUILD + "    B: ${snakeCase(git.branch)}\n"})


def test_whole_value_templates_keep_types(tmp_path: Path) -> None:
    text = PROJECT.replace("  secret-ish: abc123\n", "  secret-ish: abc123\n  t: 120\n  plats: [linux/amd64]\n")
    build = "kind: Build\ntype: container\nname: api\ntimeout: ${var.t}\nspec:\n  platforms: ${var.plats}\n"
    write(tmp_path, {"project.garden.yml": text, "api/garden.yml": build})
    b = load_project(tmp_path, git=GIT).builds["api"]
    assert b.timeout == 120 and b.spec.platforms == ["linux/amd64"]


def test_action_environments_disabled_and_source_path(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT, "src/app/x": "1", "defs/garden.yml": """\
kind: Build
type: container
name: only-prod
environments: [prod]
---
kind: Build
type: container
name: off
disabled: ${environment.name == "dev"}
---
kind: Build
type: container
name: elsewhere
source:
  path: ../src/app
copyFrom:
  - build: off
    sourcePath: /out
---
kind: Build
type: container
name: dep-object
dependencies:
  - kind: Build
    name: elsewhere
"""})
    dev = load_project(tmp_path, "dev", git=GIT)
    assert "only-prod" not in dev.builds and "off" not in dev.builds
    assert dev.builds["elsewhere"].source_dir == (tmp_path / "src/app").resolve()
    assert dev.builds["dep-object"].dependencies == ["elsewhere"]
    prod = load_project(tmp_path, "prod", git=GIT)
    assert {"only-prod", "off"} <= set(prod.builds)
    assert prod.builds["elsewhere"].dependencies == ["off"]  # copyFrom implies a dependency


def test_duplicate_build_and_cycle(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT,
                     "a/garden.yml": "kind: Build\ntype: container\nname: a\ndependencies: [build.b]\n",
                     "b/garden.yml": "kind: Build\ntype: container\nname: b\ndependencies: [build.a]\n",
                     "c/garden.yml": "kind: Build\ntype: container\nname: a\n"})
    with pytest.raises(ConfigError, match="also defined in"):
        load_project(tmp_path, git=GIT)
    (tmp_path / "c/garden.yml").unlink()
    with pytest.raises(ConfigError, match="dependency cycle"):
        load_project(tmp_path, git=GIT)


def test_source_path_outside_project(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    write(tmp_path / "proj", {"project.garden.yml": PROJECT,
                              "a/garden.yml": "kind: Build\ntype: container\nname: a\nsource: {path: ../../outside}\n"})
    with pytest.raises(ConfigError, match="inside the project"):
        load_project(tmp_path / "proj", git=GIT)


REF_BASE = "kind: Build\ntype: container\nname: base\n"
REF_API = """\
kind: Build
type: container
name: api
spec:
  buildArgs:
    BASE_IMAGE: ${actions.build.base.outputs.deployment-image-id}
    BASE_VERSION: ${actions.build.base.version}
"""


def test_build_reads_another_builds_outputs(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT, "base/garden.yml": REF_BASE, "base/Dockerfile": "FROM scratch\n",
                     "api/garden.yml": REF_API, "api/Dockerfile": "FROM scratch\n"})
    p, v = plan.load(tmp_path, git=GIT)
    api = p.builds["api"]
    assert api.dependencies == ["base"]  # an implicit dependency, as in Garden
    assert api.spec.build_args == {"BASE_IMAGE": f"reg.example.com/{p.namespace}/base:{v['base'].version_string}",
                                   "BASE_VERSION": v["base"].version_string}
    before = v["api"].version_string
    write(tmp_path, {"base/Dockerfile": "FROM scratch\nENV X=1\n"})
    p2, v2 = plan.load(tmp_path, git=GIT)
    assert p2.builds["api"].spec.build_args["BASE_VERSION"] == v2["base"].version_string != v["base"].version_string
    assert v2["api"].version_string != before


def test_chained_references_and_unknown_reference(tmp_path: Path) -> None:
    third = "kind: Build\ntype: container\nname: web\nspec:\n  buildArgs:\n    API: ${actions.build.api.version}\n"
    write(tmp_path, {"project.garden.yml": PROJECT, "base/garden.yml": REF_BASE, "api/garden.yml": REF_API,
                     "web/garden.yml": third})
    p, v = plan.load(tmp_path, git=GIT)
    assert p.builds["web"].spec.build_args["API"] == v["api"].version_string
    write(tmp_path, {"web/garden.yml": third.replace("actions.build.api", "actions.build.apx")})
    with pytest.raises(ConfigError, match=r"actions.build.apx.*no container Build of that name") as err:
        plan.load(tmp_path, git=GIT)
    assert err.value.field == "spec.buildArgs.API" and err.value.line == 6


def test_reference_cycle(tmp_path: Path) -> None:
    a = "kind: Build\ntype: container\nname: a\nspec:\n  buildArgs:\n    B: ${actions.build.b.version}\n"
    b = "kind: Build\ntype: container\nname: b\nspec:\n  buildArgs:\n    A: ${actions.build.a.version}\n"
    write(tmp_path, {"project.garden.yml": PROJECT, "a/garden.yml": a, "b/garden.yml": b})
    with pytest.raises(ConfigError, match="cycle"):
        plan.load(tmp_path, git=GIT)
