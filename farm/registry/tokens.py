"""Bearer tokens of the distribution token protocol, cached per process until they expire.

A token is keyed by (realm, service, repository, identity) and holds the actions it was issued
for; one for `pull,push` also serves `pull`. It is taken again `margin` before `expires_in` ends
(the spec's default is 60 s), and dropped when the registry refuses it (clock skew, revocation).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    actions: frozenset[str]
    expires_at: float             # time.monotonic() clock

    def fresh(self, now: float | None = None) -> bool:
        return (now if now is not None else time.monotonic()) < self.expires_at


def expiry(expires_in: object, now: float | None = None) -> float:
    """When a token given `expires_in` seconds (default 60) should be taken again: 10% before, at most 30 s."""
    try:
        lifetime = float(expires_in) if expires_in is not None else 60.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        lifetime = 60.0
    lifetime = max(lifetime, 0.0)
    return (now if now is not None else time.monotonic()) + lifetime - min(lifetime * 0.1, 30.0)


def identity(username: str, secret: str) -> str:
    """A cache key part for a login that holds no secret (a salted hash)."""
    return hashlib.sha256(f"farm-token-cache\0{username}\0{secret}".encode()).hexdigest()[:24]


def granted_actions(token: str, repository: str) -> frozenset[str] | None:
    """The actions a JWT token grants on `repository` (its `access` claim), None when not a JWT.

    Read without verifying (the registry verifies); used only to explain a refusal."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    if not isinstance(claims, dict) or not isinstance(claims.get("access"), list):
        return None
    out: set[str] = set()
    for item in claims["access"]:
        if isinstance(item, dict) and item.get("type") == "repository" and item.get("name") == repository:
            out.update(str(a) for a in item.get("actions") or [])
    return frozenset(out)


class TokenCache:
    """Thread-safe; shared by every client of the process."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str, str], list[Token]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str, str], actions: frozenset[str]) -> Token | None:
        now = time.monotonic()
        with self._lock:
            tokens = [t for t in self._tokens.get(key, []) if t.fresh(now)]
            self._tokens[key] = tokens
            for token in tokens:
                if actions <= token.actions:
                    return token
        return None

    def put(self, key: tuple[str, str, str, str], token: Token) -> None:
        with self._lock:
            kept = [t for t in self._tokens.get(key, []) if t.fresh() and not t.actions <= token.actions]
            self._tokens[key] = [token, *kept]

    def drop(self, key: tuple[str, str, str, str], token: Token) -> None:
        with self._lock:
            self._tokens[key] = [t for t in self._tokens.get(key, []) if t is not token]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKENS = TokenCache()
