"""Build secrets sealed for the workers (farm/sealing.py): X25519 + HKDF + AES-GCM, per job."""

from __future__ import annotations

from pathlib import Path

import pytest

from farm import sealing


def test_a_sealed_value_opens_only_for_its_job_and_key(tmp_path: Path) -> None:
    key = sealing.load_or_create(tmp_path / "keys" / "sealing.key")
    blob = sealing.seal(sealing.public_text(key), {"npm": "s3cret-value"}, "job-1")
    assert "s3cret" not in blob and blob.startswith("v1.")
    assert sealing.unseal(key, blob, "job-1") == {"npm": "s3cret-value"}
    with pytest.raises(sealing.SealingError):
        sealing.unseal(key, blob, "job-2")                       # another job's
    other = sealing.load_or_create(tmp_path / "other.key")
    with pytest.raises(sealing.SealingError, match="FARM_SEALING_KEY_FILE"):
        sealing.unseal(other, blob, "job-1")                     # another farm's key
    tampered = blob[:-4] + ("AAAA" if not blob.endswith("AAAA") else "BBBB")
    with pytest.raises(sealing.SealingError):
        sealing.unseal(key, tampered, "job-1")
    with pytest.raises(sealing.SealingError, match="unsealed"):
        sealing.unseal(key, '{"npm": "s3cret-value"}', "job-1")


def test_two_seals_differ_and_the_key_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "sealing.key"
    key = sealing.load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert sealing.public_text(sealing.load_or_create(path)) == sealing.public_text(key)   # made once
    public = sealing.public_text(key)
    assert sealing.seal(public, {"a": "b"}, "j") != sealing.seal(public, {"a": "b"}, "j")  # fresh each time
    with pytest.raises(sealing.FarmError, match="not a base64 X25519 key"):
        sealing.seal("nope", {"a": "b"}, "j")
