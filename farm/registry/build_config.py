"""The docker config one build gets: the worker's own config, the project's merged pull secrets on
top (later wins), and every native helper resolved into a short-lived `auths` entry, because the
builders (buildkitd, kaniko, dockerd) cannot run `docker-credential-*` binaries the farm never ships.

    build_docker_config(worker, secrets, hosts)  -> DockerConfig (pure but for minting helper tokens)
    private_config_dir(root, config)             -> a 0700 directory holding a 0600 config.json
    garden_auth_secret(config)                   -> the content-addressed `garden-docker-auth-<hash>`
                                                    name and `.dockerconfigjson` data (GARDEN-SPEC §5.1)
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from farm.registry.credentials import NATIVE_HELPERS, credentials_for
from farm.registry.docker_config import AuthEntry, DockerConfig, normalise_host, write_private


def build_docker_config(worker: DockerConfig, secrets: Mapping[str, Any] | DockerConfig | None,
                        hosts: Iterable[str], *, ambient: bool = True) -> DockerConfig:
    """The config a builder reads for `hosts` (deployment, caches, base images) and every host a
    credHelpers entry names. Helpers other than ecr-login / gcr and any credsStore are dropped: a
    builder could not run them."""
    merged = worker
    if secrets is not None:
        extra = secrets if isinstance(secrets, DockerConfig) else DockerConfig.from_json(secrets, "imagePullSecrets")
        merged = worker.merged(extra)
    merged = DockerConfig(auths=merged.auths, cred_helpers=merged.cred_helpers, creds_store=None,
                          origin=merged.origin)
    auths: dict[str, AuthEntry] = dict(merged.auths)
    wanted = {normalise_host(h) for h in hosts} | set(merged.cred_helpers)
    for host in sorted(wanted):
        if merged.helper(host) in NATIVE_HELPERS or (host not in auths and ambient):
            resolved = credentials_for(host, merged, ambient=ambient)
            if resolved.credentials is not None and resolved.source != "auths":
                c = resolved.credentials
                auths[host] = AuthEntry(c.username, c.password, c.identity_token)
    return DockerConfig(auths=auths, origin=merged.origin)


def config_bytes(config: DockerConfig) -> bytes:
    """The file's bytes: canonical JSON, so equal credentials make equal files and Secret names."""
    return json.dumps(config.to_json(), sort_keys=True, separators=(",", ":")).encode()


@contextmanager
def private_config_dir(root: Path, config: DockerConfig) -> Iterator[Path]:
    """A fresh directory (0700) under `root` holding `config.json` (0600) for one build: its
    DOCKER_CONFIG. Removed afterwards, whatever happens."""
    root.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="docker-config-", dir=root))   # mkdtemp makes it 0700
    try:
        write_private(directory / "config.json", config_bytes(config))
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def garden_auth_secret(config: DockerConfig) -> tuple[str, str]:
    """(`garden-docker-auth-<sha256hex(base64 data)[:6]>`, base64 data) for the `.dockerconfigjson` key."""
    data = base64.b64encode(config_bytes(config)).decode()
    return f"garden-docker-auth-{hashlib.sha256(data.encode()).hexdigest()[:6]}", data
