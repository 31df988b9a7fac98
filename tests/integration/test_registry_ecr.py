"""ECR natively with boto3, against moto's server on 127.0.0.1 (boto3's own endpoint settings,
AWS_ENDPOINT_URL_ECR / _STS): token minting, repositories created with MUTABLE tags, IRSA's
web-identity environment resolved through STS, and the ECR token taken by a REAL Distribution
registry (token auth, the test-run issuer checking the password ECR minted). The immutable-tag
answer comes from a stand-in in front of the stack's registry that speaks ECR's error shape."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from farm.registry import credentials_for, ecr
from farm.registry.access import Use, check_registry
from farm.registry.build_config import build_docker_config
from farm.registry.client import RegistryClient
from farm.registry.credentials import Credentials
from farm.registry.docker_config import DockerConfig
from farm.registry.tokens import TOKENS
from tests.integration.registry_services import Account, TokenIssuer, _json, _Server, moto_server, token_registry

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"
ECR_HOST = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
ROLE_ACCOUNT = "111122223333"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture(autouse=True)
def aws_env(moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for var in ("AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "static-secret-" + uuid.uuid4().hex)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", moto)
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    ecr.forget_tokens()
    TOKENS.clear()
    yield
    ecr.forget_tokens()


def test_ecr_login_mints_a_token_with_boto3() -> None:
    config = DockerConfig.from_json({"credHelpers": {ECR_HOST: "ecr-login"}}, origin="/cfg/config.json")
    resolved = credentials_for(ECR_HOST, config)
    assert resolved.source == "ecr-login"
    assert resolved.credentials == Credentials("AWS", f"{ACCOUNT}-auth-token", expires_at=resolved.credentials.expires_at)
    assert "credHelpers entry in /cfg/config.json" in resolved.detail and "AWS identity: env" in resolved.detail
    assert f"{ACCOUNT}-auth-token" not in repr(resolved)


def test_an_ecr_host_without_an_entry_uses_the_farms_own_identity() -> None:
    resolved = credentials_for(ECR_HOST, DockerConfig(origin="/cfg/config.json"))
    assert resolved.source == "ecr-login" and "the farm's own identity" in resolved.detail


def test_a_build_config_turns_the_helper_into_an_auths_entry() -> None:
    worker = DockerConfig.from_json({"credHelpers": {ECR_HOST: "ecr-login"}})
    config = build_docker_config(worker, None, [ECR_HOST]).to_json()
    assert "credHelpers" not in config
    assert config["auths"][ECR_HOST] == {"auth": base64.b64encode(f"AWS:{ACCOUNT}-auth-token".encode()).decode()}


def test_missing_repositories_are_created_with_mutable_tags() -> None:
    repo = f"team/api-{uuid.uuid4().hex[:6]}"
    assert ecr.ensure_repository(ECR_HOST, repo, create=False) is None
    made = ecr.ensure_repository(ECR_HOST, repo)
    assert made == ecr.RepositoryState(repo, True, "MUTABLE")
    assert ecr.ensure_repository(ECR_HOST, repo) == ecr.RepositoryState(repo, False, "MUTABLE")
    found = boto3.client("ecr").describe_repositories(repositoryNames=[repo])["repositories"][0]
    assert found["imageTagMutability"] == "MUTABLE" and found["registryId"] == ACCOUNT


def test_an_immutable_cache_repository_is_reported() -> None:
    repo = f"team/cache-{uuid.uuid4().hex[:6]}"
    boto3.client("ecr").create_repository(repositoryName=repo, imageTagMutability="IMMUTABLE")
    result = check_registry(ECR_HOST, [Use(repo, "_buildcache", ("cache",), push=True)], DockerConfig(),
                            insecure=False, timeout=2, create_ecr_repositories=True)
    notes = result.repositories[0].notes
    assert any("IMMUTABLE tags: the cache tag cannot be overwritten" in n for n in notes)


def test_irsa_web_identity_through_sts_reaches_a_real_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    """The builder pod's environment under IRSA: a role ARN and a projected token file, no keys."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YnVpbGQ6Z2FyZGVuIn0.sig")
    monkeypatch.setenv("AWS_ROLE_ARN", f"arn:aws:iam::{ROLE_ACCOUNT}:role/garden-builder")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "farm-builder")
    assert ecr.identity_source() == "assume-role-with-web-identity"
    # A registry whose token service takes what ECR mints for the role's account, and nothing else.
    issuer = TokenIssuer(accounts={"AWS": Account(lambda p: p == f"{ROLE_ACCOUNT}-auth-token")})
    try:
        with token_registry(tmp_path_factory.mktemp("ecr-token-registry"), issuer) as host:
            config = DockerConfig.from_json({"credHelpers": {host: "ecr-login"}}, origin="/cfg/config.json")
            resolved = credentials_for(host, config)
            assert resolved.source == "ecr-login" and "assume-role-with-web-identity" in resolved.detail
            result = check_registry(host, [Use("team/api", "v-1", ("deployment",), push=True)], config,
                                    insecure=True)
    finally:
        issuer.stop()
    assert result.ok, result
    assert issuer.issued == [("AWS", "repository:team/api:pull"), ("AWS", "repository:team/api:pull,push")]


