"""A worker's sealing key (workers/keyring.py): the configured file, or its own when that is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm import sealing
from workers import keyring


def test_the_configured_key_file_else_the_workers_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "secrets" / "sealing.key"
    expected = sealing.public_text(sealing.load_or_create(shared))
    monkeypatch.setenv("FARM_SEALING_KEY_FILE", str(shared))
    monkeypatch.setenv("FARM_WORKER_DIR", str(tmp_path / "worker"))
    monkeypatch.setattr(keyring, "_key", None)
    assert sealing.public_text(keyring.sealing_key()) == expected
    # a Secret that was never created: the mount point is missing (or read-only)
    monkeypatch.setenv("FARM_SEALING_KEY_FILE", str(tmp_path / "missing-mount" / "sub" / "sealing.key"))
    monkeypatch.setattr(keyring, "_key", None)
    own = keyring.sealing_key()
    assert (tmp_path / "worker" / "sealing.key").is_file()
    assert sealing.public_text(own) != expected
