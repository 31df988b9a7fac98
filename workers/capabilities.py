"""What this worker can build: the modes it has a builder and the tools for, probed at start.

A worker consumes only the queues of these modes, so it never takes a job it cannot run.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from farm.registry.manifests import same_platform
from farm.settings import Settings


def _docker_answers(docker_host: str) -> bool:
    if docker_host.startswith("unix://"):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2.0)
                s.connect(docker_host.removeprefix("unix://"))
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return b" 200 " in s.recv(64)
        except OSError:
            return False
    proc = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                          timeout=10, check=False, env={**os.environ, "DOCKER_HOST": docker_host})
    return proc.returncode == 0


def missing(mode: str, settings: Settings) -> str | None:
    """None when this worker can run `mode`, else what it lacks."""
    if mode == "local-docker":
        if shutil.which("docker") is None:
            return "no docker CLI on PATH"
        if not _docker_answers(settings.docker_host):
            return f"no Docker engine answers at {settings.docker_host}"
        return None
    if mode == "cluster-buildkit":
        if settings.runtime == "kubernetes":        # buildkitd in the project namespace, buildctl here
            if shutil.which(settings.buildctl) is None:
                return f"no buildctl ({settings.buildctl})"
            return _kube_missing(settings)
        if not settings.buildkit_host:
            return "BUILDKIT_HOST is not set"
        if shutil.which(settings.buildctl) is None:
            return f"no buildctl ({settings.buildctl})"
        return None
    if mode == "kaniko":
        return _kaniko_missing(settings)
    return f"this worker has no builder for {mode}"


def _kaniko_missing(settings: Settings) -> str | None:
    """kaniko runs the executor image in a container: the image must be known and reachable."""
    if not settings.kaniko_image:
        return "no executor image (FARM_KANIKO_IMAGE; `farm stack up --project DIR` builds one)"
    if settings.runtime == "kubernetes":
        problem = _kube_missing(settings)
        if problem:
            return problem
    elif not _docker_answers(settings.docker_host) and not settings.kubeconfig:
        return f"no Docker engine answers at {settings.docker_host} to run the executor in"
    from farm.errors import FarmError
    from farm.registry import open_client

    try:
        client, ref = open_client(settings.kaniko_image, settings.docker_config, insecure=_local(settings.kaniko_image),
                                  timeout=10)
        with client:
            found = client.head_manifest(ref.repository, ref.ref)
    except (FarmError, OSError) as exc:
        return f"the executor image {settings.kaniko_image} could not be looked up: {str(exc).splitlines()[0]}"
    return None if found else f"the executor image {settings.kaniko_image} is not in its registry"


def _kube_missing(settings: Settings) -> str | None:
    """The kubernetes runtime needs a kubeconfig whose API server answers."""
    if not settings.kubeconfig:
        return "FARM_RUNTIME=kubernetes but no KUBECONFIG"
    try:
        from kubernetes import client, config

        with config.new_client_from_config(config_file=settings.kubeconfig) as api:
            client.VersionApi(api).get_code(_request_timeout=10)
    except Exception as exc:  # noqa: BLE001 - any failure means: not usable, and why
        return f"the cluster of {settings.kubeconfig} does not answer: {str(exc).splitlines()[0][:200]}"
    return None


def _local(image: str) -> bool:
    host = image.split("/", 1)[0].rsplit(":", 1)[0]
    return host in ("localhost", "127.0.0.1") or host.startswith("127.")


def modes(settings: Settings, wanted: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The wanted modes this worker can run, and why it cannot run the others."""
    found, why = [], {}
    for mode in wanted:
        problem = missing(mode, settings)
        if problem is None:
            found.append(mode)
        else:
            why[mode] = problem
    return found, why


# --- foreign platforms ---------------------------------------------------------------------------

_QEMU = {"amd64": "x86_64", "arm64": "aarch64", "arm": "arm", "386": "i386", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el"}


def emulation(platform: str, binfmt: Path = Path("/proc/sys/fs/binfmt_misc")) -> bool:
    """Whether this kernel runs `platform`'s binaries through a registered qemu (binfmt_misc)."""
    arch = (platform.split("/") + ["", ""])[1]
    entry = binfmt / f"qemu-{_QEMU.get(arch, arch)}"
    try:
        return entry.read_text().startswith("enabled")
    except OSError:
        return False


def foreign_reason(mode: str, platform: str, machine: str, steps: Sequence[str], emulated: bool) -> str | None:
    """None when this worker can build `steps` for `platform`, else why it cannot (pure).

    Its own platform, always. A foreign one: local-docker's classic builder writes a file-only image
    (FROM scratch, COPY, ADD) for any platform, but commits every other step (ARG, LABEL, ENV ...) as
    this machine's platform, and runs RUN natively: it needs a real base image of that platform and
    emulation. BuildKit writes metadata for any platform and needs emulation only to RUN. Kaniko's
    Pods run on a node of the job's platform, so this machine's platform does not matter there.
    Unknown steps (an older producer): it builds, and the pushed image's platform is checked."""
    if not steps or same_platform(platform, machine) or mode not in ("local-docker", "cluster-buildkit"):
        return None     # kaniko runs in a Pod on a node of the job's platform, not on this machine
    kinds = {s.split()[0] for s in steps}
    from_scratch = all(s == "FROM scratch" for s in steps if s.startswith("FROM"))
    arch = platform.split("/")[1] if "/" in platform else platform
    if mode == "local-docker":
        if kinds <= {"FROM", "COPY", "ADD"} and from_scratch:
            return None
        if emulated and not from_scratch:
            return None
        why = ("the classic builder commits ARG, LABEL and other steps over scratch as this machine's "
               "platform" if from_scratch else f"no emulation for {arch} (binfmt_misc qemu-{_QEMU.get(arch, arch)})")
    else:
        if "RUN" not in kinds or emulated:
            return None
        why = f"RUN steps need emulation for {arch} (binfmt_misc qemu-{_QEMU.get(arch, arch)}), and there is none"
    return f"this worker ({machine}) cannot build {mode} for {platform}: {why}; it waits for a {platform} worker"
