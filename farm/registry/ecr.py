"""Amazon ECR, natively with boto3: the `ecr-login` credential helper, repositories created on first
use, and the "immutable tag" push error.

Credentials come from boto3's own chain (environment keys, shared config and profiles, IRSA's
web-identity token through STS, an instance or task role), so a builder pod whose ServiceAccount
carries `eks.amazonaws.com/role-arn` needs nothing else. Endpoints follow boto3's settings
(`AWS_ENDPOINT_URL_ECR`, `AWS_ENDPOINT_URL_STS`), which is how the tests reach a local moto server.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from farm.errors import RegistryAuthError, RegistryError

# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn] (and the partitions' other domains)
ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\."
                      r"(?:amazonaws\.com(?:\.cn)?|on\.aws|sc2s\.sgov\.gov|c2s\.ic\.gov)$")
# What ECR answers (HTTP 400, TAG_INVALID) to a manifest PUT on a tag of an IMMUTABLE repository.
_IMMUTABLE = re.compile(r"TAG_INVALID|ImageTagAlreadyExists|cannot be overwritten because the repository is "
                        r"immutable", re.IGNORECASE)
_REFRESH_MARGIN = 300.0     # an ECR token lives 12 h; take a new one 5 minutes before it ends


@dataclass(frozen=True)
class EcrHost:
    account: str | None         # None: not an ECR host name (a proxy, a test registry): no registryIds
    region: str | None          # None: boto3's default region (AWS_REGION, the profile)


def parse_ecr_host(host: str) -> EcrHost | None:
    match = ECR_HOST.match(host.split(":")[0].lower())
    return EcrHost(match["account"], match["region"]) if match else None


def is_ecr(host: str) -> bool:
    return parse_ecr_host(host) is not None


def _client(region: str | None) -> Any:
    import boto3

    try:
        return boto3.session.Session().client("ecr", region_name=region or os.environ.get("AWS_REGION") or None)
    except Exception as exc:  # botocore.exceptions.NoRegionError and friends
        raise RegistryAuthError(f"ecr-login: cannot make an ECR client: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """botocore's message (it names the operation and the error code, never a credential)."""
    return (str(exc) or exc.__class__.__name__).splitlines()[0]


_tokens: dict[tuple[str | None, str | None], tuple[str, str, float]] = {}
_lock = threading.Lock()


def authorization_token(host: str) -> tuple[str, str, float]:
    """(username, password, expires_at epoch) for `host` from ECR GetAuthorizationToken, cached
    until shortly before it expires. Raises RegistryAuthError with boto3's reason when it fails."""
    ecr = parse_ecr_host(host) or EcrHost(None, None)
    key = (ecr.account, ecr.region)
    with _lock:
        cached = _tokens.get(key)
        if cached and cached[2] - _REFRESH_MARGIN > time.time():
            return cached
    client = _client(ecr.region)
    try:
        kwargs = {"registryIds": [ecr.account]} if ecr.account else {}
        data = client.get_authorization_token(**kwargs)["authorizationData"][0]
    except Exception as exc:  # NoCredentialsError, ClientError (AccessDenied), endpoint errors
        raise RegistryAuthError(f"ecr-login for {host}: {_reason(exc)}") from None
    user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    expires = data.get("expiresAt")
    expires_at = expires.timestamp() if expires is not None else time.time() + 12 * 3600
    token = (user, password, expires_at)
    with _lock:
        _tokens[key] = token
    return token


def forget_tokens() -> None:
    """Drop cached tokens (tests; a changed identity)."""
    with _lock:
        _tokens.clear()


def identity_source() -> str:
    """Which link of boto3's chain holds the identity ("env", "assume-role-with-web-identity", "iam-role" …)."""
    import boto3

    try:
        creds = boto3.session.Session().get_credentials()
    except Exception as exc:
        return f"unresolved ({exc.__class__.__name__})"
    return getattr(creds, "method", None) or "none" if creds is not None else "none"


@dataclass(frozen=True)
class RepositoryState:
    repository: str
    created: bool
    mutability: str             # MUTABLE | IMMUTABLE | IMMUTABLE_WITH_EXCLUSION …


def ensure_repository(host: str, repository: str, *, create: bool = True) -> RepositoryState | None:
    """The ECR repository `repository` of `host`; created with MUTABLE tags when missing and `create`.
    None when it is missing and not created."""
    ecr = parse_ecr_host(host) or EcrHost(None, None)
    client = _client(ecr.region)
    ids = {"registryId": ecr.account} if ecr.account else {}
    try:
        found = client.describe_repositories(repositoryNames=[repository], **ids)["repositories"][0]
        return RepositoryState(repository, False, str(found.get("imageTagMutability", "MUTABLE")))
    except client.exceptions.RepositoryNotFoundException:
        pass
    except Exception as exc:
        raise RegistryError(f"ECR {host}: cannot look up repository {repository}: {_reason(exc)}") from None
    if not create:
        return None
    try:
        made = client.create_repository(repositoryName=repository, imageTagMutability="MUTABLE", **ids)
    except client.exceptions.RepositoryAlreadyExistsException:   # created meanwhile by another build
        return RepositoryState(repository, False, "MUTABLE")
    except Exception as exc:
        raise RegistryAuthError(f"ECR {host}: cannot create repository {repository} (ecr:CreateRepository): "
                                f"{_reason(exc)}") from None
    return RepositoryState(repository, True, str(made["repository"].get("imageTagMutability", "MUTABLE")))


def is_immutable_tag_error(status: int, body: str) -> bool:
    """ECR's answer to a push onto an existing tag of an IMMUTABLE repository (also in builder output)."""
    return status in (400, 0) and bool(_IMMUTABLE.search(body))


def immutable_refusal(lines: Sequence[str]) -> bool:
    """A builder's output says its push was refused as an immutable tag."""
    return any(_IMMUTABLE.search(line) for line in lines)


def refused_but_same(lines: Sequence[str], served: str | None) -> bool:
    """A builder's push refused as an immutable tag, where the tag already names the very manifest
    the builder made (its output names that digest): the build's result is there, so it succeeded
    (GARDEN-SPEC §4.3). A tag holding other content stays a failure."""
    return served is not None and immutable_refusal(lines) and any(served in line for line in lines)
