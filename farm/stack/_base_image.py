"""The stack's one base image: a busybox rootfs imported into the engine and pushed to the registry.

Nothing can be pulled from Docker Hub here, so tests and demos build ``FROM`` this image. It is
pushed (not only imported) so daemonless builders (BuildKit, Kaniko) can pull it too.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import tarfile
from pathlib import Path

import httpx

from farm.errors import StackError
from farm.stack._state import BASE_IMAGE_REPO, BASE_IMAGE_TAG, REGISTRY_USER, StackSettings

_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json"
)
_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "dev", "proc", "sys", "var", "run")


def rootfs_tar(busybox: Path) -> bytes:
    """A reproducible rootfs: /bin/busybox, a symlink per applet, /tmp, a minimal /etc/passwd."""
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime, info.linkname, info.size = kind, mode, 0, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        for d in _DIRS:
            add(d, tarfile.DIRTYPE, 0o755)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("bin/busybox", tarfile.REGTYPE, 0o755, busybox.read_bytes())
        for applet in sorted(set(applets.stdout.split()) - {"busybox"}):
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        add("usr/bin/env", tarfile.SYMTYPE, 0o777, link="/bin/busybox")
        add("etc/passwd", tarfile.REGTYPE, 0o644, b"root:x:0:0:root:/root:/bin/sh\n"
                                                  b"nobody:x:65534:65534:nobody:/:/bin/false\n")
        add("etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\nnogroup:x:65534:\n")
    return buf.getvalue()


def in_registry(settings: StackSettings, password: str) -> bool:
    url = f"http://{settings.registry}/v2/{BASE_IMAGE_REPO}/manifests/{BASE_IMAGE_TAG}"
    try:
        r = httpx.head(url, auth=(REGISTRY_USER, password), headers={"Accept": _MANIFEST_TYPES},
                       timeout=10.0, trust_env=False)
    except httpx.HTTPError as exc:
        raise StackError(f"registry {settings.registry} did not answer: {exc}") from None
    if r.status_code == 401:
        raise StackError(f"registry {settings.registry} rejected the stack's own credentials")
    return r.status_code == 200


def _engine(socket: Path) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), base_url="http://docker/v1.41",
                        timeout=httpx.Timeout(30.0, read=300.0), trust_env=False)


def _check_stream(response: httpx.Response, what: str) -> None:
    """Engine progress streams report failure in-band: a JSON line with an "error" key."""
    if response.status_code >= 400:
        body = response.read().decode(errors="replace").strip()
        raise StackError(f"{what} failed: HTTP {response.status_code} {body}")
    for line in response.iter_lines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and msg.get("error"):
            raise StackError(f"{what} failed: {msg['error']}")


def ensure(settings: StackSettings, password: str, docker_socket: Path, busybox: Path) -> str:
    """Make sure the base image is in the registry; import+push it if not. Returns its ref."""
    ref = settings.base_image
    if in_registry(settings, password):
        return ref
    repo = f"{settings.registry}/{BASE_IMAGE_REPO}"
    auth = base64.urlsafe_b64encode(json.dumps(
        {"username": REGISTRY_USER, "password": password, "serveraddress": settings.registry}).encode())
    try:
        with _engine(docker_socket) as engine:
            params = {"fromSrc": "-", "repo": repo, "tag": BASE_IMAGE_TAG, "changes": 'CMD ["/bin/sh"]'}
            with engine.stream("POST", "/images/create", params=params, content=rootfs_tar(busybox),
                               headers={"Content-Type": "application/x-tar"}) as r:
                _check_stream(r, f"docker import of {ref}")
            with engine.stream("POST", f"/images/{repo}/push", params={"tag": BASE_IMAGE_TAG},
                               headers={"X-Registry-Auth": auth.decode()}) as r:
                _check_stream(r, f"docker push of {ref}")
    except httpx.HTTPError as exc:
        raise StackError(f"the stack's docker engine did not answer while making {ref}: {exc}") from None
    if not in_registry(settings, password):
        raise StackError(f"pushed {ref} but the registry does not list it")
    return ref
