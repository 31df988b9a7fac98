"""The OCI distribution seam: manifests by HTTP, with basic or bearer auth.

Everything the farm asks a registry goes through `RegistryClient`; errors come back as
RegistryError / RegistryAuthError with the registry and repository named, never a credential.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import httpx

from farm.errors import RegistryAuthError, RegistryError
from farm.registry.credentials import Credentials

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES)


@dataclass(frozen=True)
class ManifestInfo:
    digest: str
    media_type: str
    size: int


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', params))


class RegistryClient:
    """A client for one registry host. `insecure` means plain HTTP (Garden's `deploymentRegistry.insecure`)."""

    def __init__(self, host: str, credentials: Credentials | None = None, *, insecure: bool = False,
                 timeout: float = 30.0) -> None:
        self.host = host
        self.base = f"{'http' if insecure else 'https'}://{host}"
        self._credentials = credentials
        self._http = httpx.Client(timeout=timeout, verify=not insecure, follow_redirects=True)
        self._auth_header: dict[str, str] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- manifests -----------------------------------------------------------------------------

    def head_manifest(self, repository: str, ref: str) -> ManifestInfo | None:
        """The manifest's digest and type, or None when the registry has no such tag or digest."""
        resp = self._request("HEAD", f"/v2/{repository}/manifests/{ref}", repository, "pull",
                             headers={"Accept": ACCEPT})
        if resp.status_code == 404:
            return None
        self._check(resp, repository)
        return ManifestInfo(
            digest=resp.headers.get("Docker-Content-Digest", ""),
            media_type=resp.headers.get("Content-Type", "").split(";")[0],
            size=int(resp.headers.get("Content-Length", "0") or 0),
        )

    def get_manifest(self, repository: str, ref: str) -> tuple[ManifestInfo, bytes] | None:
        resp = self._request("GET", f"/v2/{repository}/manifests/{ref}", repository, "pull",
                             headers={"Accept": ACCEPT})
        if resp.status_code == 404:
            return None
        self._check(resp, repository)
        info = ManifestInfo(resp.headers.get("Docker-Content-Digest", ""),
                            resp.headers.get("Content-Type", "").split(";")[0], len(resp.content))
        return info, resp.content

    def put_manifest(self, repository: str, ref: str, body: bytes, media_type: str) -> str:
        """Push a manifest under a tag or digest; returns the digest the registry computed."""
        resp = self._request("PUT", f"/v2/{repository}/manifests/{ref}", repository, "pull,push",
                             headers={"Content-Type": media_type}, content=body)
        self._check(resp, repository)
        return str(resp.headers.get("Docker-Content-Digest", ""))

    # -- transport and auth --------------------------------------------------------------------

    def _request(self, method: str, path: str, repository: str, actions: str, **kw: object) -> httpx.Response:
        headers = dict(kw.pop("headers", {}) or {})  # type: ignore[call-overload]
        try:
            resp = self._http.request(method, self.base + path, headers={**headers, **self._auth_header}, **kw)  # type: ignore[arg-type]
            if resp.status_code == 401 and "WWW-Authenticate" in resp.headers:
                self._authenticate(resp.headers["WWW-Authenticate"], repository, actions)
                resp = self._http.request(method, self.base + path, headers={**headers, **self._auth_header}, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry {self.host} is unreachable: {_reason(exc)}", retryable=True) from exc
        return resp

    def _authenticate(self, challenge: str, repository: str, actions: str) -> None:
        scheme, params = _parse_challenge(challenge)
        creds = self._credentials
        if scheme == "basic":
            if creds is None:
                raise RegistryAuthError(f"registry {self.host} needs credentials and none were found "
                                        "in the docker config (DOCKER_CONFIG)")
            self._auth_header = {"Authorization": "Basic " + _basic(creds)}
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryAuthError(f"registry {self.host} asked for unsupported auth '{scheme}'")
        query = {"scope": params.get("scope") or f"repository:{repository}:{actions}"}
        if "service" in params:
            query["service"] = params["service"]
        headers = {"Authorization": "Basic " + _basic(creds)} if creds else {}
        try:
            resp = self._http.get(params["realm"], params=query, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError(f"token service of {self.host} is unreachable: {_reason(exc)}",
                                retryable=True) from exc
        if resp.status_code in (401, 403):
            raise RegistryAuthError(f"registry {self.host} refused the credentials (HTTP {resp.status_code})")
        if resp.status_code != 200:
            raise RegistryError(f"token service of {self.host} answered HTTP {resp.status_code}",
                                retryable=resp.status_code >= 500)
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"token service of {self.host} returned no token")
        self._auth_header = {"Authorization": f"Bearer {token}"}

    def _check(self, resp: httpx.Response, repository: str) -> None:
        if resp.status_code in (401, 403):
            hint = "" if self._credentials else " (no credentials for it in the docker config)"
            raise RegistryAuthError(
                f"registry {self.host} refused access to {repository} (HTTP {resp.status_code}){hint}")
        if resp.status_code >= 300:
            raise RegistryError(f"registry {self.host} answered HTTP {resp.status_code} for {repository}",
                                retryable=resp.status_code >= 500)


def _basic(creds: Credentials | None) -> str:
    assert creds is not None
    return base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or exc.__class__.__name__
    return text.splitlines()[0]
