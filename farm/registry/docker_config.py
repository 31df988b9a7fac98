"""A docker `config.json` as data: `auths` entries, `credHelpers`, `credsStore` (read, merged, written).

Hosts are normalised the way docker looks them up (`https://index.docker.io/v1/` is `docker.io`,
a scheme or `/v1/` path is dropped), so one registry has one entry whatever spelling wrote it.
Passwords and identity tokens are kept out of every repr; `to_json()` is the only way out.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farm.errors import ConfigError

DOCKER_HUB = "docker.io"
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


def normalise_host(key: str) -> str:
    """`https://index.docker.io/v1/` -> `docker.io`; `http://h:5000/v2/` -> `h:5000`."""
    host = key.strip()
    for scheme in ("https://", "http://"):
        if host.startswith(scheme):
            host = host[len(scheme):]
    host = host.split("/", 1)[0].lower()
    return DOCKER_HUB if host in _HUB_ALIASES else host


@dataclass(frozen=True)
class AuthEntry:
    """One `auths` entry: a login, or an identity (refresh) token for the registry's OAuth2 service."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    def to_json(self) -> dict[str, str]:
        if self.identity_token:
            out = {"identitytoken": self.identity_token}
            if self.username:
                out["username"] = self.username
            return out
        return {"auth": base64.b64encode(f"{self.username}:{self.password}".encode()).decode()}


@dataclass(frozen=True)
class DockerConfig:
    """The credential part of a docker config; everything else in the file is left out."""

    auths: Mapping[str, AuthEntry] = field(default_factory=dict)
    cred_helpers: Mapping[str, str] = field(default_factory=dict)
    creds_store: str | None = None
    origin: str = ""            # where it was read from, for messages ("" when built in memory)

    @classmethod
    def load(cls, directory: Path) -> DockerConfig:
        """`<directory>/config.json` (DOCKER_CONFIG), or an empty config when there is none."""
        path = directory / "config.json"
        if not path.is_file():
            return cls(origin=str(path))
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read docker config: {exc.__class__.__name__}", file=str(path)) from None
        return cls.from_json(data, origin=str(path))

    @classmethod
    def from_json(cls, data: Any, origin: str = "") -> DockerConfig:
        """Parse config.json content; a malformed entry names its key, never its value."""
        if not isinstance(data, dict):
            raise ConfigError("a docker config must be a JSON object", file=origin or None)
        auths: dict[str, AuthEntry] = {}
        raw_auths = data.get("auths") or {}
        if not isinstance(raw_auths, dict):
            raise ConfigError("'auths' must be an object", file=origin or None, field="auths")
        for key, raw in raw_auths.items():
            auths[normalise_host(key)] = _entry(key, raw, origin)
        helpers = data.get("credHelpers") or {}
        if not isinstance(helpers, dict) or not all(isinstance(v, str) for v in helpers.values()):
            raise ConfigError("'credHelpers' must map registry hosts to helper names", file=origin or None,
                              field="credHelpers")
        store = data.get("credsStore")
        return cls(auths=auths, cred_helpers={normalise_host(k): v for k, v in helpers.items()},
                   creds_store=store if isinstance(store, str) and store else None, origin=origin)

    def entry(self, host: str) -> AuthEntry | None:
        return self.auths.get(normalise_host(host))

    def helper(self, host: str) -> str | None:
        return self.cred_helpers.get(normalise_host(host))

    def merged(self, other: DockerConfig) -> DockerConfig:
        """This config with `other`'s entries on top (per host, `other` wins); `other`'s store wins."""
        return DockerConfig(auths={**self.auths, **other.auths},
                            cred_helpers={**self.cred_helpers, **other.cred_helpers},
                            creds_store=other.creds_store or self.creds_store,
                            origin=" + ".join(o for o in (self.origin, other.origin) if o))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"auths": {host: e.to_json() for host, e in self.auths.items()}}
        if self.cred_helpers:
            out["credHelpers"] = dict(self.cred_helpers)
        if self.creds_store:
            out["credsStore"] = self.creds_store
        return out


def _entry(key: str, raw: Any, origin: str) -> AuthEntry:
    where = f"auths.{key}"
    if not isinstance(raw, dict):
        raise ConfigError("an auths entry must be an object", file=origin or None, field=where)
    if raw.get("identitytoken"):
        return AuthEntry(username=str(raw.get("username", "")), identity_token=str(raw["identitytoken"]))
    if raw.get("auth"):
        try:
            user, sep, password = base64.b64decode(str(raw["auth"]), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise ConfigError("the auth value is not base64 of user:password", file=origin or None,
                              field=f"{where}.auth") from None
        return AuthEntry(username=user, password=password)
    if raw.get("username"):
        return AuthEntry(username=str(raw["username"]), password=str(raw.get("password", "")))
    return AuthEntry()          # an empty entry: docker's marker that a credsStore holds the login


def write_private(path: Path, data: bytes) -> None:
    """Write a credential file readable by its owner only (0600), in one step, never world-readable."""
    tmp = path.with_name(path.name + ".tmp")
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        out.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
