"""The OCI distribution seam: manifests and upload sessions by HTTP, with basic or bearer auth.

Everything the farm asks a registry goes through `RegistryClient`; errors come back as
RegistryError / RegistryAuthError with the registry and repository named, never a credential.

Bearer auth follows the distribution token protocol: on a 401 challenge the client asks the
realm for a token scoped to what the request needs (`repository:<repo>:pull` or `pull,push`),
with basic credentials or, for an identity token, an OAuth2 refresh-token grant. Tokens are cached
per process until they expire (`farm.registry.tokens`); a refused token is dropped and taken again
once. Once a registry has challenged, later requests carry their token without the extra 401.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# httpx's __init__ imports its command-line client (click, rich, pygments: ~70 modules) whenever those
# happen to be installed; the farm never runs it. A None entry makes that one import fail, and httpx
# falls back to a stub `main`: every `farm` command that talks to a registry starts ~40 ms sooner.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
import httpx  # noqa: E402

from farm.errors import RegistryAuthError, RegistryError
from farm.registry import ecr
from farm.registry.credentials import Credentials
from farm.registry.tokens import TOKENS, Token, expiry, granted_actions, identity

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join(MANIFEST_TYPES)
PULL = frozenset({"pull"})
PUSH = frozenset({"pull", "push"})
DELETE = frozenset({"pull", "push", "delete"})
API_HOSTS = {"docker.io": "registry-1.docker.io"}   # where Docker Hub's v2 API answers


@dataclass(frozen=True)
class ManifestInfo:
    digest: str
    media_type: str
    size: int


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, params = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', params))


def _verb(actions: frozenset[str]) -> str:
    return "delete from" if "delete" in actions else "push to" if "push" in actions else "pull from"


class RegistryClient:
    """A client for one registry host. `insecure` means plain HTTP (Garden's `deploymentRegistry.insecure`).

    `source` says where the credentials came from (`Resolved.detail`), for error messages."""

    def __init__(self, host: str, credentials: Credentials | None = None, *, insecure: bool = False,
                 timeout: float = 30.0, source: str = "") -> None:
        self.host = host
        self.base = f"{'http' if insecure else 'https'}://{API_HOSTS.get(host, host)}"
        self._credentials = credentials
        self._source = source
        self._http = httpx.Client(timeout=timeout, verify=not insecure, follow_redirects=True)
        self._challenge: tuple[str, dict[str, str]] | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- manifests -----------------------------------------------------------------------------

    def head_manifest(self, repository: str, ref: str) -> ManifestInfo | None:
        """The manifest's digest and type, or None when the registry has no such tag or digest."""
        resp = self._request("HEAD", f"/v2/{repository}/manifests/{ref}", repository, PULL,
                             headers={"Accept": ACCEPT})
        if resp.status_code == 404:
            return None
        self._check(resp, repository, PULL)
        return ManifestInfo(
            digest=resp.headers.get("Docker-Content-Digest", ""),
            media_type=resp.headers.get("Content-Type", "").split(";")[0],
            size=int(resp.headers.get("Content-Length", "0") or 0),
        )

    def get_manifest(self, repository: str, ref: str) -> tuple[ManifestInfo, bytes] | None:
        resp = self._request("GET", f"/v2/{repository}/manifests/{ref}", repository, PULL,
                             headers={"Accept": ACCEPT})
        if resp.status_code == 404:
            return None
        self._check(resp, repository, PULL)
        info = ManifestInfo(resp.headers.get("Docker-Content-Digest", ""),
                            resp.headers.get("Content-Type", "").split(";")[0], len(resp.content))
        return info, resp.content

    def put_manifest(self, repository: str, ref: str, body: bytes, media_type: str) -> str:
        """Push a manifest under a tag or digest; returns the digest the registry computed.

        On ECR, a tag of an IMMUTABLE repository that already names these exact bytes is success."""
        resp = self._request("PUT", f"/v2/{repository}/manifests/{ref}", repository, PUSH,
                             headers={"Content-Type": media_type}, content=body)
        if ecr.is_immutable_tag_error(resp.status_code, resp.text):
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            held = self.head_manifest(repository, ref)
            if held is not None and held.digest == digest:
                return digest
            raise RegistryError(f"registry {self.host}: tag {ref} of {repository} is immutable and already "
                                f"names {held.digest if held else 'another manifest'}, not {digest}")
        self._check(resp, repository, PUSH)
        return str(resp.headers.get("Docker-Content-Digest", ""))

    def get_blob(self, repository: str, digest: str, limit: int = 4 * 1024 * 1024) -> bytes:
        """A small blob (an image config), refused above `limit` bytes."""
        resp = self._request("GET", f"/v2/{repository}/blobs/{digest}", repository, PULL)
        self._check(resp, repository, PULL)
        if len(resp.content) > limit:
            raise RegistryError(f"registry {self.host}: blob {digest} of {repository} is over {limit} bytes")
        return resp.content

    # -- upload sessions (the push check) ------------------------------------------------------

    def start_upload(self, repository: str) -> str:
        """Open a blob upload session (what a push does first); returns its location."""
        resp = self._request("POST", f"/v2/{repository}/blobs/uploads/", repository, PUSH)
        self._check(resp, repository, PUSH)
        if resp.status_code != 202 or "Location" not in resp.headers:
            raise RegistryError(f"registry {self.host} answered HTTP {resp.status_code} to an upload of "
                                f"{repository}, without a session")
        location = resp.headers["Location"]
        return location if location.startswith("http") else self.base + location

    def push_blob(self, repository: str, data: bytes) -> str:
        """Upload a blob in one request (monolithic upload); returns its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        location = self.start_upload(repository)
        url = httpx.URL(location).copy_merge_params({"digest": digest})
        resp = self._request("PUT", str(url), repository, PUSH,
                             headers={"Content-Type": "application/octet-stream"}, content=data)
        self._check(resp, repository, PUSH)
        return digest

    def cancel_upload(self, repository: str, location: str) -> None:
        """Cancel an upload session, best effort: Distribution wants the `delete` action for it, and
        a session left open expires by itself (uploadpurging), so a refusal is not an error."""
        _, auth = self._auth_for(repository, PUSH)
        try:
            self._http.request("DELETE", location, headers=auth)
        except httpx.HTTPError:
            pass

    # -- blobs, tags and deletes (publish, gc) -------------------------------------------------

    def head_blob(self, repository: str, digest: str) -> int | None:
        """The blob's size, or None when the repository does not hold it."""
        resp = self._request("HEAD", f"/v2/{repository}/blobs/{digest}", repository, PULL)
        if resp.status_code == 404:
            return None
        self._check(resp, repository, PULL)
        return int(resp.headers.get("Content-Length", "0") or 0)

    def mount_blob(self, repository: str, digest: str, source: str) -> str | None:
        """Ask the registry to mount a blob of `source` (same registry) into `repository`.

        None when it did (201); else the upload session it opened instead (202), for a streamed copy."""
        resp = self._request("POST", f"/v2/{repository}/blobs/uploads/?mount={digest}&from={source}",
                             repository, PUSH)
        self._check(resp, repository, PUSH)
        if resp.status_code == 201:
            return None
        location = str(resp.headers.get("Location", ""))
        if resp.status_code != 202 or not location:
            raise RegistryError(f"registry {self.host} answered HTTP {resp.status_code} to a mount into "
                                f"{repository}, without a session")
        return location if location.startswith("http") else self.base + location

    @contextmanager
    def open_blob(self, repository: str, digest: str) -> Iterator[httpx.Response]:
        """A streamed GET of a blob (redirects followed; auth is not sent to another host)."""
        self.head_blob(repository, digest)           # authenticates for this repository first
        _, auth = self._auth_for(repository, PULL)
        try:
            with self._http.stream("GET", f"{self.base}/v2/{repository}/blobs/{digest}", headers=auth) as resp:
                if resp.status_code >= 300:
                    resp.read()
                    self._check(resp, repository, PULL)
                yield resp
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry {self.host} is unreachable: {_reason(exc)}", retryable=True) from exc

    def upload_stream(self, repository: str, digest: str, size: int, chunks: Iterable[bytes],
                      location: str | None = None) -> None:
        """Upload a blob from a stream of chunks (one PATCH of known length, then the closing PUT):
        nothing is held in memory. `location`: an upload session already open (from `mount_blob`)."""
        location = location or self.start_upload(repository)
        _, auth = self._auth_for(repository, PUSH)
        try:
            resp = self._http.request("PATCH", location, content=chunks, headers={
                **auth, "Content-Type": "application/octet-stream", "Content-Length": str(size)})
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry {self.host} is unreachable: {_reason(exc)}", retryable=True) from exc
        self._check(resp, repository, PUSH)
        after = resp.headers.get("Location", location)
        after = after if after.startswith("http") else self.base + after
        url = httpx.URL(after).copy_merge_params({"digest": digest})
        resp = self._request("PUT", str(url), repository, PUSH, headers={"Content-Length": "0"})
        self._check(resp, repository, PUSH)

    def list_tags(self, repository: str) -> list[str]:
        """Every tag of a repository ([] when the repository is unknown), following `Link` pages."""
        out: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list?n=1000"
        while path:
            resp = self._request("GET", path, repository, PULL)
            if resp.status_code == 404:
                return out
            self._check(resp, repository, PULL)
            out += resp.json().get("tags") or []
            link = re.match(r'<([^>]+)>', resp.headers.get("Link", ""))
            path = link.group(1) if link else None
        return out

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete a manifest by digest (and so every tag naming it); False when it was already gone."""
        resp = self._request("DELETE", f"/v2/{repository}/manifests/{digest}", repository, DELETE)
        if resp.status_code == 404:
            return False
        self._check(resp, repository, DELETE)
        return True

    # -- transport and auth --------------------------------------------------------------------

    def _request(self, method: str, path: str, repository: str, actions: frozenset[str],
                 headers: dict[str, str] | None = None, content: bytes | None = None) -> httpx.Response:
        url = path if path.startswith("http") else self.base + path
        try:
            sent, auth = self._auth_for(repository, actions)
            resp = self._http.request(method, url, headers={**(headers or {}), **auth}, content=content)
            fetched = 0
            # A challenge: authenticate. A token refused as invalid (expired by the registry's clock,
            # a rotated key) is dropped and taken once more; any other refusal is final.
            while resp.status_code == 401 and "WWW-Authenticate" in resp.headers and fetched < 2:
                self._challenge = _parse_challenge(resp.headers["WWW-Authenticate"])
                if sent is not None:
                    TOKENS.drop(self._token_key(repository), sent)
                if fetched and self._challenge[1].get("error") != "invalid_token":
                    break
                sent, auth = self._authenticate(repository, actions)
                fetched += 1
                resp = self._http.request(method, url, headers={**(headers or {}), **auth}, content=content)
            if resp.status_code == 401 and fetched:
                self._refused(resp, repository, actions, sent)
        except httpx.HTTPError as exc:
            raise RegistryError(f"registry {self.host} is unreachable: {_reason(exc)}", retryable=True) from exc
        return resp

    def _auth_for(self, repository: str, actions: frozenset[str]) -> tuple[Token | None, dict[str, str]]:
        """What to send: before any challenge, a login's basic credentials (one round trip instead of
        a 401 and a retry; a bearer registry ignores them and challenges as before); after one, basic
        once asked for it, a cached token for bearer."""
        if self._challenge is None:
            creds = self._credentials
            if creds is not None and creds.username and creds.password and not creds.identity_token:
                return None, {"Authorization": "Basic " + _basic(creds)}
            return None, {}
        scheme, _ = self._challenge
        if scheme == "basic" and self._credentials is not None:
            return None, {"Authorization": "Basic " + _basic(self._credentials)}
        if scheme == "bearer":
            token = TOKENS.get(self._token_key(repository), actions)
            if token is not None:
                return token, {"Authorization": f"Bearer {token.value}"}
        return None, {}

    def _token_key(self, repository: str) -> tuple[str, str, str, str]:
        _, params = self._challenge or ("", {})
        creds = self._credentials
        who = identity(creds.username, creds.password + creds.identity_token) if creds else "anonymous"
        return params.get("realm", ""), params.get("service", ""), repository, who

    def _authenticate(self, repository: str, actions: frozenset[str]) -> tuple[Token | None, dict[str, str]]:
        assert self._challenge is not None
        scheme, params = self._challenge
        creds = self._credentials
        if scheme == "basic":
            if creds is None:
                raise RegistryAuthError(f"cannot {_verb(actions)} {self.host}/{repository}: the registry refused "
                                        f"anonymous access (it needs credentials){self._where()}")
            return None, {"Authorization": "Basic " + _basic(creds)}
        if scheme != "bearer" or "realm" not in params:
            raise RegistryAuthError(f"registry {self.host} asked for unsupported auth '{scheme}'")
        token = TOKENS.get(self._token_key(repository), actions)   # another client of this login took one
        if token is not None:
            return token, {"Authorization": f"Bearer {token.value}"}
        token = self._fetch_token(params, repository, actions)
        TOKENS.put(self._token_key(repository), token)
        return token, {"Authorization": f"Bearer {token.value}"}

    def _fetch_token(self, params: dict[str, str], repository: str, actions: frozenset[str]) -> Token:
        scope = f"repository:{repository}:{','.join(sorted(actions, key=['pull', 'push', 'delete'].index))}"
        creds = self._credentials
        try:
            if creds is not None and creds.identity_token:
                form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token,
                        "client_id": "farm", "scope": scope}
                if "service" in params:
                    form["service"] = params["service"]
                resp = self._http.post(params["realm"], data=form)
            else:
                query = {"scope": scope, **({"service": params["service"]} if "service" in params else {})}
                headers = {"Authorization": "Basic " + _basic(creds)} if creds else {}
                resp = self._http.get(params["realm"], params=query, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryError(f"token service of {self.host} is unreachable: {_reason(exc)}",
                                retryable=True) from exc
        if resp.status_code in (401, 403):
            who = f"the credentials of '{creds.username}'" if creds and creds.username else \
                "the identity token" if creds else "anonymous access"
            raise RegistryAuthError(f"registry {self.host} refused {who} (HTTP {resp.status_code} from its "
                                    f"token service){self._where()}")
        if resp.status_code != 200:
            raise RegistryError(f"token service of {self.host} answered HTTP {resp.status_code}",
                                retryable=resp.status_code >= 500)
        try:
            body: dict[str, Any] = resp.json()
        except ValueError:
            raise RegistryError(f"token service of {self.host} answered something other than JSON") from None
        value = body.get("token") or body.get("access_token")
        if not value:
            raise RegistryError(f"token service of {self.host} returned no token")
        return Token(str(value), actions, expiry(body.get("expires_in")))

    def _refused(self, resp: httpx.Response, repository: str, actions: frozenset[str],
                 token: Token | None) -> None:
        """A 401 on a fresh token or login: what the account may not do."""
        _, params = _parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        if token is not None:
            granted = granted_actions(token.value, repository)
            got = f" (its token grants {','.join(sorted(granted)) or 'nothing'} there)" if granted is not None \
                else ""
            if params.get("error") == "insufficient_scope" or granted is not None:
                raise RegistryAuthError(f"cannot {_verb(actions)} {self.host}/{repository}: the registry's token "
                                        f"service did not grant {','.join(sorted(actions))}{got}{self._where()}")
        who = f"'{self._credentials.username}'" if self._credentials and self._credentials.username else \
            "anonymous access"
        raise RegistryAuthError(f"cannot {_verb(actions)} {self.host}/{repository}: the registry refused "
                                f"{who} (HTTP 401){self._where()}")

    def _where(self) -> str:
        return f" [credentials: {self._source}]" if self._source else \
            "" if self._credentials else " [no credentials for it in the docker config]"

    def _check(self, resp: httpx.Response, repository: str, actions: frozenset[str] = PULL) -> None:
        if resp.status_code in (401, 403):
            raise RegistryAuthError(f"cannot {_verb(actions)} {self.host}/{repository}: the registry refused "
                                    f"access (HTTP {resp.status_code}){self._where()}")
        if resp.status_code >= 300:
            raise RegistryError(f"registry {self.host} answered HTTP {resp.status_code} for {repository}"
                                f"{_error_code(resp)}", retryable=resp.status_code >= 500)


def _error_code(resp: httpx.Response) -> str:
    """The distribution error code (`NAME_UNKNOWN`, `DENIED` …) of an error body, when there is one."""
    try:
        errors = resp.json().get("errors") or []
        return f" ({errors[0]['code']})" if errors and "code" in errors[0] else ""
    except (ValueError, AttributeError, KeyError, TypeError):
        return ""


def _basic(creds: Credentials | None) -> str:
    assert creds is not None
    return base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


def _reason(exc: httpx.HTTPError) -> str:
    text = str(exc) or exc.__class__.__name__
    return text.splitlines()[0]
