"""The `kubernetes` runtime for containerised jobs (kaniko): one Pod per build, GARDEN-SPEC §5.4.

    ensure    ServiceAccount `garden-in-cluster-builder` and the `garden-docker-auth-<hash>` Secret
              (the worker's registry credentials) in the job's namespace, idempotently
    create    the Pod of `k8s_objects.kaniko_pod`
    wait      until its container runs, or fail at once with the cause: the image cannot be pulled
              (ErrImagePull / ImagePullBackOff), never scheduled within FARM_KUBE_SCHEDULE_TIMEOUT
              (the scheduler's own reason: a nodeSelector no node has, too little CPU …), evicted
    context   how the build context gets there: the worker (which materialised it from the farm's
              context store) attaches to the executor's stdin (`stdinOnce`) and writes it as a gzip
              tar; the executor reads it with `--context=tar://stdin`, and closing the attach stream
              is its EOF. No rsync `garden-util` Deployment, no volume, no helper image, no port the
              Pod must reach: only the API server's `pods/attach`, which every cluster has.
    follow    the executor's log, line by line, into the job's log
    end       Succeeded -> the lines; Failed -> OOMKilled (with the limit), the exit code with the
              executor's `error …` line and the last lines, Evicted, DeadlineExceeded (the timeout);
              the Build's `timeout` is enforced by the worker and, should the worker die, by the
              Pod's `activeDeadlineSeconds`
    delete    the Pod, always (grace period 0; a 404 is fine)
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.errors import BuildError, BuildStopped, PermanentBuildError, TransientBuildError
from farm.registry.build_config import build_docker_config, config_bytes
from farm.registry.docker_config import DockerConfig
from farm.settings import get_settings
from workers import k8s_objects as objects
from workers.builder_job import BuilderJob, accepted
from workers.runtimes.kubernetes import api_client, apply
from workers.runtimes.process import Output, failure

PULL_ERRORS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
DEADLINE_MARGIN = 60            # the Pod's activeDeadlineSeconds over the Build's timeout


@dataclass(frozen=True)
class Verdict:
    """What a Pod's status says before or after its executor ran: None in a field means "not yet"."""

    running: bool = False
    done: bool = False
    error: BuildError | None = None


