"""`farm config show|validate` (farm/cli/config.py), through the `farm` command's one exit path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from farm.cli import cli
from tests.unit.garden.helpers import PROJECT, git_init, write

EXAMPLES = Path(__file__).resolve().parents[3] / "config" / "examples"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["config", *args])


def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLES / "shop", root)
    git_init(root)
    return root


def test_show_text(tmp_path: Path) -> None:
    res = run("show", "--project", str(shop(tmp_path)), "--env", "dev")
    assert res.exit_code == 0, res.output
    assert "build mode  cluster-buildkit" in res.output
    assert "registry.shop.example.com/shop/api:v-" in res.output
    assert "_buildcache-main  mode=inline  import-only" in res.output
    assert "linux/amd64, linux/arm64" in res.output


def test_show_json(tmp_path: Path) -> None:
    res = run("show", "--project", str(shop(tmp_path)), "--env", "ci", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["buildMode"] == "kaniko" and data["environment"] == "ci"
    api = next(b for b in data["builds"] if b["name"] == "api")
    assert api["outputs"]["deploymentImageId"] == f"registry.shop.example.com/shop-ci/api:{api['version']}"
    assert api["buildArgs"]["GARDEN_ACTION_VERSION"] == api["version"]
    assert api["dependencies"]["build.base"].startswith("v-")
    assert api["cacheRefs"] == []


def test_validate_ok(tmp_path: Path) -> None:
    res = run("validate", "--project", str(shop(tmp_path)), "--env", "dev")
    assert res.exit_code == 0, res.output
    assert res.output.splitlines() == ["ok: shop (dev): 3 container Builds, build mode cluster-buildkit"]


def test_validate_reports_what_build_refuses(tmp_path: Path) -> None:
    # The shop's ci environment builds with kaniko: `farm build` refuses a mode the farm cannot run
    # yet, so `validate` must say so too (and says ok once the mode is supported).
    from farm.plan import SUPPORTED_MODES

    res = run("validate", "--project", str(shop(tmp_path)))
    if "kaniko" in SUPPORTED_MODES:
        assert res.exit_code == 0, res.output
        assert "ok: shop (ci): 3 container Builds, build mode kaniko" in res.output
    else:
        assert res.exit_code == 2
        assert "project.garden.yml:50 providers[2].buildMode: buildMode kaniko is not supported" in res.output


def test_validate_lists_every_problem(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": PROJECT.replace("cluster-buildkit", "buildkit"),
                     "a/garden.yml": "kind: Build\ntype: container\nname: a\ntimeout: x\nspec: {dockerFile: D}\n",
                     "b/garden.yml": "kind: Build\ntype: container\nname: b\nspec:\n  buildArgs:\n    X: ${var.nope}\n"})
    res = run("validate", "--project", str(tmp_path))
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 4, res.output
    assert any("project.garden.yml:11 providers[0].buildMode" in e and "cluster-buildkit" in e for e in errors)
    assert any("a/garden.yml:4 timeout" in e for e in errors)
    assert any("a/garden.yml:5 spec.dockerFile" in e and "did you mean 'dockerfile'" in e for e in errors)
    assert any("b/garden.yml:6 spec.buildArgs.X" in e and "${var.nope}" in e for e in errors)
    assert "Traceback" not in res.output


def test_missing_project_dir(tmp_path: Path) -> None:
    res = run("validate", "--project", str(tmp_path / "nope"))
    assert res.exit_code == 2 and "does not exist" in res.output
    res = run("show", "--project", str(tmp_path))
    assert res.exit_code == 2 and "no Garden project config" in res.output


def test_broken_yaml_in_a_real_process(tmp_path: Path) -> None:
    write(tmp_path, {"project.garden.yml": "kind: Project\nname: [x\n"})
    proc = subprocess.run([sys.executable, "-c", "from farm.cli import main; main()", "config",
                           "validate", "--project", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid YAML" in proc.stderr and "project.garden.yml:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_validate_checks_every_environment(tmp_path: Path) -> None:
    text = PROJECT.replace("  - name: kubernetes\n", "  - name: kubernetes\n    environments: [dev]\n") + \
        "  - name: kubernetes\n    environments: [ci]\n    context: c\n    buildMode: kaniko\n"
    write(tmp_path, {"project.garden.yml": text})
    res = run("validate", "--project", str(tmp_path))
    assert res.exit_code == 2 and "needs a deploymentRegistry" in res.output
    assert run("validate", "--project", str(tmp_path), "--env", "dev").exit_code == 0
