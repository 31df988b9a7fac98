"""An image made from a root filesystem tar with ``docker import`` on the stack's engine and pushed
to the stack's registry, unless the registry already has it. The general form of ``_base_image``:
the node's pause image and the Kaniko executor image are made this way.
"""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from farm.errors import StackError
from farm.stack._base_image import _MANIFEST_TYPES, _check_stream, _engine
from farm.stack._state import REGISTRY_USER, StackSettings


def dir_tar(root: Path) -> bytes:
    """A reproducible tar of a directory tree: sorted, owned by root, mtime 0, modes kept."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            return info

        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(dirnames) + sorted(filenames):
                path = Path(dirpath) / name
                tar.add(path, arcname=str(path.relative_to(root)), recursive=False, filter=reset)
    return buf.getvalue()


def file_tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A tar of in-memory files: arcname -> (content, mode)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.mode, info.size, info.mtime = mode, len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def in_registry(settings: StackSettings, password: str, repo: str, tag: str) -> bool:
    url = f"http://{settings.registry}/v2/{repo}/manifests/{tag}"
    try:
        r = httpx.head(url, auth=(REGISTRY_USER, password), headers={"Accept": _MANIFEST_TYPES},
                       timeout=10.0, trust_env=False)
    except httpx.HTTPError as exc:
        raise StackError(f"registry {settings.registry} did not answer: {exc}") from None
    if r.status_code == 401:
        raise StackError(f"registry {settings.registry} rejected the stack's own credentials")
    return r.status_code == 200


def ensure_pushed(settings: StackSettings, password: str, docker_socket: Path, repo: str, tag: str,
                  rootfs: Callable[[], bytes], changes: Sequence[str]) -> str:
    """``<registry>/<repo>:<tag>``, imported from ``rootfs()`` with Dockerfile ``changes`` and pushed
    if the registry lacks it. Returns the ref."""
    ref = f"{settings.registry}/{repo}:{tag}"
    if in_registry(settings, password, repo, tag):
        return ref
    full = f"{settings.registry}/{repo}"
    auth = base64.urlsafe_b64encode(json.dumps(
        {"username": REGISTRY_USER, "password": password, "serveraddress": settings.registry}).encode())
    try:
        with _engine(docker_socket) as engine:
            params = {"fromSrc": "-", "repo": full, "tag": tag, "changes": list(changes)}
            with engine.stream("POST", "/images/create", params=params, content=rootfs(),
                               headers={"Content-Type": "application/x-tar"}) as r:
                _check_stream(r, f"docker import of {ref}")
            with engine.stream("POST", f"/images/{full}/push", params={"tag": tag},
                               headers={"X-Registry-Auth": auth.decode()}) as r:
                _check_stream(r, f"docker push of {ref}")
    except httpx.HTTPError as exc:
        raise StackError(f"the stack's docker engine did not answer while making {ref}: {exc}") from None
    if not in_registry(settings, password, repo, tag):
        raise StackError(f"pushed {ref} but the registry does not list it")
    return ref
