"""Fixtures for the real parts: the local stack (Redis, registry, dockerd, Flower) and build workers.

Tests that need a service start it through the project's own `farm.stack`, or fail loudly:
nothing here skips.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """The local stack, up (idempotent), and its environment exported into this process."""
    from farm.stack import DEFAULT_SERVICES, Stack

    st = Stack(Path(os.environ.get("FARM_STATE_DIR", ROOT / ".farm")))
    st.up([*DEFAULT_SERVICES, "buildkitd"])
    env = st.env()
    os.environ.update(env)
    return env


def start_worker(env: dict[str, str], platforms: Sequence[str], log: Path,
                 modes: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """A real `farm worker` process for `platforms` (in `modes`, default every mode it can run);
    waits until it answers a ping."""
    from farm.broker import producer_app
    from farm.settings import Settings

    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")
    argv = [sys.executable, "-m", "farm.cli", "worker", "-c", "1"]
    for platform in platforms:
        argv += ["--platform", platform]
    for mode in modes:
        argv += ["--mode", mode]
    proc = subprocess.Popen(argv,
                            env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                            start_new_session=True)
    app = producer_app(Settings(broker_url=env["FARM_BROKER_URL"], result_backend=env["FARM_RESULT_BACKEND"]))
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}; see {log}")
            try:
                replies = app.control.ping(timeout=1.0) or []
            except redis.ConnectionError:      # a pooled connection from before a Redis restart
                continue
            if any(f"farm-{proc.pid}@" in name for reply in replies for name in reply):
                return proc
        raise RuntimeError(f"worker did not answer a ping in 90 s; see {log}")
    except BaseException:
        stop_worker(proc)
        raise


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    """A warm shutdown; after 30 s, the worker's whole process group is killed."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="session")
def worker(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[bytes]]:
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = start_worker(stack_env, ["linux/amd64", "linux/arm64"], log)
    yield proc
    stop_worker(proc)


def write_project(root: Path, builds: dict[str, dict[str, str | bytes]], *, namespace: str = "farmtest",
                  mode: str = "local-docker", extra_build_yaml: str = "") -> Path:
    """A Garden project in a git repo, pushing to the stack's registry: builds maps name -> {file: content}."""
    host, _, port = os.environ.get("FARM_REGISTRY", "127.0.0.1:5050").partition(":")
    root.mkdir(parents=True, exist_ok=True)
    (root / "project.garden.yml").write_text(f"""\
apiVersion: garden.io/v1
kind: Project
name: farmtest
defaultEnvironment: local
environments:
  - name: local
providers:
  - name: kubernetes
    context: farm-local
    buildMode: {mode}
    deploymentRegistry:
      hostname: {host}
      port: {port or 443}
      namespace: {namespace}
      insecure: true
""")
    for name, files in builds.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "garden.yml").write_text(f"kind: Build\ntype: container\nname: {name}\n{extra_build_yaml}")
        for rel, content in files.items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_bytes(content.encode() if isinstance(content, str) else content)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init"], cwd=root, check=True)
    return root


def broker_holds(env: dict[str, str], needle: str) -> list[str]:
    """Every Redis key (broker and result backend) whose content contains `needle`."""
    import redis

    found = []
    for url in (env["FARM_BROKER_URL"], env["FARM_RESULT_BACKEND"]):
        r = redis.Redis.from_url(url)
        for key in r.scan_iter("*"):
            kind = r.type(key).decode()
            dump = {"string": lambda: r.get(key), "hash": lambda: r.hgetall(key),
                    "list": lambda: r.lrange(key, 0, -1), "stream": lambda: r.xrange(key),
                    "set": lambda: r.smembers(key), "zset": lambda: r.zrange(key, 0, -1)}.get(kind, lambda: b"")()
            if needle.encode() in repr(dump).encode():
                found.append(key.decode())
    return found


def run_together(n: int, fn: Callable[[], object]) -> list[BaseException]:
    """Call `fn` from `n` threads released at the same instant; the exceptions they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def one() -> None:
        try:
            barrier.wait()
            fn()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
