"""The `process` runtime: run a BuilderJob as a local process, stream its lines, enforce its timeout,
and map how it ended onto the error tree.

The child gets its own process group, so a timeout kills everything it started. Secret values reach
the child's environment only (never os.environ) and are masked in every line before anyone sees it.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from farm.errors import BuildError, BuildStopped, PermanentBuildError, TransientBuildError
from workers.builder_job import BuilderJob

TAIL_LINES = 30
MASK = "***"


def run(job: BuilderJob, secrets: Mapping[str, str], on_line: Callable[[str], None] | None,
        stop: threading.Event | None = None) -> list[str]:
    """Run `job` in its context dir; return its output lines (secrets masked) or raise a BuildError.

    `secrets` maps the names in `job.secret_env` to values; setting `stop` kills the builder.
    """
    missing = [name for name in job.secret_env if name not in secrets]
    if missing:
        raise PermanentBuildError(f"build secret {', '.join(missing)} has no value on this worker")
    env = {**dict(job.env), **{name: secrets[name] for name in job.secret_env}}
    hidden = sorted({secrets[name] for name in job.secret_env if secrets[name]}, key=len, reverse=True)
    out = Output(on_line, hidden)
    try:
        result = spawn(job.argv, cwd=job.context_dir, env=env, timeout=job.timeout, on_line=out, stop=stop)
    except FileNotFoundError as exc:
        if exc.filename == job.context_dir and exc.filename != job.argv[0]:
            raise PermanentBuildError(f"{job.mode}: the context dir {job.context_dir} is missing") from exc
        raise TransientBuildError(
            f"{job.mode}: the builder command {job.argv[0]!r} was not found on this worker") from exc
    if result.stopped:
        raise BuildStopped(f"{job.mode}: {job.argv[0]} was stopped")
    if result.timed_out:
        raise TransientBuildError(f"{job.mode}: {job.argv[0]} timed out after {job.timeout} s")
    if result.exit_code == 0:
        return out.lines
    raise failure(job, result.exit_code, list(out.tail))


class Output:
    """A builder's output as it comes: every line (secret values masked), the last TAIL_LINES for
    the error message, each line passed on to `on_line`."""

    def __init__(self, on_line: Callable[[str], None] | None, hidden: Sequence[str] = ()) -> None:
        self.lines: list[str] = []
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._on_line = on_line
        self._hidden = hidden

    def __call__(self, line: str) -> None:
        for value in self._hidden:
            line = line.replace(value, MASK)
        self.lines.append(line)
        self.tail.append(line)
        if self._on_line is not None:
            self._on_line(line)


def failure(job: BuilderJob, code: int, tail: Sequence[str]) -> BuildError:
    """The error for a builder that exited with `code`; its message ends with the last lines."""
    last = "\n".join(tail)
    if code in (137, -9):
        return TransientBuildError(
            f"{job.mode}: {job.argv[0]} was killed (exit {code}), most likely out of memory\n{last}")
    if job.unreachable and any(re.search(job.unreachable, line) for line in tail):
        # The cause on the first line: the job record and the CLI keep only that one.
        cause = next((line.strip() for line in reversed(tail) if re.search(job.unreachable, line)), "")
        return TransientBuildError(f"{job.daemon or job.mode} is unreachable: {cause}\n{last}")
    cause = next((line.strip() for line in reversed(tail) if job.cause and re.search(job.cause, line)), None) \
        or next((line.strip() for line in reversed(tail) if line.strip()), "no output")
    return PermanentBuildError(f"{job.mode}: {job.argv[0]} exited with code {code}: {cause}\n{last}")


@dataclass(frozen=True)
class Completed:
    exit_code: int          # negative: killed by that signal (Popen convention)
    timed_out: bool
    stopped: bool = False


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the worker that started it dies (a node lost), so no
    orphaned builder pushes after its job was handed to another worker."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn(argv: Sequence[str], *, cwd: str, env: Mapping[str, str], timeout: float,
          on_line: Callable[[str], None], stop: threading.Event | None = None) -> Completed:
    """Run `argv` in `cwd` with os.environ + `env`; stdout and stderr go to `on_line`, one line each.
    An exception raised by `on_line` kills the child and is re-raised here; so does setting `stop`."""
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    assert proc.stdout is not None
    stream = proc.stdout
    failed: list[BaseException] = []

    def pump() -> None:
        try:
            for raw in iter(stream.readline, b""):
                on_line(raw.decode("utf-8", "replace").rstrip("\r\n"))
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            failed.append(exc)
            if proc.poll() is None:
                _kill_group(proc)

    reader = threading.Thread(target=pump, name="process-output", daemon=True)
    reader.start()
    timed_out = stopped = False
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if stop is not None and stop.is_set():
                stopped = True
            elif time.monotonic() >= deadline:
                timed_out = True
            else:
                try:
                    proc.wait(timeout=min(0.5, max(deadline - time.monotonic(), 0.01)))
                except subprocess.TimeoutExpired:
                    pass
                continue
            _kill_group(proc)
            proc.wait()
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        # A grandchild that kept the pipe open must not hang us after the group is gone.
        reader.join(timeout=10)
        stream.close()
    if failed:
        raise failed[0]
    return Completed(exit_code=proc.returncode, timed_out=timed_out, stopped=stopped)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
