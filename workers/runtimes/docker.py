"""The `docker` runtime: run a containerised BuilderJob (the Kaniko executor) on the worker's engine.

One container per job, nothing shared between builds: the job's image with `argv` as its command,
the context and the worker's registry credentials bind-mounted read-only, host networking (the
stack's engine has no bridge; a registry on 127.0.0.1 is reachable), the memory limit of the job's
`resources.limits.memory`. Its output is streamed line by line, its timeout enforced, `stop` kills it,
and it is removed afterwards whatever happened. A worker killed mid-build cannot remove its container,
so every container carries its owner (host and pid): the next run on that host, and every worker
start (`reap`), removes the containers whose owner is gone.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from farm.errors import BuildStopped, PermanentBuildError, TransientBuildError
from farm.registry import parse_reference
from farm.registry.credentials import load_credentials
from farm.settings import get_settings
from workers.builder_job import BuilderJob, accepted
from workers.runtimes.process import Output, failure

LABEL = "farm.runtime"
OWNER = "farm.owner"                # "<hostname> <pid>" of the worker process that runs the container
_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "k": 1000, "M": 1000**2, "G": 1000**3}


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (`512Mi`, `8Gi`, `1000000`) in bytes."""
    for suffix, factor in _UNITS.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(float(quantity))


def _client() -> Any:
    import docker

    return docker.DockerClient(base_url=get_settings().docker_host, timeout=120)


def _owner() -> str:
    return f"{socket.gethostname()} {os.getpid()}"


def _alive(pid: int) -> bool:
    """A running process (a zombie, killed but not yet reaped by its new parent, is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def reap(client: Any | None = None) -> list[str]:
    """Remove this host's build containers whose worker process is gone; their names."""
    client = client or _client()
    host = socket.gethostname()
    removed = []
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        owner_host, _, pid = (container.labels.get(OWNER) or "").partition(" ")
        if owner_host == host and pid.isdigit() and not _alive(int(pid)):
            container.remove(force=True)
            removed.append(container.name)
    return removed


def _ensure_image(client: Any, image: str, docker_config: str) -> None:
    import docker

    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    ref = parse_reference(image)
    creds = load_credentials(Path(docker_config), ref.host)
    auth = {"username": creds.username, "password": creds.password} if creds else None
    try:
        client.images.pull(image, auth_config=auth)
    except docker.errors.APIError as exc:
        raise TransientBuildError(f"{image} could not be pulled: {exc.explanation or exc}") from None


def run(job: BuilderJob, secrets: Mapping[str, str], on_line: Callable[[str], None] | None,
        stop: threading.Event | None = None) -> list[str]:
    """Run `job` in a container of `job.image`; its output lines, or a BuildError."""
    import docker
    from docker.types import Mount

    if not job.image:
        raise PermanentBuildError(f"{job.mode}: the docker runtime needs a job with an image")
    docker_config = job.docker_config or str(get_settings().docker_config)
    try:
        client = _client()
        reap(client)
        _ensure_image(client, job.image, docker_config)
    except docker.errors.DockerException as exc:
        raise TransientBuildError(f"the worker's Docker engine did not answer: {exc}") from None
    mounts = [Mount(job.context_mount, job.context_dir, type="bind", read_only=True)]
    if os.path.isdir(docker_config):
        mounts.append(Mount(job.docker_config_mount, docker_config, type="bind", read_only=True))
    memory = (job.placement.resources.get("limits") or {}).get("memory")
    container = client.containers.create(
        job.image, entrypoint=[job.argv[0]], command=list(job.argv[1:]), network_mode="host",
        mounts=mounts, environment=dict(job.env), labels={LABEL: job.mode, OWNER: _owner()},
        mem_limit=memory_bytes(memory) if memory else None,
        memswap_limit=memory_bytes(memory) if memory else None)
    out = Output(on_line)
    try:
        container.start()
        reader = threading.Thread(target=_pump, args=(container, out), name="container-output", daemon=True)
        reader.start()
        timed_out = stopped = False
        deadline = time.monotonic() + job.timeout
        while True:
            container.reload()
            if container.status in ("exited", "dead"):
                break
            if stop is not None and stop.is_set():
                stopped = True
            elif time.monotonic() >= deadline:
                timed_out = True
            else:
                time.sleep(0.3)
                continue
            container.kill()
            break
        result = container.wait(timeout=60)
        reader.join(timeout=10)
        state = client.api.inspect_container(container.id)["State"]
    except docker.errors.DockerException as exc:
        raise TransientBuildError(f"the worker's Docker engine failed during the build: {exc}") from None
    finally:
        try:
            container.remove(force=True)
        except docker.errors.DockerException:
            pass                        # reaped by the next run
    if stopped:
        raise BuildStopped(f"{job.mode}: the {job.argv[0]} container was stopped")
    if timed_out:
        raise TransientBuildError(f"{job.mode}: {job.argv[0]} timed out after {job.timeout} s")
    code = int(result.get("StatusCode", state.get("ExitCode", -1)))
    if code == 0 or accepted(job, out.lines):
        return out.lines
    if state.get("OOMKilled"):
        raise TransientBuildError(f"{job.mode}: {job.argv[0]} was killed out of memory (limit {memory}, "
                                  f"exit {code})\n" + "\n".join(out.tail))
    raise failure(job, code, list(out.tail))


def _pump(container: Any, emit: Callable[[str], None]) -> None:
    """The container's stdout and stderr, followed, one line at a time."""
    buf = b""
    for chunk in container.logs(stream=True, follow=True, stdout=True, stderr=True):
        buf += chunk
        *complete, buf = buf.split(b"\n")
        for raw in complete:
            emit(raw.decode("utf-8", "replace").rstrip("\r"))
    if buf:
        emit(buf.decode("utf-8", "replace").rstrip("\r"))
