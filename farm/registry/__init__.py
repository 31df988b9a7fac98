"""The registry seam: references, credentials (docker config, ECR, GCR/GAR, pull secrets) and the
OCI distribution client."""

from __future__ import annotations

from pathlib import Path

from farm.registry.client import ManifestInfo, RegistryClient
from farm.registry.credentials import Credentials, Resolved, credentials_for, load_credentials
from farm.registry.docker_config import DockerConfig
from farm.registry.reference import Reference, parse_reference


def open_client(image: str, docker_config: Path | DockerConfig, *, insecure: bool,
                timeout: float = 30.0) -> tuple[RegistryClient, Reference]:
    """A client for the registry of `image`, with its credentials resolved by `credentials_for`
    (docker config, native helpers, the farm's own cloud identity), and the parsed reference.
    Close it (it is a context manager)."""
    ref = parse_reference(image)
    return client_for(ref.host, docker_config, insecure=insecure, timeout=timeout), ref


def client_for(host: str, docker_config: Path | DockerConfig, *, insecure: bool,
               timeout: float = 30.0) -> RegistryClient:
    resolved = credentials_for(host, docker_config)
    return RegistryClient(host, resolved.credentials, insecure=insecure, timeout=timeout,
                          source=resolved.detail if resolved.credentials else "")


__all__ = ["Credentials", "DockerConfig", "ManifestInfo", "Reference", "RegistryClient", "Resolved", "client_for",
           "credentials_for", "load_credentials", "open_client", "parse_reference"]
