"""Where the farm's credentials for one registry come from: `credentials_for(host, docker_config)`.

Every caller (the status check, `farm registry check`, the index merge, the worker's digest
check, the per-build docker configs) resolves through this one function, in docker's order:

    1. credHelpers[host]           ecr-login -> boto3 (ECR GetAuthorizationToken)
                                   gcr | gcloud -> google-auth application default credentials
    2. auths[host]                 user/password, an identity token, `_json_key` + a JSON key
    3. credsStore                  ecr-login / gcr for the hosts they serve (other stores: skipped)
    4. the worker's own identity   an ECR host -> boto3's chain; a gcr.io / *-docker.pkg.dev host -> ADC
    5. none                        anonymous

Helpers run natively, never as `docker-credential-*` binaries. Credentials never appear in a
repr, a message or an exception; `Resolved.source` / `.detail` say where they came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from farm.errors import RegistryAuthError
from farm.registry import ecr, gcp
from farm.registry.docker_config import DockerConfig, normalise_host

Source = Literal["auths", "ecr-login", "gcloud", "json-key", "none"]
ECR_HELPERS = ("ecr-login",)
GOOGLE_HELPERS = ("gcr", "gcloud")
NATIVE_HELPERS = ECR_HELPERS + GOOGLE_HELPERS


@dataclass(frozen=True)
class Credentials:
    username: str
    # Kept out of repr so a credential never lands in a log line or a traceback.
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)   # an OAuth2 refresh token (docker `identitytoken`)
    expires_at: float | None = None                       # helper-minted tokens end


@dataclass(frozen=True)
class Resolved:
    """The credentials for one host (None: anonymous) and where they came from."""

    host: str
    credentials: Credentials | None
    source: Source
    detail: str                     # e.g. "auths entry in /home/ci/.docker/config.json"; never a secret


def load_config(docker_config: Path | DockerConfig) -> DockerConfig:
    return docker_config if isinstance(docker_config, DockerConfig) else DockerConfig.load(docker_config)


def credentials_for(host: str, docker_config: Path | DockerConfig, *, ambient: bool = True) -> Resolved:
    """The credentials for `host`, resolved in docker's order (module docstring). `ambient`: fall back
    to the worker's own AWS / Google identity for ECR and Google hosts without any entry.

    A configured helper that fails raises RegistryAuthError naming the helper and why; a missing
    ambient identity is just "none"."""
    config = load_config(docker_config)
    host = normalise_host(host)
    origin = config.origin or "the docker config"
    skipped = ""
    helper = config.helper(host)
    if helper in NATIVE_HELPERS:
        return _helper(host, helper, f"credHelpers entry in {origin}")
    if helper:
        skipped = f"; credential helper '{helper}' is not run (the farm runs only ecr-login and gcr natively)"
    entry = config.entry(host)
    if entry is not None and (entry.username or entry.identity_token):
        if entry.username == gcp.JSON_KEY_USER:
            return Resolved(host, Credentials(entry.username, entry.password), "json-key",
                            f"_json_key auths entry in {origin}{skipped}")
        kind = "identity token" if entry.identity_token else f"user '{entry.username}'"
        return Resolved(host, Credentials(entry.username, entry.password, entry.identity_token), "auths",
                        f"auths entry in {origin} ({kind}){skipped}")
    store = config.creds_store
    if store in ECR_HELPERS and ecr.is_ecr(host) or store in GOOGLE_HELPERS and gcp.is_google(host):
        assert store is not None
        return _helper(host, store, f"credsStore of {origin}")
    if store:
        skipped += f"; credsStore '{store}' is not read (the farm runs only ecr-login and gcr natively)"
    if ambient and (ecr.is_ecr(host) or gcp.is_google(host)):
        try:
            return _helper(host, "ecr-login" if ecr.is_ecr(host) else "gcloud",
                           f"no entry in {origin}: the farm's own identity")
        except RegistryAuthError as exc:
            return Resolved(host, None, "none", f"no entry in {origin}; {exc}{skipped}")
    return Resolved(host, None, "none", f"no entry in {origin}{skipped}")


def _helper(host: str, helper: str, where: str) -> Resolved:
    if helper in ECR_HELPERS:
        user, password, expires_at = ecr.authorization_token(host)
        return Resolved(host, Credentials(user, password, expires_at=expires_at), "ecr-login",
                        f"ecr-login ({where}; AWS identity: {ecr.identity_source()})")
    token, expires_at, what = gcp.access_token()
    source: Source = "json-key" if what.startswith("service-account key") else "gcloud"
    return Resolved(host, Credentials(gcp.ACCESS_TOKEN_USER, token, expires_at=expires_at), source,
                    f"{helper} ({where}; application default credentials: {what})")


def load_credentials(docker_config_dir: Path, host: str) -> Credentials | None:
    """The credentials for `host` (see `credentials_for`), or None when anonymous."""
    return credentials_for(host, docker_config_dir).credentials
