"""Reading the provider's imagePullSecrets from Kubernetes: the only I/O of the pull-secret path.

Validation and merging are `farm.registry.pull_secrets` (pure, Garden's rules); this module only
turns a Secret read from the API server into a `PullSecret`. It lives with the workers because the
producer never imports the kubernetes client; a worker reads with the provider's
kubeconfig/context, or with its own in-cluster ServiceAccount.

`build_docker_config_dir` is what a build uses: the worker's own docker config when the project has
no imagePullSecrets, else a private one for this build only (0600 in a 0700 directory, removed
after): the worker's config, the merged secrets on top, native helpers resolved for every registry
the build touches (its image, its caches, its Dockerfile's base images). A missing, malformed or
unreadable secret fails the build before the builder starts, naming the secret and its namespace.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from farm.dockerfile import base_images
from farm.errors import ConfigError, PermanentBuildError
from farm.jobs import BuildRequest
from farm.registry.build_config import build_docker_config, private_config_dir
from farm.registry.docker_config import DockerConfig
from farm.registry.pull_secrets import PullSecret, SecretReader, SecretRef, resolve_pull_secrets
from farm.registry.reference import parse_reference


def read_pull_secret(core_v1: Any, name: str, namespace: str) -> PullSecret | None:
    """GET the Secret `namespace/name` with a `kubernetes.client.CoreV1Api`; None on 404.

    Any other API error (403: the farm's identity may not read Secrets there) propagates as the
    kubernetes client's ApiException: the caller turns it into a ConfigError naming the secret."""
    from kubernetes.client.exceptions import ApiException

    try:
        secret = core_v1.read_namespaced_secret(name=name, namespace=namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return PullSecret(name=name, namespace=namespace, type=secret.type, data=dict(secret.data or {}))


def kubernetes_reader(kubeconfig: str | None = None, context: str | None = None) -> SecretReader:
    """A reader over the worker's kubeconfig at `context` (the provider's), or its in-cluster identity."""
    from kubernetes import client, config

    configuration = client.Configuration()      # filled first: an ApiClient fixes its TLS at creation
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        try:
            # KUBECONFIG read now: the client library reads it once, at its import.
            config.load_kube_config(config_file=kubeconfig or os.environ.get("KUBECONFIG") or None, context=context,
                                    client_configuration=configuration)
        except (config.ConfigException, OSError) as exc:
            raise PermanentBuildError(f"cannot read the project's imagePullSecrets: this worker has no "
                                      f"in-cluster identity and no usable kubeconfig context "
                                      f"{context!r} ({exc})") from None
    configuration.retries = 1                    # an unreachable API server fails the build soon
    api = client.CoreV1Api(client.ApiClient(configuration))
    return lambda name, namespace: read_pull_secret(api, name, namespace)


def registries_of(req: BuildRequest, context_dir: Path) -> list[str]:
    """Every registry the build pushes to or pulls from: its image, its caches, its base images."""
    refs = [req.image, *(c.ref for c in req.cache)]
    try:
        refs += base_images((context_dir / req.dockerfile).read_text(errors="replace"), req.build_args)
    except OSError:
        pass        # no Dockerfile: the builder says so, with its own words
    hosts: list[str] = []
    for ref in refs:
        host = parse_reference(ref).host
        if host not in hosts:
            hosts.append(host)
    return hosts


def merged_pull_secrets(req: BuildRequest, read: SecretReader) -> dict[str, Any]:
    """The project's secrets read, validated and merged (Garden's order); a build error naming the
    secret when one is missing, malformed or not readable by this worker."""
    from kubernetes.client.exceptions import ApiException

    refs = [SecretRef(r.name, r.namespace) for r in req.pull_secrets]
    try:
        return resolve_pull_secrets(refs, read)
    except ConfigError as exc:
        raise PermanentBuildError(exc.message) from None
    except ApiException as exc:
        who = ", ".join(f"{r.namespace}/{r.name}" for r in refs)
        raise PermanentBuildError(f"cannot read imagePullSecrets ({who}): the API server answered "
                                  f"{exc.status} {exc.reason}") from None


@contextmanager
def build_docker_config_dir(req: BuildRequest, worker_config: Path, context_dir: Path,
                            root: Path) -> Iterator[Path]:
    """The DOCKER_CONFIG directory this build's builder reads (see the module docstring)."""
    if not req.pull_secrets:
        yield worker_config
        return
    merged = merged_pull_secrets(req, kubernetes_reader(context=req.kube_context))
    config = build_docker_config(DockerConfig.load(worker_config), merged, registries_of(req, context_dir))
    with private_config_dir(root, config) as directory:
        yield directory
