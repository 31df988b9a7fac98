"""The local-process runtime seam: run an argv, stream its output line by line, enforce a timeout.

The child gets its own process group, so a timeout kills everything it started. Extra environment
(secrets, BUILDKIT_HOST, DOCKER_CONFIG) is given to that child only, never to os.environ.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Completed:
    exit_code: int          # negative: killed by that signal (Popen convention)
    timed_out: bool


def run(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    timeout: float,
    on_line: Callable[[str], None],
    drop_env_prefixes: Sequence[str] = (),
) -> Completed:
    """Run `argv` in `cwd` with os.environ + `env`; stdout and stderr go to `on_line`, one line each."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop_env_prefixes))}
    child_env.update(env)
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env=child_env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    assert proc.stdout is not None
    stream = proc.stdout

    def pump() -> None:
        for raw in iter(stream.readline, b""):
            on_line(raw.decode("utf-8", "replace").rstrip("\r\n"))

    reader = threading.Thread(target=pump, name="process-output", daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
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
    return Completed(exit_code=proc.returncode, timed_out=timed_out)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
