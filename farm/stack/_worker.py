"""The local stack's one build worker: a `farm worker` for every local platform in every mode the
stack can build, so a demo works on one machine. Started and stopped by pid like the services.

Its modes follow from the stack's environment (a buildkitd gives it cluster-buildkit): when `farm
stack up` adds a service that changes that environment, the worker is restarted with it.
"""

from __future__ import annotations

import hashlib
import json
import os

from farm.broker import worker_argv
from farm.stack._process import ProcessRecord, spawn, stop
from farm.stack._state import StackPaths

LOCAL_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
CONCURRENCY = 2
STOP_TIMEOUT = 60.0   # a warm shutdown: a running build finishes or is handed back
# What the stack exports only when it runs the service behind it: the worker never inherits a stale
# one from the shell that started it (a buildkitd of an earlier stack would give it a mode it lacks).
OPTIONAL_VARS = ("BUILDKIT_HOST", "FARM_BUILDCTL", "KUBECONFIG", "FARM_KANIKO_IMAGE")


def _record(paths: StackPaths) -> ProcessRecord | None:
    return ProcessRecord.read(paths.pidfile("worker"))


def _env_file(paths: StackPaths) -> os.PathLike[str]:
    return paths.pids / "worker.env.json"


def start(paths: StackPaths, env: dict[str, str]) -> None:
    """Start the worker with the stack's `env`; one already running with another env is restarted."""
    record = _record(paths)
    if record and record.alive():
        try:
            with open(_env_file(paths)) as f:
                if json.load(f) == {"sha256": _digest(env)}:
                    return
        except (OSError, ValueError):
            pass
        stop_worker(paths)
    argv = worker_argv(LOCAL_PLATFORMS, (), CONCURRENCY)
    inherited = {k: v for k, v in os.environ.items() if k not in OPTIONAL_VARS}
    record = spawn(argv, paths.log("worker"), env={**inherited, **env})
    record.write(paths.pidfile("worker"))
    with open(_env_file(paths), "w") as f:   # a digest of the env: it holds Redis credentials
        json.dump({"sha256": _digest(env)}, f)


def _digest(env: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()


def running(paths: StackPaths) -> bool:
    record = _record(paths)
    return bool(record and record.alive())


def stop_worker(paths: StackPaths) -> None:
    record = _record(paths)
    if record:
        stop(record, timeout=STOP_TIMEOUT)
        paths.pidfile("worker").unlink(missing_ok=True)


def status(paths: StackPaths) -> str:
    record = _record(paths)
    return f"running (pid {record.pid})" if record and record.alive() else "stopped"
