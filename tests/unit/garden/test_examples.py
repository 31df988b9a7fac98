"""The example projects in config/examples load, and their versions change exactly when they should."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from farm import plan
from farm.garden import GitInfo
from farm.images import cache_refs, image_outputs
from farm.version import BuildVersion, compute_versions
from tests.unit.garden.helpers import commit_all, git_init, write

EXAMPLES = Path(__file__).resolve().parents[3] / "config" / "examples"
GIT = GitInfo(branch="feature/PAY-7_newCheckout", commit_hash="1" * 40)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLES / "shop", root)
    git_init(root)
    return root


def versions(root: Path, env: str = "dev") -> dict[str, str]:
    return {k: v.version_string for k, v in full(root, env).items()}


def full(root: Path, env: str = "dev") -> dict[str, BuildVersion]:
    return plan.load(root, env, git=GIT)[1]


def test_shop_dev(shop: Path) -> None:
    project = plan.load(shop, "dev", git=GIT)[0]
    assert sorted(project.builds) == ["api", "base", "web"]  # docs-site is outside scan
    provider = project.provider
    assert provider is not None and provider.build_mode == "cluster-buildkit"
    assert provider.resources.builder.limits.quantities() == {"cpu": "2", "memory": "4Gi"}
    assert provider.resources.builder.requests.cpu == 100
    api = project.builds["api"]
    assert api.timeout == 900 and api.spec.target_stage == "runtime"
    v = compute_versions(project)
    assert api.spec.build_args == {"CHANNEL": "edge", "PIP_INDEX_URL": None,
                                   "BASE_IMAGE": f"registry.shop.example.com/shop/base:{v['base'].version_string}"}
    web = project.builds["web"]
    assert web.source_dir == shop.resolve() / "frontend" and not web.allow_publish
    assert v["web"].files == (".dockerignore", "docker/web.Dockerfile", "public/index.html")
    assert v["api"].files == ("Dockerfile", "requirements.txt", "src/BUILD_INFO", "src/app.py")
    out = image_outputs(web, provider, v["web"].version_string)
    assert out.local_image_name == "shop/web"
    assert out.deployment_image_id == f"registry.shop.example.com/shop/web:{v['web'].version_string}"
    refs = [r.ref for r in cache_refs(api, provider)]
    assert refs == ["registry.shop.example.com/shop/api:_buildcache-feature-pay-7-new-checkout",
                    "registry.shop.example.com/shop/api:_buildcache-main"]


def test_shop_ci_overrides(shop: Path) -> None:
    dev, ci = plan.load(shop, "dev", git=GIT)[0], plan.load(shop, "ci", git=GIT)[0]
    assert ci.provider is not None and ci.provider.build_mode == "kaniko"
    assert ci.provider.kaniko.extra_flags == ["--snapshotMode=redo", "--use-new-run"]
    assert ci.builds["api"].spec.build_args["CHANNEL"] == "stable"
    vd, vc = versions(shop, "dev"), versions(shop, "ci")
    assert vd["base"] == vc["base"]          # nothing env-specific in base
    assert vd["api"] != vc["api"]            # CHANNEL differs
    assert vd["web"] != vc["web"]            # its own arg and its dependency differ
    assert dev.namespace == "dev" and ci.namespace == "ci"


def test_branch_changes_cache_tag_not_version(shop: Path) -> None:
    other = GitInfo(branch="main")
    a = plan.load(shop, git=GIT)[0]
    b = plan.load(shop, git=other)[0]
    assert a.provider and b.provider
    assert b.provider.cluster_buildkit.cache[0].tag == "_buildcache-main"
    assert versions(shop) == {k: v.version_string for k, v in compute_versions(b).items()}


@pytest.mark.parametrize("path,changes", [
    ("services/api/src/app.py", {"api", "web"}),              # included file
    ("services/api/requirements.txt", {"api", "web"}),
    ("services/api/src/app_test.py", set()),                  # excluded by exclude
    ("services/api/NOTES.md", set()),                         # not in include
    ("services/api/src/BUILD_INFO", set()),                   # version.excludeFiles
    ("services/api/debug.log", set()),                        # .gardenignore
    ("services/api/tmp/x", set()),                            # .gardenignore dir
    ("services/base/motd", {"base", "api", "web"}),           # dependency
    ("frontend/public/index.html", {"web"}),
    ("frontend/.dockerignore", {"web"}),                      # .dockerignore is the builder's business
    ("docs/readme.md", set()),
    ("README.md", set()),
])
def test_versions_change_exactly_when_they_should(shop: Path, path: str, changes: set[str]) -> None:
    before = versions(shop)
    target = shop / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text((target.read_text() if target.exists() else "") + "changed\n")
    after = versions(shop)
    assert {k for k in before if before[k] != after[k]} == changes
    commit_all(shop)
    assert versions(shop) == after  # committing changes nothing


def test_build_arg_and_unrelated_field(shop: Path) -> None:
    before = versions(shop)
    api = shop / "services/api/garden.yml"
    api.write_text(api.read_text().replace("description: The shop's API", "description: Renamed"))
    assert versions(shop) == before  # description is not versioned
    api.write_text(api.read_text().replace("targetStage: runtime", "targetStage: build"))
    after = versions(shop)
    assert after["api"] != before["api"] and after["base"] == before["base"]


def test_deploy_action_changes_do_not_matter(shop: Path) -> None:
    before = versions(shop)
    api = shop / "services/api/garden.yml"
    api.write_text(api.read_text().replace("containerPort: 8080", "containerPort: 9090"))
    assert versions(shop) == before


def test_gardenignore_added_later(shop: Path) -> None:
    before = full(shop)
    write(shop, {"frontend/.gardenignore": "*.html\n"})
    after = full(shop)
    assert "public/index.html" not in after["web"].files
    assert after["web"].version_string != before["web"].version_string


def test_demo_project_loads() -> None:
    demo = EXAMPLES / "demo"
    project = plan.load(demo, git=GIT)[0]
    assert project.provider is not None and project.provider.deployment_registry is not None
    assert set(compute_versions(project)) == set(project.builds)
