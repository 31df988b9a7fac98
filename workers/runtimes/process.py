"""The local-process runtime seam: run an argv, stream its output line by line, enforce a timeout.

The child gets its own process group, so a timeout kills everything it started. Extra environment
(secrets, BUILDKIT_HOST, DOCKER_CONFIG) is given to that child only, never to os.environ.
`workers.runtimes.local` runs a BuilderJob on top of this and maps its failures to build errors.
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
    base_env: Mapping[str, str] | None = None,
    drop_env_prefixes: Sequence[str] = (),
) -> Completed:
    """Run `argv` in `cwd` with `base_env` (default os.environ) + `env`; stdout and stderr go to
    `on_line`, one line each. An exception raised by `on_line` kills the child and is re-raised here.
    """
    base = os.environ if base_env is None else base_env
    child_env = {k: v for k, v in base.items() if not k.startswith(tuple(drop_env_prefixes))}
    child_env.update(env)
    proc = subprocess.Popen(
        list(argv), cwd=cwd, env=child_env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
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
    if failed:
        raise failed[0]
    return Completed(exit_code=proc.returncode, timed_out=timed_out)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
