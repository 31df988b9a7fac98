"""Context sync as CI sees it: `farm build --json` reports the context, and a one-file change sends
one blob (e2e: the farm CLI against the real stack and a real worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import write_project

pytestmark = pytest.mark.e2e


def build_json(root: Path) -> tuple[dict, str]:
    out = subprocess.run([sys.executable, "-m", "farm.cli", "build", "--project", str(root), "--json"],
                         capture_output=True, text=True, env=os.environ.copy(), timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["builds"][0], out.stderr


def test_one_changed_file_sends_one_blob(worker: object, tmp_path: Path) -> None:
    files = {f"src/file{i}.txt": f"{uuid.uuid4().hex}\n" * 50 for i in range(20)}
    dockerfile = f"FROM scratch\nLABEL run={uuid.uuid4().hex}\nCOPY src /src\n"  # new content: not in the store yet
    root = write_project(tmp_path / "p", {"api": {"Dockerfile": dockerfile, **files}})
    first, _ = build_json(root)
    ctx = first["context"]
    assert first["status"] == "built"
    assert ctx["digest"].startswith("sha256:") and ctx["files"] == 21
    assert ctx["uploaded_files"] == 21 and ctx["uploaded_bytes"] == ctx["bytes"]

    changed = f"changed {uuid.uuid4().hex}\n"
    (root / "api" / "src" / "file7.txt").write_text(changed)
    second, err = build_json(root)
    assert second["version"] != first["version"] and second["status"] == "built"
    assert second["context"]["uploaded_files"] == 1
    assert second["context"]["uploaded_bytes"] == len(changed)
    assert second["context"]["digest"] != ctx["digest"]
    assert "sent 1 files" in err


def test_symlinks_outside_the_context_are_left_out_with_a_warning(worker: object, tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"api": {"Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n",
                                                  "a.txt": uuid.uuid4().hex}})
    (root / "api" / "escape").symlink_to("/etc/passwd")
    (root / "api" / "inside").symlink_to("a.txt")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    built, err = build_json(root)
    assert built["status"] == "built"
    assert "symlink" in err and "escape" in err
    assert built["context"]["files"] == 3  # Dockerfile, a.txt and the inside link; not the escaping one
