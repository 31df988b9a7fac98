import base64
import json
from pathlib import Path

import pytest

from farm.errors import ConfigError
from farm.registry import Credentials, load_credentials, parse_reference


@pytest.mark.parametrize("image,host,repo,ref", [
    ("127.0.0.1:5050/demo/api:v-0123456789", "127.0.0.1:5050", "demo/api", "v-0123456789"),
    ("gcr.io/proj/sub/api:v-1", "gcr.io", "proj/sub/api", "v-1"),
    ("localhost/api", "localhost", "api", "latest"),
    ("busybox", "docker.io", "library/busybox", "latest"),
    ("user/app:1.0", "docker.io", "user/app", "1.0"),
    ("r.io/a/b@sha256:" + "0" * 64, "r.io", "a/b", "sha256:" + "0" * 64),
])
def test_parse_reference(image: str, host: str, repo: str, ref: str) -> None:
    r = parse_reference(image)
    assert (r.host, r.repository, r.ref) == (host, repo, ref)


def test_credentials_from_docker_config(tmp_path: Path) -> None:
    auth = base64.b64encode(b"farm:s3cret").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"127.0.0.1:5050": {"auth": auth}}}))
    creds = load_credentials(tmp_path, "127.0.0.1:5050")
    assert creds == Credentials("farm", "s3cret")
    assert "s3cret" not in repr(creds)
    assert load_credentials(tmp_path, "other:1") is None


def test_broken_docker_config_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError) as err:
        load_credentials(tmp_path, "x")
    assert "config.json" in str(err.value)
