"""The cluster-buildkit builder image, in the stack's registry as `gardendev/buildkit:v0.23.2` (Garden's
name under `utilImageRegistryDomain`): the buildkitd and buildctl that scripts/install-buildkit.sh
built from source, Debian's runc with the shared libraries it links, CA certificates and a
buildkitd.toml that knows the stack's registry speaks plain HTTP. `FROM scratch` via `docker import`,
so a Pod on the stack's node runs the same BuildKit as the stack's own buildkitd.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

from farm.errors import StackError
from farm.stack._packages import which
from farm.stack._pushed_image import ensure_pushed
from farm.stack._services import BUILDKIT_VERSION, buildkit_bin, registry_password
from farm.stack._state import StackPaths, StackSettings

REPO = "gardendev/buildkit"
CHANGES = ('ENTRYPOINT ["/usr/bin/buildkitd"]', "ENV PATH=/usr/bin:/bin", "ENV HOME=/root")


def buildkitd_toml(registry: str) -> str:
    return (f'[worker.oci]\n  enabled = true\n  binary = "runc"\n  gc = true\n[worker.containerd]\n'
            f'  enabled = false\n[registry."{registry}"]\n  http = true\n  insecure = true\n')


def shared_libraries(binary: Path) -> list[Path]:
    """The shared objects `binary` loads (ldd), the loader included."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0] if parts else ""
        if path.startswith("/"):
            libs.append(Path(path))
    return libs


def rootfs_tar(registry: str) -> bytes:
    runc = which("runc")
    if runc is None:
        raise StackError("runc is missing (Debian package runc)")
    files: dict[str, tuple[Path | bytes, int]] = {
        "usr/bin/buildkitd": (buildkit_bin("buildkitd"), 0o755),
        "usr/bin/buildctl": (buildkit_bin("buildctl"), 0o755),
        "usr/bin/runc": (Path(runc), 0o755),
        "etc/buildkit/buildkitd.toml": (buildkitd_toml(registry).encode(), 0o644),
        "etc/passwd": (b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n", 0o644),
        "etc/group": (b"root:x:0:\nuser:x:1000:\n", 0o644),
    }
    for lib in shared_libraries(Path(runc)):
        files[str(lib.resolve()).lstrip("/")] = (lib.resolve(), 0o755)
        if lib.resolve() != lib:
            files[str(lib).lstrip("/")] = (lib.resolve(), 0o755)
    certs = Path("/etc/ssl/certs/ca-certificates.crt")
    if certs.is_file():
        files["etc/ssl/certs/ca-certificates.crt"] = (certs, 0o644)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = {"tmp": 0o1777, "run": 0o755, "root": 0o700, "var/lib/buildkit": 0o700, "home/user": 0o755,
                "run/user/1000": 0o700}
        for name, (source, mode) in files.items():
            for parent in Path(name).parents:
                if str(parent) != ".":
                    dirs.setdefault(str(parent), 0o755)
        for name in sorted(dirs):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, dirs[name], 0
            if name.startswith(("home/user", "run/user/1000")):
                info.uid = info.gid = 1000
            tar.addfile(info)
        for name, (source, mode) in sorted(files.items()):
            data = source if isinstance(source, bytes) else source.read_bytes()
            info = tarfile.TarInfo(name)
            info.mode, info.size, info.mtime = mode, len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def ensure(paths: StackPaths, settings: StackSettings) -> str:
    """`<registry>/gardendev/buildkit:<version>`, made and pushed unless the registry has it."""
    for name in ("buildkitd", "buildctl"):
        if not os.access(buildkit_bin(name), os.X_OK):
            raise StackError(f"{buildkit_bin(name)} is missing; run scripts/install-buildkit.sh (make buildkit)")
    return ensure_pushed(settings, registry_password(paths), paths.docker_socket, REPO, BUILDKIT_VERSION,
                         lambda: rootfs_tar(settings.registry), CHANGES)
