"""Docker configs as data, the credential order of `credentials_for` (without cloud calls), and the
per-build config files."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from farm.errors import ConfigError
from farm.registry import credentials_for
from farm.registry.build_config import build_docker_config, garden_auth_secret, private_config_dir
from farm.registry.docker_config import AuthEntry, DockerConfig, normalise_host

PASSWORD = "pa55-w0rd-xyz"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@pytest.mark.parametrize(("key", "host"), [
    ("https://index.docker.io/v1/", "docker.io"), ("registry-1.docker.io", "docker.io"),
    ("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"), ("GCR.io", "gcr.io"), ("reg.example.com", "reg.example.com"),
])
def test_hosts_are_normalised(key: str, host: str) -> None:
    assert normalise_host(key) == host


def test_entries_read_in_every_form_and_hidden_from_repr() -> None:
    config = DockerConfig.from_json({
        "auths": {"a.io": {"auth": b64(f"alice:{PASSWORD}")}, "b.io": {"username": "bob", "password": PASSWORD},
                  "c.io": {"identitytoken": PASSWORD}, "d.io": {}},
        "credHelpers": {"e.io": "ecr-login"}, "credsStore": "desktop"}, origin="/x/config.json")
    assert config.entry("https://a.io") == AuthEntry("alice", PASSWORD)
    assert config.entry("b.io") == AuthEntry("bob", PASSWORD)
    assert config.entry("c.io") == AuthEntry("", "", PASSWORD)
    assert config.helper("e.io") == "ecr-login" and config.creds_store == "desktop"
    assert PASSWORD not in repr(config)


def test_a_bad_auth_value_names_the_key_not_the_value() -> None:
    with pytest.raises(ConfigError) as info:
        DockerConfig.from_json({"auths": {"a.io": {"auth": b64(PASSWORD)}}}, origin="/x/config.json")
    assert "auths.a.io.auth" in str(info.value) and PASSWORD not in str(info.value)


def test_credential_order_auths_json_key_unsupported_helpers() -> None:
    key = json.dumps({"type": "service_account", "private_key": PASSWORD})
    config = DockerConfig.from_json({
        "auths": {"a.io": {"auth": b64(f"alice:{PASSWORD}")}, "eu.gcr.io": {"auth": b64(f"_json_key:{key}")},
                  "h.io": {"auth": b64(f"hank:{PASSWORD}")}},
        "credHelpers": {"h.io": "osxkeychain"}, "credsStore": "pass"}, origin="/x/config.json")
    a = credentials_for("a.io", config)
    assert (a.source, a.credentials and a.credentials.username) == ("auths", "alice")
    assert a.detail == "auths entry in /x/config.json (user 'alice')"
    g = credentials_for("eu.gcr.io", config)
    assert g.source == "json-key" and g.credentials is not None and g.credentials.password == key
    h = credentials_for("h.io", config)
    assert h.source == "auths" and "credential helper 'osxkeychain' is not run" in h.detail
    n = credentials_for("other.io", config)
    assert n.source == "none" and n.credentials is None and "credsStore 'pass' is not read" in n.detail
    for r in (a, g, h, n):
        assert PASSWORD not in repr(r) and PASSWORD not in r.detail


def test_build_config_secrets_win_and_stores_are_dropped(tmp_path: Path) -> None:
    worker = DockerConfig.from_json({"auths": {"a.io": {"auth": b64("worker:w")}, "b.io": {"auth": b64("wb:w")}},
                                     "credsStore": "desktop", "credHelpers": {"c.io": "pass"}})
    secrets = {"experimental": "enabled", "auths": {"a.io": {"auth": b64(f"project:{PASSWORD}")}}}
    config = build_docker_config(worker, secrets, ["a.io", "b.io", "d.io"])
    assert config.to_json() == {"auths": {"a.io": {"auth": b64(f"project:{PASSWORD}")},
                                          "b.io": {"auth": b64("wb:w")}}}
    with private_config_dir(tmp_path / "cfgs", config) as directory:
        path = directory / "config.json"
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert json.loads(path.read_text()) == config.to_json()
    assert not directory.exists()


def test_garden_auth_secret_is_content_addressed() -> None:
    one = DockerConfig(auths={"a.io": AuthEntry("u", "p")})
    name, data = garden_auth_secret(one)
    assert name.startswith("garden-docker-auth-") and len(name) == len("garden-docker-auth-") + 6
    assert json.loads(base64.b64decode(data)) == {"auths": {"a.io": {"auth": b64("u:p")}}}
    assert garden_auth_secret(DockerConfig(auths={"a.io": AuthEntry("u", "p")}))[0] == name
    assert garden_auth_secret(DockerConfig(auths={"a.io": AuthEntry("u", "q")}))[0] != name
