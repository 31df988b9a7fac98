"""Google Artifact Registry: the repository a `deploymentRegistry` names must exist and hold DOCKER images.

On `<location>-docker.pkg.dev`, `deploymentRegistry.namespace` is `<project>/<repository>`. Before
building, the repository is looked up with google-cloud-artifact-registry (its REST transport), and
a missing one or one of another format is an actionable error rather than a failed push. The API
endpoint follows FARM_ARTIFACT_REGISTRY_ENDPOINT (a local stand-in in the tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from farm.errors import ConfigError, RegistryAuthError, RegistryError
from farm.registry import gcp
from farm.registry.credentials import Resolved

ENDPOINT_ENV = "FARM_ARTIFACT_REGISTRY_ENDPOINT"


@dataclass(frozen=True)
class GarRepository:
    project: str
    location: str
    repository: str

    @property
    def name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repository}"


def parse_gar(host: str, namespace: str | None, field: str = "providers[kubernetes].deploymentRegistry") \
        -> GarRepository | None:
    """The repository an Artifact Registry `deploymentRegistry` names; None for other registries."""
    location = gcp.gar_location(host)
    if location is None:
        return None
    project, _, repository = (namespace or "").partition("/")
    if not project or not repository or "/" in repository:
        raise ConfigError(f"on Artifact Registry ({host}) the namespace must be <project>/<repository>, "
                          f"not '{namespace or ''}'", field=f"{field}.namespace")
    return GarRepository(project, location, repository)


def api_credentials(resolved: Resolved) -> Any:
    """Google API credentials from what the registry was resolved to (a JSON key, an ADC token)."""
    from google.oauth2 import credentials as oauth2

    creds = resolved.credentials
    if creds is None:
        raise RegistryAuthError(f"no credentials for {resolved.host} to look up its repositories "
                                f"({resolved.detail})")
    if creds.username == gcp.JSON_KEY_USER:
        return gcp.key_credentials(creds.password)
    return oauth2.Credentials(token=creds.password)  # type: ignore[no-untyped-call]


def check_repository(repo: GarRepository, resolved: Resolved, timeout: float = 30.0) -> None:
    """Raise an actionable ConfigError when the repository is missing or not a DOCKER repository."""
    try:
        from google.api_core import exceptions as api_exceptions
        from google.api_core.client_options import ClientOptions
        from google.cloud import artifactregistry_v1
    except ImportError:
        raise RegistryError("the Artifact Registry check needs google-cloud-artifact-registry: "
                            "pip install 'farm[gcp]'") from None
    endpoint = os.environ.get(ENDPOINT_ENV) or "artifactregistry.googleapis.com"
    client = artifactregistry_v1.ArtifactRegistryClient(
        credentials=api_credentials(resolved), transport="rest",
        client_options=ClientOptions(api_endpoint=endpoint))
    create = (f"gcloud artifacts repositories create {repo.repository} --repository-format=docker "
              f"--location={repo.location} --project={repo.project}")
    try:
        found = client.get_repository(name=repo.name, timeout=timeout)
    except api_exceptions.NotFound:
        raise ConfigError(f"Artifact Registry repository '{repo.repository}' does not exist in project "
                          f"'{repo.project}', location '{repo.location}'; create it with `{create}` or fix "
                          "deploymentRegistry.namespace (<project>/<repository>)",
                          field="providers[kubernetes].deploymentRegistry.namespace") from None
    except (api_exceptions.Unauthenticated, api_exceptions.Unauthorized, api_exceptions.PermissionDenied) as exc:
        raise RegistryAuthError(f"Artifact Registry refused to describe {repo.name} "
                                f"({exc.__class__.__name__}; credentials: {resolved.detail}); the account "
                                "needs artifactregistry.repositories.get (roles/artifactregistry.writer)") from None
    except api_exceptions.GoogleAPICallError as exc:
        raise RegistryError(f"Artifact Registry lookup of {repo.name} failed: {exc.__class__.__name__}",
                            retryable=True) from None
    fmt = artifactregistry_v1.Repository.Format(found.format_).name
    if fmt != "DOCKER":
        raise ConfigError(f"Artifact Registry repository '{repo.repository}' (project '{repo.project}', location "
                          f"'{repo.location}') is a {fmt} repository; images need a DOCKER repository: create "
                          f"one with `{create}` and point deploymentRegistry.namespace at it",
                          field="providers[kubernetes].deploymentRegistry.namespace")
