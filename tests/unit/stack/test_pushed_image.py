"""Root filesystem tars for imported images (farm/stack/_pushed_image.py) and the Kaniko image's settings."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from farm.stack._kaniko_image import CHANGES
from farm.stack._pushed_image import dir_tar, file_tar


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_dir_tar_is_reproducible_and_root_owned(tmp_path: Path) -> None:
    (tmp_path / "kaniko" / "ssl").mkdir(parents=True)
    (tmp_path / "kaniko").chmod(0o777)
    (tmp_path / "kaniko" / "executor").write_bytes(b"\x7fELF")
    (tmp_path / "kaniko" / "executor").chmod(0o755)
    (tmp_path / "workspace").mkdir()
    first = dir_tar(tmp_path)
    assert first == dir_tar(tmp_path)
    m = members(first)
    assert sorted(m) == ["kaniko", "kaniko/executor", "kaniko/ssl", "workspace"]
    assert m["kaniko"].mode & 0o777 == 0o777 and m["kaniko/executor"].mode & 0o777 == 0o755
    assert all(i.uid == 0 and i.gid == 0 and i.mtime == 0 for i in m.values())


def test_file_tar() -> None:
    m = members(file_tar({"pause": (b"bin", 0o755)}))
    assert m["pause"].size == 3 and m["pause"].mode == 0o755


def test_kaniko_image_settings_match_kaniko_own() -> None:
    assert CHANGES[0] == 'ENTRYPOINT ["/kaniko/executor"]'
    assert "ENV DOCKER_CONFIG=/kaniko/.docker/" in CHANGES
    assert "ENV SSL_CERT_DIR=/kaniko/ssl/certs" in CHANGES
