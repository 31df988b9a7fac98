"""The stack's credentials: Redis ACL users and the Flower login, generated once into the state
directory (each a 0600 file in the 0700 `secrets/` directory), and the ACL file Redis reads (which
holds SHA-256 hashes of the passwords, never a password).

Redis users, each with what it needs and no more:

    admin     every command (operators, the tests' FLUSHDB / MONITOR / CONFIG)
    producer  `farm build` and the other CLI commands: no @admin / @dangerous commands (CONFIG,
              FLUSHALL, KEYS, MONITOR, DEBUG, SHUTDOWN, ACL ...)
    worker    the workers: the same set (they run the same Celery and Lua; they consume queues)
    flower    Flower and the metrics endpoint: what Celery's events and control replies need, and
              reads; no hash or stream writes (the farm's job records, secrets and logs)
    default   a random password nobody is given: an unauthenticated connection can do nothing. Not
              `off`: Redis 7.0 replays the append-only file as the default user, and refuses its
              MULTI/EXEC blocks when that user is off (queued work would be lost on a restart).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from farm import sealing
from farm.stack._state import StackPaths

REDIS_USERS = ("admin", "producer", "worker", "flower")
FLOWER_USER = "farm"
_SAFE = "-@dangerous -@admin"
RULES = {
    "admin": "~* &* +@all",
    "producer": f"~* &* +@all {_SAFE}",
    "worker": f"~* &* +@all {_SAFE}",
    # Celery's control replies and event capture need strings, lists, sets, sorted sets and scripts;
    # nothing of the farm's own records (hashes) or logs (streams) may be written.
    "flower": f"~* &* +@all {_SAFE} -@hash -@stream +@read",
}


def secret_dir(paths: StackPaths) -> Path:
    d = paths.state / "secrets"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    return d


def password(paths: StackPaths, name: str) -> str:
    """The password of `name` (generated once, hex: safe in a URL), from its 0600 file."""
    file = secret_dir(paths) / f"{name}.password"
    try:
        return file.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_hex(24)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def redis_password(paths: StackPaths, user: str) -> str:
    return password(paths, f"redis-{user}")


def acl_text(passwords: Mapping[str, str]) -> str:
    """The users.acl Redis loads, from each user's password (`default` and REDIS_USERS): hashes only.
    Pure, so docker-compose.yml's and deploy/'s ACL files (deploy/*.sh) are the stack's."""
    def digest(user: str) -> str:
        return hashlib.sha256(passwords[user].encode()).hexdigest()

    lines = [f"user default on #{digest('default')} ~* &* +@all"]
    lines += [f"user {user} on #{digest(user)} {RULES[user]}" for user in REDIS_USERS]
    return "\n".join(lines) + "\n"


def acl_file(paths: StackPaths) -> str:
    """The stack's users.acl: the default user with a password nobody is given, each user with the
    hash of its password."""
    return acl_text({"default": password(paths, "redis-default"),
                     **{user: redis_password(paths, user) for user in REDIS_USERS}})


def redis_url(paths: StackPaths, port: int, user: str, db: int | None = 0) -> str:
    tail = "" if db is None else f"/{db}"
    return f"redis://{user}:{redis_password(paths, user)}@127.0.0.1:{port}{tail}"


def flower_auth(paths: StackPaths) -> str:
    """`user:password` for Flower's basic auth."""
    return f"{FLOWER_USER}:{password(paths, 'flower')}"


def sealing_key_file(paths: StackPaths) -> Path:
    return secret_dir(paths) / "sealing.key"


def sealing_public_key(paths: StackPaths) -> str:
    """The public half of the stack's sealing key (made once, with its private half)."""
    return sealing.public_text(sealing.load_or_create(sealing_key_file(paths)))
