"""Run a BuilderJob as a local process: stream its lines, enforce its timeout, map failures to errors."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping

from farm.errors import PermanentBuildError, TransientBuildError
from workers.builders.base import BuilderJob

TAIL_LINES = 30


def run_job(job: BuilderJob, on_line: Callable[[str], None], *, env: Mapping[str, str] | None = None,
            secrets: Mapping[str, str] | None = None) -> list[str]:
    """Run `job.argv` in its context dir; return all output lines.

    `env` is the base environment for this invocation only (e.g. DOCKER_CONFIG); `secrets` maps
    `job.secret_env` names to values, which reach the child's environment and nothing else.
    """
    child_env = dict(env if env is not None else os.environ)
    child_env.update(job.env)
    for name in job.secret_env:
        if secrets is None or name not in secrets:
            raise PermanentBuildError(f"build secret {name} has no value on this worker")
        child_env[name] = secrets[name]
    lines: list[str] = []
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        proc = subprocess.Popen(job.argv, cwd=job.context_dir, env=child_env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    except FileNotFoundError:
        raise TransientBuildError(f"{job.mode}: the builder command {job.argv[0]!r} is not installed "
                                  "on this worker") from None
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(job.timeout, kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            tail.append(line)
            on_line(line)
        code = proc.wait()
    finally:
        timer.cancel()
    if timed_out.is_set():
        raise TransientBuildError(f"{job.mode}: build timed out after {job.timeout} s")
    if code == 0:
        return lines
    last = "\n".join(tail)
    if code in (137, -9):
        raise PermanentBuildError(f"{job.mode}: the builder was killed (exit 137, out of memory?)\n{last}")
    cause = next((line.strip() for line in reversed(tail) if line.strip()), "no output")
    raise PermanentBuildError(f"{job.mode}: {job.argv[0]} exited with code {code}: {cause}\n{last}")
