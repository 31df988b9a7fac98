"""What `${...}` templates can see: project, environment, variables, local machine and git."""

from __future__ import annotations

import getpass
import os
import sys
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GitInfo:
    branch: str = ""
    commit_hash: str = ""
    origin_url: str = ""


def _git(root: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def read_git_info(root: Path) -> GitInfo:
    """Branch, commit and origin of the checkout; empty strings outside a git repo or before a commit."""
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    if not branch:  # no commit yet: HEAD is unborn, but the branch name is known
        branch = _git(root, "symbolic-ref", "--short", "HEAD")
    return GitInfo(branch=branch, commit_hash=_git(root, "rev-parse", "HEAD"),
                   origin_url=_git(root, "config", "--get", "remote.origin.url"))


def _local(root: Path) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER", "")
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64"}.get(platform.machine().lower(),
                                                                     platform.machine().lower())
    return {
        "env": dict(os.environ),
        "platform": {"linux": "linux", "darwin": "darwin", "win32": "windows"}.get(
            sys.platform, sys.platform),
        "arch": arch,
        "username": user,
        "usernameLowerCase": user.lower(),
        "projectPath": str(root),
    }


def base_context(root: Path, project_name: str, git: GitInfo) -> dict[str, Any]:
    """The keys every template in the project may use (before environment and variables are known)."""
    return {
        "project": {"name": project_name},
        "local": _local(root),
        "git": {"branch": git.branch, "commitHash": git.commit_hash, "originUrl": git.origin_url},
        "secrets": {},
    }


def with_environment(ctx: dict[str, Any], env_name: str, namespace: str,
                     variables: dict[str, Any]) -> dict[str, Any]:
    out = dict(ctx)
    out["environment"] = {"name": env_name, "namespace": namespace, "fullName": f"{namespace}.{env_name}"}
    out["var"] = variables
    out["variables"] = variables
    return out
