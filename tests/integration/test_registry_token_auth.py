"""The registry client against a REAL Distribution registry configured for token auth, with the
token service these tests run (Distribution's token protocol, RS256 JWTs the registry verifies):
push, pull, scopes, token expiry and refresh, refused passwords, read-only accounts."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm.errors import RegistryAuthError
from farm.registry import RegistryClient, client_for
from farm.registry.credentials import Credentials
from farm.registry.docker_config import AuthEntry, DockerConfig
from farm.registry.tokens import TOKENS
from tests.integration.registry_services import Account, TokenIssuer, token_registry

pytestmark = pytest.mark.integration

WRITER_PASSWORD = "wr1ter-" + uuid.uuid4().hex
READER_PASSWORD = "r3ader-" + uuid.uuid4().hex
IDENTITY_TOKEN = "idt-" + uuid.uuid4().hex
SECRETS = (WRITER_PASSWORD, READER_PASSWORD, IDENTITY_TOKEN)


@pytest.fixture(scope="module")
def issuer() -> Iterator[TokenIssuer]:
    iss = TokenIssuer(accounts={
        "writer": Account(lambda p: p == WRITER_PASSWORD),
        "reader": Account(lambda p: p == READER_PASSWORD, frozenset({"pull"})),
    }, refresh_tokens={IDENTITY_TOKEN: "writer"})
    yield iss
    iss.stop()


@pytest.fixture(scope="module")
def registry(issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with token_registry(tmp_path_factory.mktemp("token-registry"), issuer) as host:
        yield host


@pytest.fixture(autouse=True)
def fresh_tokens(issuer: TokenIssuer) -> Iterator[None]:
    TOKENS.clear()
    issuer.expires_in, issuer.skew_next = 300, 0
    issuer.issued.clear()
    yield
    TOKENS.clear()


def client(host: str, user: str, password: str) -> RegistryClient:
    return RegistryClient(host, Credentials(user, password), insecure=True, source=f"test login '{user}'")


def push_image(c: RegistryClient, repo: str, tag: str) -> str:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {}, "nonce": uuid.uuid4().hex}).encode()
    config_digest = c.push_blob(repo, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)},
                           "layers": []}).encode()
    digest = c.put_manifest(repo, tag, manifest, "application/vnd.oci.image.manifest.v1+json")
    assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()
    return digest


def test_push_then_pull_with_scoped_tokens(registry: str, issuer: TokenIssuer) -> None:
    repo = f"team/app-{uuid.uuid4().hex[:6]}"
    with client(registry, "writer", WRITER_PASSWORD) as c:
        digest = push_image(c, repo, "v1")
        info = c.head_manifest(repo, "v1")
        assert info is not None and info.digest == digest
        got = c.get_manifest(repo, "v1")
        assert got is not None and got[0].digest == digest
        assert c.head_manifest(repo, "missing") is None
    scopes = [s for _, s in issuer.issued]
    # a push asks for pull,push; the pulls afterwards reuse that token (no pull-only token taken)
    assert scopes == [f"repository:{repo}:pull,push"]


def test_a_reader_can_pull_and_cannot_push(registry: str) -> None:
    repo = f"team/ro-{uuid.uuid4().hex[:6]}"
    with client(registry, "writer", WRITER_PASSWORD) as c:
        push_image(c, repo, "v1")
    with client(registry, "reader", READER_PASSWORD) as c:
        assert c.head_manifest(repo, "v1") is not None
        with pytest.raises(RegistryAuthError) as info:
            c.start_upload(repo)
    message = str(info.value)
    assert f"cannot push to {registry}/{repo}" in message
    assert "grants pull there" in message
    assert READER_PASSWORD not in message


def test_a_wrong_password_is_a_clear_error_without_the_password(registry: str) -> None:
    wrong = "not-" + WRITER_PASSWORD
    with client(registry, "writer", wrong) as c, pytest.raises(RegistryAuthError) as info:
        c.head_manifest("team/app", "v1")
    message = str(info.value)
    assert f"registry {registry} refused the credentials of 'writer'" in message
    assert "HTTP 401 from its token service" in message
    assert wrong not in message and wrong not in repr(info.value)


def test_anonymous_access_is_refused_with_a_hint(registry: str) -> None:
    with RegistryClient(registry, None, insecure=True) as c, pytest.raises(RegistryAuthError) as info:
        c.head_manifest("team/app", "v1")
    assert f"cannot pull from {registry}/team/app" in str(info.value)
    assert "no credentials for it in the docker config" in str(info.value)


def test_tokens_are_cached_until_they_expire_then_taken_again(registry: str, issuer: TokenIssuer) -> None:
    issuer.expires_in = 2
    repo = "team/expiry"
    with client(registry, "writer", WRITER_PASSWORD) as c:
        for _ in range(3):
            c.head_manifest(repo, "v1")
        assert len(issuer.issued) == 1
        time.sleep(2.2)
        c.head_manifest(repo, "v1")
        assert len(issuer.issued) == 2
    # the cache is the process's: another client of the same login reuses the token
    with client(registry, "writer", WRITER_PASSWORD) as c:
        c.head_manifest(repo, "v1")
    assert len(issuer.issued) == 2


def test_a_token_the_registry_refuses_is_dropped_and_taken_again(registry: str, issuer: TokenIssuer) -> None:
    issuer.skew_next = 1          # the token service's clock is off: its first token is expired on arrival
    with client(registry, "writer", WRITER_PASSWORD) as c:
        assert c.head_manifest("team/skew", "v1") is None   # 401 invalid_token -> a new token -> 404
        assert len(issuer.issued) == 2
        c.head_manifest("team/skew", "v1")                  # the good token is cached
    assert len(issuer.issued) == 2


def test_docker_identity_tokens_use_the_refresh_token_grant(registry: str, issuer: TokenIssuer) -> None:
    config = DockerConfig(auths={registry: AuthEntry(username="<token>", identity_token=IDENTITY_TOKEN)})
    with client_for(registry, config, insecure=True) as c:
        location = c.start_upload("team/idt")
        c.cancel_upload("team/idt", location)
    assert issuer.issued == [("writer", "repository:team/idt:pull,push")]


def test_credentials_from_a_docker_config_file(registry: str, tmp_path: Path) -> None:
    import base64

    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        f"http://{registry}": {"auth": base64.b64encode(f"writer:{WRITER_PASSWORD}".encode()).decode()}}}))
    with client_for(registry, tmp_path, insecure=True) as c:
        assert c.head_manifest("team/none", "v1") is None
