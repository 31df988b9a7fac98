"""Processes the stack starts: spawning them detached, recognising them again, stopping them.

A pidfile holds JSON: the pid plus the process's start time (``/proc/<pid>/stat`` field 22),
its executable and the kernel boot id. A process is ours only if all of them still match, so a
pidfile that outlived its process (pid reused, reboot, hand-edited file) can never make ``down``
signal a stranger.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks) of a live pid, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2:].split()
    return fields[0], int(fields[19])


def _exe(pid: int) -> str:
    """The binary a pid runs (argv can be rewritten by the process, /proc/<pid>/exe cannot)."""
    try:
        return os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
    except OSError:
        return ""


@dataclass(frozen=True)
class ProcessRecord:
    """Identity of a process we started: enough to tell it apart from a reused pid."""

    pid: int
    start_ticks: int
    boot_id: str
    exe: str
    argv: tuple[str, ...]

    @classmethod
    def of(cls, pid: int, argv: Sequence[str]) -> ProcessRecord | None:
        st = _stat(pid)
        if st is None:
            return None
        return cls(pid, st[1], _boot_id(), _exe(pid), tuple(argv))

    def alive(self) -> bool:
        """True while this very process (not a successor with the same pid) runs and is no zombie."""
        st = _stat(self.pid)
        if st is None or st[0] in ("Z", "X"):
            return False
        return st[1] == self.start_ticks and self.boot_id == _boot_id() and _exe(self.pid) == self.exe

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)) + "\n")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> ProcessRecord | None:
        """The record in ``path``; None if missing or not one of ours (e.g. a bare pid)."""
        try:
            data = json.loads(path.read_text())
            return cls(int(data["pid"]), int(data["start_ticks"]), str(data["boot_id"]), str(data["exe"]),
                       tuple(str(a) for a in data["argv"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def spawn(argv: Sequence[str], log: Path, *, env: dict[str, str] | None = None,
          cwd: Path | None = None, umask: int = -1) -> ProcessRecord:
    """Start ``argv`` in its own session, stdin closed, stdout+stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, start_new_session=True, close_fds=True, umask=umask)
    record = ProcessRecord.of(proc.pid, argv)
    if record is None:  # died before we could look at it; report it as a dead record
        record = ProcessRecord(proc.pid, -1, _boot_id(), "", tuple(argv))
    return record


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(record: ProcessRecord, *, timeout: float) -> None:
    """SIGTERM the recorded process, wait up to ``timeout``, then SIGKILL. Never signals a stranger."""
    if not record.alive():
        _reap(record.pid)
        return
    _signal(record, signal.SIGTERM)
    if _wait_gone(record, timeout):
        return
    _signal(record, signal.SIGKILL)
    _wait_gone(record, 5.0)


def _signal(record: ProcessRecord, sig: signal.Signals) -> None:
    if not record.alive():  # re-check right before signalling: the pid may have been reused
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, sig)


def _wait_gone(record: ProcessRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(record.pid)
        if not record.alive():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def wait_until(check: Callable[[], bool], record: ProcessRecord, timeout: float) -> str | None:
    """Poll ``check`` until true; returns None on success, else why it gave up."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return None
        if not record.alive():
            _reap(record.pid)
            return "the process exited"
        if time.monotonic() >= deadline:
            return f"it did not answer within {timeout:.0f}s"
        time.sleep(0.1)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on host:port (a bind would succeed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def tail(path: Path, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip("\n").splitlines()[-lines:]) or "(empty log)"