def loopback_registry(argv: tuple[str, ...]) -> bool:
    """The executor pushes to a registry on 127.0.0.1 / localhost: only the node's network reaches it."""
    for arg in argv:
        if arg.startswith("--destination="):
            host = arg.split("=", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
            return host in ("localhost", "127.0.0.1") or host.startswith("127.")
    return False


def diagnose(pod: Any, *, age: float, schedule_timeout: float, memory: str | None) -> Verdict:
    """Read a Pod's status (a kubernetes client V1Pod) into a Verdict. Pure."""
    status = pod.status
    phase = status.phase or "Pending"
    containers = status.container_statuses or []
    state = containers[0].state if containers else None
    if phase in ("Succeeded", "Failed"):
        if phase == "Failed" and status.reason == "Evicted":
            return Verdict(done=True, error=TransientBuildError(f"kaniko: the Pod was evicted: {status.message}"))
        if phase == "Failed" and status.reason == "DeadlineExceeded":
            return Verdict(done=True, error=TransientBuildError(
                f"kaniko: the Pod ran past its activeDeadlineSeconds: {status.message}"))
        return Verdict(done=True)
    if state is not None and state.running is not None:
        return Verdict(running=True)
    if state is not None and state.terminated is not None:
        return Verdict(running=True)    # ended already; the phase follows
    waiting = state.waiting if state is not None else None
    if waiting is not None and waiting.reason in PULL_ERRORS:
        return Verdict(done=True, error=PermanentBuildError(
            f"kaniko: the executor image could not be pulled ({waiting.reason}): {waiting.message or ''}".rstrip()))
    if waiting is not None and waiting.reason in ("CreateContainerConfigError", "CreateContainerError"):
        return Verdict(done=True, error=PermanentBuildError(f"kaniko: {waiting.reason}: {waiting.message}"))
    scheduled = next((c for c in status.conditions or [] if c.type == "PodScheduled"), None)
    if age > schedule_timeout and (scheduled is None or scheduled.status != "True"):
        why = scheduled.message if scheduled is not None and scheduled.message else "no node took it"
        cls = TransientBuildError if "Insufficient" in why else PermanentBuildError
        return Verdict(done=True, error=cls(f"kaniko: the Pod was never scheduled within {schedule_timeout:.0f} s: {why}"))
    return Verdict()


def ended(job: BuilderJob, pod: Any, lines: list[str], tail: list[str], memory: str | None) -> list[str]:
    """The lines of a Pod that ran to its end, or the error its executor's end means."""
    if pod.status.phase == "Succeeded":
        return lines
    statuses = pod.status.container_statuses or []
    terminated = statuses[0].state.terminated if statuses and statuses[0].state else None
    if terminated is None:
        raise TransientBuildError(f"kaniko: the Pod failed before its executor ran: {pod.status.reason} "
                                  f"{pod.status.message or ''}".rstrip())
    if accepted(job, lines):
        return lines
    if terminated.reason == "OOMKilled":
        raise TransientBuildError(f"kaniko: {job.argv[0]} was killed out of memory (OOMKilled, limit {memory}, "
                                  f"exit {terminated.exit_code})\n" + "\n".join(tail))
    raise failure(job, int(terminated.exit_code or 1), tail)


def context_tar(context_dir: str) -> bytes:
    """The materialised context as a gzip tar (what `tar://stdin` reads)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(os.listdir(context_dir)):
            tar.add(os.path.join(context_dir, entry), arcname=entry)
    return gzip.compress(raw.getvalue(), compresslevel=1)


def run(job: BuilderJob, secrets: Mapping[str, str], on_line: Callable[[str], None] | None,
        stop: threading.Event | None = None) -> list[str]:
    """Run `job` as a Pod in `job.placement.namespace`; its output lines, or a BuildError."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    import urllib3

    settings = get_settings()
    if not job.image:
        raise PermanentBuildError(f"{job.mode}: the kubernetes runtime needs a job with an image")
    if not settings.kubeconfig:
        raise PermanentBuildError("the kubernetes runtime needs a kubeconfig (KUBECONFIG)")
    place = job.placement
    namespace = place.namespace
    try:
        api = api_client(settings.kubeconfig, place.context)
        core = client.CoreV1Api(api)
        secret_name = ensure_builder_objects(core, namespace, job, Path(job.docker_config or settings.docker_config))
        name = objects.kaniko_pod_name(place.build or job.mode, uuid.uuid4().hex)
        memory = (place.resources.get("limits") or {}).get("memory")
        manifest: Any = objects.kaniko_pod(
            namespace, name, image=job.image, argv=job.argv, auth_secret_name=secret_name,
            active_deadline=job.timeout + DEADLINE_MARGIN, tolerations=place.tolerations,
            node_selector=place.node_selector, annotations=place.annotations,
            resources=place.resources or objects.DEFAULT_RESOURCES, image_pull_secrets=place.image_pull_secrets,
            labels=dict(place.labels), host_network=loopback_registry(job.argv))
        core.create_namespaced_pod(namespace, manifest)
        if on_line is not None:
            on_line(f"farm: executor Pod {namespace}/{name} created")
    except ApiException as exc:
        raise _api_error(exc, namespace) from None
    except urllib3.exceptions.HTTPError as exc:
        raise TransientBuildError(f"Kubernetes API unreachable: {exc}") from None
    try:
        return _follow(core, job, name, namespace, memory, settings.kube_schedule_timeout, on_line, stop)
    except ApiException as exc:
        raise _api_error(exc, namespace) from None
    except urllib3.exceptions.HTTPError as exc:
        raise TransientBuildError(f"Kubernetes API unreachable while the build ran: {exc}") from None
    finally:
        try:
            core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        except (ApiException, urllib3.exceptions.HTTPError):
            pass                # gone already (404), or its activeDeadlineSeconds ends it


def _api_error(exc: Any, namespace: str) -> BuildError:
    text = f"{exc.reason} {exc.body or ''}"
    status = exc.status or (int(m.group(1)) if (m := re.search(r"Handshake status (\d+)", text)) else 0)
    said = m.group(1) if (m := re.search(r'"message":"((?:[^"\\]|\\.)*)"', text)) else exc.reason
    reason = f"{status} {said}".replace('\\"', '"')
    if status == 403:
        return PermanentBuildError(f"Kubernetes refused the worker in namespace {namespace} ({reason}): "
                                   "its Role lacks a permission (workers/rbac.py lists what it needs)")
    if status == 404:
        return PermanentBuildError(f"Kubernetes: namespace {namespace} or an object in it is missing ({reason})")
    if status in (408, 429, 500, 502, 503, 504) or not status:
        return TransientBuildError(f"Kubernetes API error in namespace {namespace}: {reason}")
    return PermanentBuildError(f"Kubernetes API error in namespace {namespace}: {reason}")


def ensure_builder_objects(core: Any, namespace: str, job: BuilderJob, docker_config: Path) -> str:
    """The builder ServiceAccount and the docker-auth Secret in `namespace` (created when missing and
    the worker may); the Secret's name."""
    from kubernetes.client.exceptions import ApiException

    hosts = [a.split("=", 1)[1].split("/", 1)[0] for a in job.argv
             if a.startswith(("--destination=", "--cache-repo="))]
    config = build_docker_config(DockerConfig.load(docker_config), None, hosts)
    data = json.loads(config_bytes(config))
    sa = objects.service_account(namespace, dict(job.placement.service_account_annotations))
    try:
        apply(core, "service_account", sa)
    except ApiException as exc:
        if exc.status != 404:
            raise
        # Garden's ensureNamespace; a least-privilege worker may not (403: the namespace must exist)
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        apply(core, "service_account", sa)
    secret = objects.docker_auth_secret(namespace, data)
    apply(core, "secret", secret)
    return str(secret["metadata"]["name"])


def _follow(core: Any, job: BuilderJob, name: str, namespace: str, memory: str | None, schedule_timeout: float,
            on_line: Callable[[str], None] | None, stop: threading.Event | None) -> list[str]:
    out = Output(on_line)

    created = time.monotonic()
    while True:                         # until the executor runs (or the Pod cannot run)
        _check_stop(stop)
        pod = core.read_namespaced_pod(name, namespace)
        verdict = diagnose(pod, age=time.monotonic() - created, schedule_timeout=schedule_timeout, memory=memory)
        if verdict.error is not None:
            raise verdict.error
        if verdict.running or verdict.done:
            break
        time.sleep(0.5)
    if not verdict.done:
        _send_context(core, name, namespace, job.context_dir)
    reader = threading.Thread(target=_pump_logs, args=(core, name, namespace, out), name="pod-log", daemon=True)
    reader.start()
    deadline = time.monotonic() + job.timeout
    while True:
        _check_stop(stop)
        pod = core.read_namespaced_pod(name, namespace)
        verdict = diagnose(pod, age=time.monotonic() - created, schedule_timeout=schedule_timeout, memory=memory)
        if verdict.done:
            break
        if time.monotonic() >= deadline:
            raise TransientBuildError(f"{job.mode}: {job.argv[0]} timed out after {job.timeout} s")
        time.sleep(0.5)
    reader.join(timeout=15)
    if verdict.error is not None:
        raise type(verdict.error)(f"{verdict.error}\n" + "\n".join(out.tail))
    return ended(job, pod, out.lines, list(out.tail), memory)


def _check_stop(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise BuildStopped("kaniko: the executor Pod was stopped")


def _send_context(core: Any, name: str, namespace: str, context_dir: str) -> None:
    """Write the context to the executor's stdin through the attach API, then end the stream (EOF)."""
    from kubernetes.stream import stream

    ws = stream(core.connect_get_namespaced_pod_attach, name, namespace, container=objects.KANIKO_CONTAINER,
                stdin=True, stdout=False, stderr=False, tty=False, _preload_content=False)
    try:
        data = context_tar(context_dir)
        for start in range(0, len(data), 256 * 1024):
            ws.write_stdin(data[start:start + 256 * 1024])
        ws.close_channel(0)             # v5: stdin's EOF now; on older servers, closing the stream does it
        ws.update(timeout=1)
    finally:
        ws.close()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _pump_logs(core: Any, name: str, namespace: str, emit: Callable[[str], None]) -> None:
    """The executor's log, followed until its container ends."""
    try:
        resp = core.read_namespaced_pod_log(name, namespace, container=objects.KANIKO_CONTAINER, follow=True,
                                            _preload_content=False)
        buf = b""
        for chunk in resp.stream(4096):
            buf += chunk
            *complete, buf = buf.split(b"\n")
            for raw in complete:
                emit(_ANSI.sub("", raw.decode("utf-8", "replace").rstrip("\r")))
        if buf:
            emit(_ANSI.sub("", buf.decode("utf-8", "replace").rstrip("\r")))
    except Exception as exc:  # noqa: BLE001 - the Pod's end is read from its status anyway
        emit(f"farm: the executor's log stream ended: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")

