"""Google Container Registry and Artifact Registry credentials, natively with google-auth.

The `gcr` / `gcloud` credential helpers become application default credentials (ADC): a
service-account key file in GOOGLE_APPLICATION_CREDENTIALS, gcloud's user login, or the metadata
server (GKE workload identity, a VM's service account; GCE_METADATA_HOST points elsewhere). The
registry is then given `oauth2accesstoken` and an access token. A JSON key pasted into an `auths`
entry stays `_json_key` (the registries take it as it is). HTTP goes through httpx, not `requests`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
from google.auth import exceptions as google_exceptions
from google.auth import transport as google_transport

from farm.errors import RegistryAuthError

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
ACCESS_TOKEN_USER = "oauth2accesstoken"
JSON_KEY_USER = "_json_key"
GOOGLE_HOST = re.compile(r"^(?:[a-z0-9-]+\.)?gcr\.io$|^(?:[a-z0-9-]+-)?docker\.pkg\.dev$")
GAR_HOST = re.compile(r"^(?P<location>[a-z0-9-]+)-docker\.pkg\.dev$")
_REFRESH_MARGIN = 60.0


def is_google(host: str) -> bool:
    return bool(GOOGLE_HOST.match(host.split(":")[0].lower()))


def gar_location(host: str) -> str | None:
    """`europe-west1-docker.pkg.dev` -> `europe-west1`; None for other hosts."""
    match = GAR_HOST.match(host.split(":")[0].lower())
    return match["location"] if match else None


class _Response(google_transport.Response):
    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp

    @property
    def status(self) -> int:
        return self._resp.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._resp.headers

    @property
    def data(self) -> bytes:
        return self._resp.content


class HttpxRequest(google_transport.Request):
    """google-auth's transport interface (`google.auth.transport.Request`) over httpx."""

    def __init__(self, timeout: float = 30.0) -> None:
        self._timeout = timeout

    def __call__(self, url: str, method: str = "GET", body: bytes | None = None,
                 headers: Mapping[str, str] | None = None, timeout: float | None = None,
                 **kwargs: Any) -> _Response:
        try:
            with httpx.Client(timeout=timeout or self._timeout) as client:
                return _Response(client.request(method, url, content=body, headers=dict(headers or {})))
        except httpx.HTTPError as exc:
            raise google_exceptions.TransportError(  # type: ignore[no-untyped-call]
                f"{exc.__class__.__name__} for {method} {url}") from None


_cache: dict[str, tuple[Any, str]] = {}
_lock = threading.Lock()


def _adc() -> tuple[Any, str]:
    """The application default credentials and what they are, found once per process."""
    with _lock:
        if "adc" in _cache:
            return _cache["adc"]
    import google.auth
    from google.auth import exceptions

    try:
        creds, _project = google.auth.default(scopes=list(SCOPES), request=HttpxRequest(timeout=5.0))
    except exceptions.GoogleAuthError as exc:
        raise RegistryAuthError(f"gcloud: no application default credentials: {_reason(exc)}") from None
    found = (creds, describe(creds))
    with _lock:
        _cache["adc"] = found
    return found


def describe(creds: Any) -> str:
    """What kind of Google identity this is, for `farm registry check` (never a secret)."""
    kind = type(creds).__module__
    email = getattr(creds, "service_account_email", None)
    if kind.startswith("google.auth.compute_engine"):
        return "metadata server (workload identity / VM service account)"
    if kind.startswith("google.oauth2.service_account"):
        return f"service-account key {email}" if email else "service-account key"
    if kind.startswith("google.auth.external_account") or kind.startswith("google.auth.identity_pool"):
        return "workload identity federation"
    if kind.startswith("google.auth.impersonated"):
        return "impersonated service account"
    return "gcloud user credentials"


def is_key_file(creds: Any) -> bool:
    return type(creds).__module__.startswith("google.oauth2.service_account")


def access_token(creds: Any | None = None) -> tuple[str, float, str]:
    """(access token, expires_at epoch, description) from ADC or from `creds`, refreshed when due."""
    if creds is None:
        creds, what = _adc()
    else:
        what = describe(creds)
    from google.auth import exceptions

    with _lock:
        expiry = getattr(creds, "expiry", None)
        fresh = creds.token and expiry is not None and expiry.timestamp() - _REFRESH_MARGIN > _now_naive()
        if not fresh:
            try:
                creds.refresh(HttpxRequest())
            except exceptions.GoogleAuthError as exc:
                raise RegistryAuthError(f"gcloud ({what}): cannot get an access token: {_reason(exc)}") from None
        expiry = getattr(creds, "expiry", None)
        return str(creds.token), (expiry.timestamp() if expiry is not None else time.time() + 3600), what


def _now_naive() -> float:
    """google-auth's expiry is a naive UTC datetime; `.timestamp()` reads it as local time, so compare alike."""
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).timestamp()


def key_credentials(key_json: str) -> Any:
    """Service-account credentials from a JSON key (the `_json_key` password), for Google APIs."""
    from google.oauth2 import service_account

    try:
        info = json.loads(key_json)
        return service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=list(SCOPES))
    except (ValueError, KeyError) as exc:
        raise RegistryAuthError(f"the _json_key password is not a service-account JSON key "
                                f"({exc.__class__.__name__})") from None


def forget() -> None:
    """Drop the cached ADC (tests; a changed environment)."""
    with _lock:
        _cache.clear()


def _reason(exc: BaseException) -> str:
    text = (str(exc) or exc.__class__.__name__).splitlines()[0]
    return text[:300]
