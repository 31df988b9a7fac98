"""imagePullSecrets validated and merged as Garden does (GARDEN-SPEC §7): each malformed shape its
own message naming the secret and namespace, never a value; later wins; other keys dropped."""

from __future__ import annotations

import base64
import json

import pytest

from farm.errors import ConfigError
from farm.registry.pull_secrets import (
    PullSecret,
    SecretRef,
    merge_pull_secrets,
    parse_pull_secret,
    resolve_pull_secrets,
)

PASSWORD = "s3cr3t-pa55"


def b64(data: str | bytes) -> str:
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def auth(user: str, password: str = PASSWORD) -> dict[str, str]:
    return {"auth": b64(f"{user}:{password}")}


def secret(doc: object, name: str = "regcred", namespace: str = "ci",
           type_: str | None = "kubernetes.io/dockerconfigjson") -> PullSecret:
    return PullSecret(name, namespace, type_, {".dockerconfigjson": b64(json.dumps(doc))})


@pytest.mark.parametrize(("bad", "says"), [
    (PullSecret("regcred", "ci", "Opaque", {".dockerconfigjson": b64("{}")}),
     "has type 'Opaque'; it must be kubernetes.io/dockerconfigjson"),
    (PullSecret("regcred", "ci", "kubernetes.io/dockercfg", {".dockercfg": b64("{}")}),
     "the old .dockercfg format"),
    (PullSecret("regcred", "ci", None, {}), "has type '(none)'"),
    (PullSecret("regcred", "ci", "kubernetes.io/dockerconfigjson", {"config.json": b64("{}")}),
     "has no .dockerconfigjson key (its keys: config.json)"),
    (PullSecret("regcred", "ci", "kubernetes.io/dockerconfigjson", {".dockerconfigjson": "%%%" + PASSWORD}),
     "has a .dockerconfigjson value that is not base64"),
    (PullSecret("regcred", "ci", "kubernetes.io/dockerconfigjson", {".dockerconfigjson": b64("{" + PASSWORD)}),
     "has a .dockerconfigjson value that is not JSON"),
    (secret(["auths"]), "JSON but not an object"),
    (secret({"credsStore": "desktop", "HttpHeaders": {"x": PASSWORD}}),
     "with neither 'auths' nor 'credHelpers' (its keys: HttpHeaders, credsStore)"),
    (secret({"auths": ["reg.example.com"]}), "whose 'auths' is not an object"),
    (secret({"auths": {"reg.example.com": {"auth": b64(PASSWORD)}}}),
     "a bad entry: auths.reg.example.com.auth: the auth value is not base64 of user:password"),
])
def test_each_malformed_shape_has_its_own_message(bad: PullSecret, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_pull_secret(bad, index=1, file="/p/project.garden.yml")
    message = str(info.value)
    assert says in message
    assert "imagePullSecret 'regcred' in namespace 'ci'" in message
    assert "providers[kubernetes].imagePullSecrets[1]" in message
    assert message.startswith("/p/project.garden.yml")
    assert PASSWORD not in message and b64(PASSWORD) not in message


def test_merge_in_order_later_wins_other_keys_dropped() -> None:
    first = secret({"auths": {"reg.a": auth("one"), "reg.b": auth("b")}, "credsStore": "desktop",
                    "credHelpers": {"123456789012.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login"}}, "first")
    second = secret({"auths": {"reg.a": auth("two")}, "credHelpers": {"gcr.io": "gcr"}, "proxies": {}}, "second")
    merged = merge_pull_secrets([first, second])
    assert merged == {
        "experimental": "enabled",
        "auths": {"reg.a": auth("two"), "reg.b": auth("b")},
        "credHelpers": {"123456789012.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login", "gcr.io": "gcr"},
    }


def test_later_wins_across_spellings_of_one_registry() -> None:
    hub1 = secret({"auths": {"https://index.docker.io/v1/": auth("old")}})
    hub2 = secret({"auths": {"docker.io": auth("new")}})
    assert merge_pull_secrets([hub1, hub2])["auths"] == {"docker.io": auth("new")}


def test_a_missing_secret_names_it_and_its_namespace() -> None:
    def read(name: str, namespace: str) -> PullSecret | None:
        return secret({"auths": {}}, name, namespace) if name == "there" else None

    refs = [SecretRef("there", "default"), SecretRef("gone", "build")]
    with pytest.raises(ConfigError) as info:
        resolve_pull_secrets(refs, read)
    assert "Could not find secret 'gone' in namespace 'build'" in str(info.value)
    assert "imagePullSecrets[1]" in str(info.value)


def test_a_secret_never_shows_its_data() -> None:
    s = secret({"auths": {"reg.a": auth("u")}})
    assert PASSWORD not in repr(s) and b64(PASSWORD)[:8] not in repr(s)
