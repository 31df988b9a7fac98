"""Reading the provider's imagePullSecrets from Kubernetes: the only I/O of the pull-secret path.

Validation and merging are `farm.registry.pull_secrets` (pure, Garden's rules); this module only
turns a Secret read from the API server into a `PullSecret`. It lives with the workers because the
producer never imports the kubernetes client; a worker reads with the provider's
kubeconfig/context, or with its own in-cluster ServiceAccount.

Wiring (not done here, it needs the cluster work): `resolve_pull_secrets(refs, kubernetes_reader(...))`
then `farm.registry.build_config.build_docker_config(...)` and `private_config_dir(...)` around the build.
"""

from __future__ import annotations

from typing import Any

from farm.registry.pull_secrets import PullSecret, SecretReader


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
    """A reader over the provider's kubeconfig/context, or the in-cluster identity when neither is set."""
    from kubernetes import client, config

    if kubeconfig is None and context is None:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
    else:
        config.load_kube_config(config_file=kubeconfig, context=context)
    api = client.CoreV1Api()
    return lambda name, namespace: read_pull_secret(api, name, namespace)
