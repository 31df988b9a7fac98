"""The Debian packages the stack runs, installed with apt-get when their binaries are missing.

`farm stack up` calls this, so an installed `farm` needs no checkout and no other script.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

from farm.errors import StackError

# binary -> Debian package that provides it
PACKAGES: dict[str, str] = {
    "redis-server": "redis-server",
    "docker-registry": "docker-registry",
    "dockerd": "docker.io",
    "containerd": "containerd",
    "runc": "runc",
    "busybox": "busybox-static",
    "rsync": "rsync",
    "docker-compose": "docker-compose",     # validating docker-compose.yml (tests)
    "chromium": "chromium",                 # Flower in a headless browser (tests)
    "skopeo": "skopeo",                     # the peer of bench/publish.py
}
_SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def search_path() -> str:
    """PATH with the sbin directories in it (dockerd, runc live in /usr/sbin)."""
    parts = os.environ.get("PATH", "").split(":")
    return ":".join(dict.fromkeys([p for p in parts if p] + _SBIN_PATH.split(":")))


def which(binary: str) -> str | None:
    return shutil.which(binary, path=search_path())


def static_busybox() -> Path | None:
    """A statically linked busybox (the one an empty rootfs can run), or None."""
    for candidate in ("/bin/busybox", "/usr/bin/busybox", which("busybox")):
        if candidate and Path(candidate).is_file() and is_static_elf(Path(candidate)):
            return Path(candidate)
    return None


def is_static_elf(path: Path) -> bool:
    """True if the ELF file has no PT_INTERP program header (no dynamic loader needed)."""
    with open(path, "rb") as f:
        ident = f.read(64)
        if ident[:4] != b"\x7fELF" or ident[4] != 2:  # 64-bit only; that is all we run on
            return False
        end = "<" if ident[5] == 1 else ">"
        phoff, = struct.unpack_from(end + "Q", ident, 0x20)
        phentsize, phnum = struct.unpack_from(end + "HH", ident, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, = struct.unpack_from(end + "I", table, i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


@contextlib.contextmanager
def _no_service_starts() -> Iterator[None]:
    """Keep the packages' maintainer scripts from starting system redis/registry/dockerd (a system
    dockerd would add a bridge and iptables rules): a policy-rc.d that says no, unless one exists."""
    policy = Path("/usr/sbin/policy-rc.d")
    if policy.exists():
        yield
        return
    policy.write_text("#!/bin/sh\n# temporary, written by farm.stack while it installs packages\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield
    finally:
        policy.unlink(missing_ok=True)


def missing_packages(binaries: list[str]) -> list[str]:
    missing: list[str] = []
    for binary in binaries:
        present = static_busybox() is not None if binary == "busybox" else which(binary) is not None
        if not present and PACKAGES[binary] not in missing:
            missing.append(PACKAGES[binary])
    return missing


def ensure_binaries(binaries: list[str]) -> list[str]:
    """Install the packages for any missing binaries; returns the packages installed."""
    packages = missing_packages(binaries)
    if not packages:
        return []
    command = "apt-get update && apt-get install -y --no-install-recommends " + " ".join(packages)
    if os.geteuid() != 0 or which("apt-get") is None:
        raise StackError(f"missing system packages {', '.join(packages)}; install them as root: {command}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", PATH=search_path())
    with _no_service_starts():
        for argv in (["apt-get", "update"],
                     ["apt-get", "install", "-y", "--no-install-recommends", *packages]):
            proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                last = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
                raise StackError(f"`{' '.join(argv)}` failed (exit {proc.returncode}):\n{last}")
    still = missing_packages(binaries)
    if still:
        raise StackError(f"installed {', '.join(packages)} but {', '.join(still)} is still missing")
    return packages
