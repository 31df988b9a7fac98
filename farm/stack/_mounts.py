"""Mounts dockerd leaves behind when it dies uncleanly (its data-root bind mount, container
overlays, network namespaces), found and detached so ``down`` leaves no mount under the stack."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

_MNT_DETACH = 2


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo octal."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(*roots: Path) -> list[str]:
    """Mount points at or below any of ``roots``, deepest first."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    found = set()
    for line in lines:
        point = _unescape(line.split()[4])
        for root in roots:
            r = str(root)
            if point == r or point.startswith(r.rstrip("/") + "/"):
                found.add(point)
    return sorted(found, key=lambda p: (-p.count("/"), p))


def detach(points: list[str]) -> list[str]:
    """Lazily unmount each point; returns the ones that could not be unmounted."""
    libc = ctypes.CDLL(None, use_errno=True)
    failed = []
    for point in points:
        if libc.umount2(os.fsencode(point), _MNT_DETACH) != 0 and ctypes.get_errno() not in (22, 2):
            failed.append(point)  # EINVAL: no longer a mount point; ENOENT: gone
    return failed
