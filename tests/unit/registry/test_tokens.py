"""Token lifetimes and the token cache (pure)."""

from __future__ import annotations

import base64
import json

from farm.registry.tokens import Token, TokenCache, expiry, granted_actions


def test_expiry_takes_a_token_again_before_it_ends() -> None:
    assert expiry(300, now=0) == 270          # 10 %
    assert expiry(3600, now=0) == 3570        # at most 30 s early
    assert expiry(None, now=0) == 54          # the spec's default of 60 s
    assert expiry("junk", now=0) == 54


def test_a_push_token_serves_pulls_and_expired_tokens_are_gone() -> None:
    cache = TokenCache()
    key = ("realm", "svc", "repo", "who")
    push = Token("t1", frozenset({"pull", "push"}), expires_at=float("inf"))
    cache.put(key, push)
    assert cache.get(key, frozenset({"pull"})) is push
    cache.put(key, Token("old", frozenset({"pull"}), expires_at=0.0))
    assert cache.get(key, frozenset({"pull"})) is push
    cache.drop(key, push)
    assert cache.get(key, frozenset({"pull"})) is None
    assert "t1" not in repr(push)


def test_granted_actions_read_from_a_jwt() -> None:
    claims = {"access": [{"type": "repository", "name": "a/b", "actions": ["pull"]}]}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert granted_actions(f"h.{body}.s", "a/b") == frozenset({"pull"})
    assert granted_actions(f"h.{body}.s", "other") == frozenset()
    assert granted_actions("opaque-token", "a/b") is None
