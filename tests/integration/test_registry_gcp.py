"""GCR / Artifact Registry natively with google-auth and google-cloud-artifact-registry, against
local stand-ins (no emulator exists): a service-account JSON key whose token_uri is a local OAuth2
endpoint (the JWT assertion verified with the key's public half), workload identity through a local
metadata server (GCE_METADATA_HOST), the Artifact Registry REST shapes; the access tokens are
taken by a REAL Distribution registry (token auth) as `oauth2accesstoken`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm.errors import ConfigError
from farm.registry import credentials_for, gar, gcp
from farm.registry.access import Use, check_registry
from farm.registry.docker_config import DockerConfig
from farm.registry.tokens import TOKENS
from tests.integration.registry_services import Account, GoogleStandIn, TokenIssuer, token_registry

pytestmark = pytest.mark.integration

GAR_HOST = "europe-west1-docker.pkg.dev"


@pytest.fixture(scope="module")
def google() -> Iterator[GoogleStandIn]:
    standin = GoogleStandIn(repositories={
        "projects/farm-test/locations/europe-west1/repositories/images": "DOCKER",
        "projects/farm-test/locations/europe-west1/repositories/jars": "MAVEN"})
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def registry(google: GoogleStandIn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Takes `oauth2accesstoken` with a token the Google stand-in minted, nothing else."""
    issuer = TokenIssuer(accounts={gcp.ACCESS_TOKEN_USER: Account(lambda p: p in google.access_tokens)})
    try:
        with token_registry(tmp_path_factory.mktemp("gcp-token-registry"), issuer) as host:
            yield host
    finally:
        issuer.stop()


@pytest.fixture(autouse=True)
def google_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, google: GoogleStandIn) -> Iterator[None]:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))        # no gcloud login here
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:1")                  # no metadata server unless asked
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:1")
    monkeypatch.setenv("NO_GCE_CHECK", "False")
    monkeypatch.setenv(gar.ENDPOINT_ENV, google.url)
    gcp.forget()
    TOKENS.clear()
    yield
    gcp.forget()


def key_file(google: GoogleStandIn, tmp_path: Path) -> Path:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(google.service_account_key()))
    return path


def test_a_json_key_in_adc_gives_an_access_token_the_registry_takes(
        google: GoogleStandIn, registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file(google, tmp_path)))
    config = DockerConfig.from_json({"credHelpers": {registry: "gcr"}}, origin="/cfg/config.json")
    resolved = credentials_for(registry, config)
    assert resolved.source == "json-key"
    assert resolved.credentials is not None and resolved.credentials.username == "oauth2accesstoken"
    assert f"service-account key {google.sa_email}" in resolved.detail
    result = check_registry(registry, [Use("farm-test/images/api", "v-1", ("deployment",), push=True)], config,
                            insecure=True)
    assert result.ok, result
    assert google.minted[-1] == "token-endpoint"


def test_workload_identity_through_the_metadata_server(
        google: GoogleStandIn, registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{google.port}")
    monkeypatch.setenv("GCE_METADATA_IP", f"127.0.0.1:{google.port}")
    config = DockerConfig.from_json({"credHelpers": {registry: "gcloud"}}, origin="/cfg/config.json")
    resolved = credentials_for(registry, config)
    assert resolved.source == "gcloud" and "metadata server" in resolved.detail
    result = check_registry(registry, [Use("farm-test/images/api", "v-1", ("deployment",), push=True)], config,
                            insecure=True)
    assert result.ok, result
    assert google.minted[-1] == "metadata"


def test_a_google_host_without_an_entry_uses_the_farms_own_identity(
        google: GoogleStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file(google, tmp_path)))
    resolved = credentials_for(GAR_HOST, DockerConfig(origin="/cfg/config.json"))
    assert resolved.source == "json-key" and "the farm's own identity" in resolved.detail


def test_no_google_identity_at_all_is_anonymous_with_the_reason() -> None:
    resolved = credentials_for(GAR_HOST, DockerConfig(origin="/cfg/config.json"))
    assert resolved.source == "none" and "no application default credentials" in resolved.detail


def test_the_artifact_registry_repository_exists_and_is_docker(
        google: GoogleStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file(google, tmp_path)))
    resolved = credentials_for(GAR_HOST, DockerConfig())
    gar.check_repository(gar.parse_gar(GAR_HOST, "farm-test/images"), resolved)   # type: ignore[arg-type]


def test_a_missing_repository_says_how_to_create_it(google: GoogleStandIn, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file(google, tmp_path)))
    resolved = credentials_for(GAR_HOST, DockerConfig())
    with pytest.raises(ConfigError) as info:
        gar.check_repository(gar.parse_gar(GAR_HOST, "farm-test/nope"), resolved)  # type: ignore[arg-type]
    message = str(info.value)
    assert "Artifact Registry repository 'nope' does not exist in project 'farm-test', location 'europe-west1'" \
        in message
    assert "gcloud artifacts repositories create nope --repository-format=docker --location=europe-west1 " \
           "--project=farm-test" in message


def test_a_repository_of_another_format_is_refused(google: GoogleStandIn, tmp_path: Path) -> None:
    """Through a `_json_key` auths entry, as Garden's guide has users write it."""
    key = json.dumps(google.service_account_key())
    import base64

    config = DockerConfig.from_json({"auths": {GAR_HOST: {
        "auth": base64.b64encode(f"_json_key:{key}".encode()).decode()}}})
    resolved = credentials_for(GAR_HOST, config)
    assert resolved.source == "json-key" and resolved.credentials is not None
    with pytest.raises(ConfigError) as info:
        gar.check_repository(gar.parse_gar(GAR_HOST, "farm-test/jars"), resolved)  # type: ignore[arg-type]
    assert "is a MAVEN repository; images need a DOCKER repository" in str(info.value)
    assert key not in str(info.value)


def test_the_namespace_must_be_project_slash_repository() -> None:
    with pytest.raises(ConfigError) as info:
        gar.parse_gar(GAR_HOST, "just-a-project")
    assert "must be <project>/<repository>" in str(info.value)
    assert gar.parse_gar("gcr.io", "x") is None
