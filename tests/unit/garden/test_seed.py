"""Every YAML example of the seed guide (config/examples/seed-guide, elisions filled in) loads."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from farm.errors import ConfigError
from farm.garden import KubernetesProvider, load_project
from farm.images import cache_refs, image_outputs
from tests.unit.garden.helpers import GIT, write

SEED = Path(__file__).resolve().parents[3] / "config" / "examples" / "seed-guide"
EXAMPLES = sorted(p.name for p in SEED.glob("*.yml"))


def load_example(tmp_path: Path, name: str):
    shutil.copy(SEED / name, tmp_path / "project.garden.yml")
    return load_project(tmp_path, git=GIT)


def provider(tmp_path: Path, name: str) -> KubernetesProvider:
    p = load_example(tmp_path, name).provider
    assert p is not None
    return p


def test_every_example_is_checked() -> None:
    assert len(EXAMPLES) == 15


@pytest.mark.parametrize("name", [n for n in EXAMPLES if n not in ("13-workload-identity.yml", "10-irsa.yml")])
def test_example_loads(tmp_path: Path, name: str) -> None:
    project = load_example(tmp_path, name)
    assert project.name == "my-project" and project.environment == "dev"
    assert project.provider is not None and project.provider.name == "kubernetes"


def test_tldr(tmp_path: Path) -> None:
    p = provider(tmp_path, "01-tldr.yml")
    assert p.build_mode == "kaniko"
    assert p.deployment_registry is not None
    assert (p.deployment_registry.hostname, p.deployment_registry.namespace) == ("my-private-registry.com",
                                                                                 "my-project")
    assert [(s.name, s.namespace) for s in p.image_pull_secrets] == [("my-deployment-registry-secret", "default")]


def test_rootless(tmp_path: Path) -> None:
    assert provider(tmp_path, "02-rootless.yml").cluster_buildkit.rootless is True


def test_branch_cache(tmp_path: Path) -> None:
    cache = provider(tmp_path, "03-branch-cache.yml").cluster_buildkit.cache
    assert [(c.tag, c.export, c.mode) for c in cache] == [
        ("_buildcache-feature-abc-123-foo-bar", True, "auto"), ("_buildcache-main", False, "auto")]


def test_cache_registry_and_forced_max(tmp_path: Path) -> None:
    c = provider(tmp_path, "04-cache-registry.yml").cluster_buildkit.cache[0]
    assert c.registry is not None and (c.registry.hostname, c.registry.namespace) == ("hub.docker.com",
                                                                                      "my-team-cache")
    c = provider(_fresh(tmp_path, "b"), "05-cache-mode-max.yml").cluster_buildkit.cache[0]
    assert c.mode == "max" and c.registry is not None and c.registry.hostname == "company-registry.example.com"


def _fresh(tmp_path: Path, sub: str) -> Path:
    (tmp_path / sub).mkdir()
    return tmp_path / sub


def test_tolerations(tmp_path: Path) -> None:
    p = provider(tmp_path, "06-tolerations.yml")
    t = p.kaniko.tolerations[0]
    assert (t.key, t.operator, t.value, t.effect) == ("garden-build", "Equal", "true", "NoSchedule")
    assert p.cluster_buildkit.tolerations == p.kaniko.tolerations


def test_environment_level_providers(tmp_path: Path) -> None:
    p = provider(tmp_path, "07-local-docker-env-providers.yml")
    assert p.context == "my-dev-context" and p.build_mode == "local-docker"
    assert p.deployment_registry is not None and p.deployment_registry.namespace == "my-project-id"


def test_irsa_duplicate_build_mode_is_refused(tmp_path: Path) -> None:
    # The guide's IRSA snippet shows both modes in one mapping: `buildMode` twice. Garden's YAML loader
    # refuses a duplicate key, and so does the farm (PyYAML alone would keep the last one silently).
    with pytest.raises(ConfigError) as exc:
        load_example(tmp_path, "10-irsa.yml")
    assert exc.value.line == 17 and exc.value.field == "providers[0].buildMode"
    assert "duplicate key 'buildMode' (first at line 12)" in str(exc.value)


def test_irsa_with_one_build_mode(tmp_path: Path) -> None:
    text = (SEED / "10-irsa.yml").read_text().replace("    buildMode: kaniko\n", "")
    write(tmp_path, {"project.garden.yml": text})
    p = load_project(tmp_path, git=GIT).provider
    assert p is not None and p.build_mode == "cluster-buildkit"
    role = "arn:aws:iam::<account-id>:role/<web-identity-role-name>"
    assert p.cluster_buildkit.service_account_annotations == {"eks.amazonaws.com/role-arn": role}
    assert p.kaniko.service_account_annotations == {"eks.amazonaws.com/role-arn": role}


def test_gar_namespace_with_slash(tmp_path: Path) -> None:
    load_example(tmp_path, "12-gar.yml")
    write(tmp_path, {"app/garden.yml": "kind: Build\ntype: container\nname: app\n"})
    project = load_project(tmp_path, git=GIT)
    out = image_outputs(project.builds["app"], project.provider, "v-1")
    assert out.deployment_image_id == "europe-central2-docker.pkg.dev/my-gcp-project/my-repository/app:v-1"


def test_gar_placeholders_unreplaced_name_the_expression(tmp_path: Path) -> None:
    text = (SEED / "12-gar.yml").read_text().replace("my-gcp-project/my-repository", "${PROJECT_ID}/${REPOSITORY}")
    write(tmp_path, {"project.garden.yml": text})
    with pytest.raises(ConfigError, match=r"PROJECT_ID") as err:
        load_project(tmp_path, git=GIT)
    assert err.value.line == 11 and err.value.field == "providers[0].deploymentRegistry.namespace"


def test_workload_identity_buildkit_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_example(tmp_path, "13-workload-identity.yml")      # buildMode twice: refused as Garden does
    assert err.value.field == "providers[0].buildMode" and err.value.line == 18
    assert "duplicate key 'buildMode'" in err.value.message
    text = (SEED / "13-workload-identity.yml").read_text().replace("    buildMode: kaniko\n", "")
    write(tmp_path, {"project.garden.yml": text})
    with pytest.raises(ConfigError) as err:
        load_project(tmp_path, git=GIT)
    assert err.value.field == "providers[0].buildMode" and err.value.line == 17
    assert "'buildkit'" in err.value.message and "did you mean 'cluster-buildkit'" in err.value.message


def test_multi_platform_build(tmp_path: Path) -> None:
    project = load_example(tmp_path, "14-multi-platform.yml")
    assert project.builds["my-container"].spec.platforms == ["linux/amd64", "linux/arm64"]


def test_ecr_cache_is_max_with_image_manifest(tmp_path: Path) -> None:
    load_example(tmp_path, "09-ecr.yml")
    write(tmp_path, {"app/garden.yml": "kind: Build\ntype: container\nname: app\n"})
    project = load_project(tmp_path, git=GIT)
    [ref] = cache_refs(project.builds["app"], project.provider)
    assert ref.ref == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-project/app:_buildcache"
    assert ref.mode == "max" and ref.image_manifest
