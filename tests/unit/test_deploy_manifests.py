"""The farm's own Kubernetes manifests validate against the Kubernetes OpenAPI schemas (offline)."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
MANIFESTS = sorted(p for p in DEPLOY.rglob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifest_is_valid(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30", strict=True)


def test_kustomizations_list_existing_files() -> None:
    for k in DEPLOY.rglob("kustomization.yaml"):
        for res in yaml.safe_load(k.read_text())["resources"]:
            assert (k.parent / res).exists(), f"{k}: {res}"
