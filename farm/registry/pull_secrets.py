"""The provider's `imagePullSecrets`, validated and merged exactly as Garden merges them (GARDEN-SPEC §7).

    read each secret from its namespace            (a reader the caller passes: the Kubernetes read
                                                    lives with the workers, `workers/pull_secrets.py`)
    validate: type kubernetes.io/dockerconfigjson, a `.dockerconfigjson` key, base64, JSON,
              an object with `auths` or `credHelpers`          (each shape its own message)
    merge:    {"experimental": "enabled", "auths": {...}, "credHelpers": {...}}, per registry,
              in list order, a later secret wins; `credsStore` and every other key dropped

Messages name the secret, its namespace and what is wrong, never a value. One fix over Garden: two
spellings of one registry (`https://index.docker.io/v1/` and `docker.io`) are one key, so "later
wins" holds across spellings too.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from farm.errors import ConfigError
from farm.registry.docker_config import DockerConfig, normalise_host

SECRET_TYPE = "kubernetes.io/dockerconfigjson"
SECRET_KEY = ".dockerconfigjson"
DOCS = "https://kubernetes.io/docs/tasks/configure-pod-container/pull-image-private-registry/"
FIELD = "providers[kubernetes].imagePullSecrets"


@dataclass(frozen=True)
class SecretRef:
    name: str
    namespace: str = "default"


@dataclass(frozen=True)
class PullSecret:
    """A Secret as the Kubernetes API returns it: its type and base64-encoded data (kept out of repr)."""

    name: str
    namespace: str
    type: str | None
    data: Mapping[str, str] = field(default_factory=dict, repr=False)


def _error(secret: SecretRef | PullSecret, what: str, index: int | None, file: str | None) -> ConfigError:
    where = f"{FIELD}[{index}]" if index is not None else FIELD
    return ConfigError(f"imagePullSecret '{secret.name}' in namespace '{secret.namespace}' {what} "
                       f"(see {DOCS})", file=file, field=where)


def missing(ref: SecretRef, index: int | None = None, file: str | None = None) -> ConfigError:
    """Garden's 404: the secret is not there (or the farm may not read it)."""
    return ConfigError(f"Could not find secret '{ref.name}' in namespace '{ref.namespace}': create it with "
                       f"`kubectl --namespace {ref.namespace} create secret docker-registry {ref.name} …` or fix "
                       f"the reference (see {DOCS})", file=file,
                       field=f"{FIELD}[{index}]" if index is not None else FIELD)


def parse_pull_secret(secret: PullSecret, index: int | None = None, file: str | None = None) -> dict[str, Any]:
    """The docker config a valid pull secret holds; ConfigError naming the secret otherwise."""
    if secret.type != SECRET_TYPE:
        hint = " (the old .dockercfg format: recreate it with `kubectl create secret docker-registry`)" \
            if secret.type == "kubernetes.io/dockercfg" else ""
        raise _error(secret, f"has type '{secret.type or '(none)'}'; it must be {SECRET_TYPE}{hint}", index, file)
    if SECRET_KEY not in secret.data:
        keys = ", ".join(sorted(secret.data)) or "none"
        raise _error(secret, f"has no {SECRET_KEY} key (its keys: {keys})", index, file)
    try:
        raw = base64.b64decode(secret.data[SECRET_KEY], validate=True)
    except (binascii.Error, ValueError):
        raise _error(secret, f"has a {SECRET_KEY} value that is not base64", index, file) from None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _error(secret, f"has a {SECRET_KEY} value that is not JSON", index, file) from None
    if not isinstance(doc, dict):
        raise _error(secret, f"has a {SECRET_KEY} value that is JSON but not an object", index, file)
    if "auths" not in doc and "credHelpers" not in doc:
        keys = ", ".join(sorted(doc)) or "none"
        raise _error(secret, f"has a {SECRET_KEY} with neither 'auths' nor 'credHelpers' (its keys: {keys})",
                     index, file)
    for key in ("auths", "credHelpers"):
        if key in doc and not isinstance(doc[key], dict):
            raise _error(secret, f"has a {SECRET_KEY} whose '{key}' is not an object", index, file)
    try:   # every entry must be usable: a bad `auth` value is this secret's fault, said now
        DockerConfig.from_json({k: doc[k] for k in ("auths", "credHelpers") if k in doc})
    except ConfigError as exc:
        raise _error(secret, f"has a {SECRET_KEY} with a bad entry: {exc.field}: {exc.message}", index,
                     file) from None
    return doc


def merge_pull_secrets(secrets: Sequence[PullSecret], file: str | None = None) -> dict[str, Any]:
    """Garden's merged config.json: each secret validated, then merged per registry, later wins."""
    auths: dict[str, Any] = {}
    helpers: dict[str, str] = {}
    for index, secret in enumerate(secrets):
        doc = parse_pull_secret(secret, index, file)
        for target, entries in ((auths, doc.get("auths") or {}), (helpers, doc.get("credHelpers") or {})):
            for key, value in entries.items():
                for old in [k for k in target if normalise_host(k) == normalise_host(key)]:
                    del target[old]
                target[key] = value
    return {"experimental": "enabled", "auths": auths, "credHelpers": helpers}


SecretReader = Callable[[str, str], "PullSecret | None"]


def resolve_pull_secrets(refs: Sequence[SecretRef], read: SecretReader, file: str | None = None) -> dict[str, Any]:
    """Read (`read(name, namespace)`, None when missing), validate and merge the provider's secrets."""
    found: list[PullSecret] = []
    for index, ref in enumerate(refs):
        secret = read(ref.name, ref.namespace)
        if secret is None:
            raise missing(ref, index, file)
        found.append(secret)
    return merge_pull_secrets(found, file)
