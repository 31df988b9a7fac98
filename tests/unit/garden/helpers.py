"""Helpers to write small Garden projects in a tmp dir (shared by the test_garden_* modules)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from farm.garden import GitInfo

GIT = GitInfo(branch="feature/ABC-123_fooBar", commit_hash="0" * 40)

PROJECT = """\
apiVersion: garden.io/v1
kind: Project
name: demo
defaultEnvironment: dev
environments:
  - name: dev
    defaultNamespace: dev-ns
  - name: ci
providers:
  - name: kubernetes
    buildMode: cluster-buildkit
    deploymentRegistry:
      hostname: registry.example.com
      namespace: team
    context: test-context
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def git_init(root: Path, commit: bool = True) -> None:
    run = lambda *a: subprocess.run(["git", *a], cwd=root, check=True, capture_output=True)  # noqa: E731
    run("init", "-q", "-b", "main")
    if commit:
        run("add", "-A")
        run("-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "init")


def commit_all(root: Path) -> None:
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "x"], cwd=root,
                   check=True, capture_output=True)
