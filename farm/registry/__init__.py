"""The registry seam: references, credentials and the OCI distribution client."""

from __future__ import annotations

from pathlib import Path

from farm.registry.client import ManifestInfo, RegistryClient
from farm.registry.credentials import Credentials, load_credentials
from farm.registry.reference import Reference, parse_reference


def open_client(image: str, docker_config: Path, *, insecure: bool,
                timeout: float = 30.0) -> tuple[RegistryClient, Reference]:
    """A client for the registry of `image`, with its credentials from the docker config, and the
    parsed reference. Close it (it is a context manager)."""
    ref = parse_reference(image)
    return RegistryClient(ref.host, load_credentials(docker_config, ref.host), insecure=insecure,
                          timeout=timeout), ref


__all__ = ["Credentials", "ManifestInfo", "Reference", "RegistryClient", "load_credentials", "open_client",
           "parse_reference"]