class EcrStandIn(_Server):
    """ECR's answer to a manifest PUT on an existing tag of an IMMUTABLE repository, in front of
    the stack's registry (which it forwards everything else to)."""

    def __init__(self, upstream: str, immutable: set[str]) -> None:
        super().__init__()
        self.upstream = upstream
        self.immutable = immutable

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: bytes) -> tuple[int, dict[str, str], bytes]:
        fwd = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
        parts = path.split("/manifests/")
        if method == "PUT" and len(parts) == 2 and parts[0][len("/v2/"):] in self.immutable \
                and not parts[1].startswith("sha256:"):
            held = httpx.head(f"http://{self.upstream}{path}", headers={**fwd, "Accept": "application/vnd.oci.image.manifest.v1+json"}, trust_env=False)
            if held.status_code == 200:
                return _json(400, {"errors": [{"code": "TAG_INVALID", "message": (
                    f"The image tag '{parts[1]}' already exists in the '{parts[0][4:]}' repository and cannot "
                    "be overwritten because the repository is immutable.")}]})
        qs = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
        resp = httpx.request(method, f"http://{self.upstream}{path}" + (f"?{qs}" if qs else ""), headers=fwd,
                             content=body, trust_env=False)
        out = {k: v for k, v in resp.headers.items() if k.lower() in (
            "content-type", "docker-content-digest", "location", "www-authenticate", "docker-upload-uuid")}
        return resp.status_code, out, resp.content


def test_an_immutable_tag_holding_the_same_digest_is_success(stack_env: dict[str, str]) -> None:
    host = stack_env["FARM_REGISTRY"]
    auth = json.loads((Path(stack_env["DOCKER_CONFIG"]) / "config.json").read_text())["auths"][host]["auth"]
    user, _, password = base64.b64decode(auth).decode().partition(":")
    repo = f"ecr/immutable-{uuid.uuid4().hex[:6]}"
    standin = EcrStandIn(host, {repo})
    try:
        with RegistryClient(f"127.0.0.1:{standin.port}", Credentials(user, password), insecure=True) as c:
            config = json.dumps({"os": "linux", "architecture": "amd64", "n": uuid.uuid4().hex}).encode()
            digest = c.push_blob(repo, config)
            manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                              "digest": digest, "size": len(config)}, "layers": []}).encode()
            media = "application/vnd.oci.image.manifest.v1+json"
            first = c.put_manifest(repo, "v1", manifest, media)
            assert first == "sha256:" + hashlib.sha256(manifest).hexdigest()
            assert c.put_manifest(repo, "v1", manifest, media) == first           # same bytes: success
            other = manifest.replace(b'"layers": []', b'"layers": [], "annotations": {"x": "y"}')
            with pytest.raises(Exception) as info:
                c.put_manifest(repo, "v1", other, media)
            assert "is immutable and already names " + first in str(info.value)
    finally:
        standin.stop()
