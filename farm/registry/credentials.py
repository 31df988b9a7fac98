"""Registry credentials from a docker config.json (`auths` entries), as `docker login` writes them."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

from farm.errors import ConfigError


@dataclass(frozen=True)
class Credentials:
    username: str
    # Kept out of repr so a credential never lands in a log line or a traceback.
    password: str = field(repr=False)


def _host_keys(host: str) -> list[str]:
    """The spellings docker config uses for one registry host."""
    keys = [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]
    if host in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        keys.append("https://index.docker.io/v1/")
    return keys


def load_credentials(docker_config_dir: Path, host: str) -> Credentials | None:
    """The credentials for `host` in `<dir>/config.json`, or None when there are none."""
    path = docker_config_dir / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read docker config: {exc.__class__.__name__}", file=str(path)) from None
    auths = config.get("auths") or {}
    for key in _host_keys(host):
        entry = auths.get(key)
        if not entry:
            continue
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise ConfigError(f"the auth entry for {host} is not base64 user:password",
                                  file=str(path), field=f"auths.{key}.auth") from None
            return Credentials(user, password)
        if entry.get("username"):
            return Credentials(entry["username"], entry.get("password", ""))
    return None
