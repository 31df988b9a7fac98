"""The registry seam: references, credentials and the OCI distribution client."""

from farm.registry.client import ManifestInfo, RegistryClient
from farm.registry.credentials import Credentials, load_credentials
from farm.registry.reference import Reference, parse_reference

__all__ = ["Credentials", "ManifestInfo", "Reference", "RegistryClient", "load_credentials", "parse_reference"]
