"""The local stack's one build worker: a `farm worker` consuming every platform queue, so a demo
works on one machine. Started and stopped by pid like the services."""

from __future__ import annotations

import os

from farm.broker import worker_argv
from farm.stack._process import ProcessRecord, spawn, stop
from farm.stack._state import StackPaths

LOCAL_PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
CONCURRENCY = 2
STOP_TIMEOUT = 60.0   # a warm shutdown: a running build finishes or is handed back


def _pidfile(paths: StackPaths) -> ProcessRecord | None:
    return ProcessRecord.read(paths.pidfile("worker"))


def start(paths: StackPaths, env: dict[str, str]) -> None:
    record = _pidfile(paths)
    if record and record.alive():
        return
    argv = worker_argv(LOCAL_PLATFORMS, (), CONCURRENCY)
    record = spawn(argv, paths.log("worker"), env={**os.environ, **env})
    record.write(paths.pidfile("worker"))


def stop_worker(paths: StackPaths) -> None:
    record = _pidfile(paths)
    if record:
        stop(record, timeout=STOP_TIMEOUT)
        paths.pidfile("worker").unlink(missing_ok=True)


def status(paths: StackPaths) -> str:
    record = _pidfile(paths)
    return f"running (pid {record.pid})" if record and record.alive() else "stopped"
