#!/usr/bin/env bash
# Prepares $FARM_COMPOSE_DIR for docker-compose.yml, once (a second run keeps every credential):
#   auth/           the registry's htpasswd and its password
#   docker-config/  a docker config with the same login (for the worker and for you)
#   contexts/       the shared context store
#   secrets/        0700: each Redis user's password and the farm's sealing key (0600 files)
#   redis/          0700: users.acl, the ACL file Redis loads (password hashes only; 0644 because
#                   Redis reads it as uid 999 in its container; the 0700 directory keeps it private)
#   env/            0700: each service's Redis URLs with its own user (0600; compose's env_file)
# Prints, on stdout, the exports a producer on this host needs, with the password read from its file
# (`$(cat ...)`), never the password itself:  eval "$(PYTHON=.venv/bin/python bash deploy/compose-init.sh)"
# Needs the farm's Python (bcrypt, cryptography, the farm itself): PYTHON=.venv/bin/python.
set -euo pipefail
dir="${FARM_COMPOSE_DIR:?set FARM_COMPOSE_DIR to an absolute directory, e.g. \$PWD/.farm-compose}"
case "$dir" in /*) ;; *) echo "FARM_COMPOSE_DIR must be absolute (got $dir)" >&2; exit 2;; esac
py="${PYTHON:-python3}"
mkdir -p "$dir/auth" "$dir/contexts" "$dir/docker-config"
(umask 077; mkdir -p "$dir/secrets" "$dir/redis" "$dir/env")
chmod 700 "$dir/secrets" "$dir/redis" "$dir/env"
FARM_DIR="$dir" FARM_REGISTRY_PORT="${FARM_COMPOSE_REGISTRY_PORT:-15050}" \
FARM_REDIS_PORT="${FARM_COMPOSE_REDIS_PORT:-16390}" "$py" - <<'PY'
import base64, json, os, secrets, shlex, sys
from pathlib import Path

import bcrypt

from farm import sealing
from farm.stack._credentials import REDIS_USERS, acl_text

d = Path(os.environ["FARM_DIR"])
registry_port, redis_port = os.environ["FARM_REGISTRY_PORT"], os.environ["FARM_REDIS_PORT"]


def write(path: Path, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def password(path: Path) -> str:
    """The password in `path`, made once (hex: safe in a URL)."""
    if not path.is_file() or not path.read_text().strip():
        write(path, secrets.token_hex(24) + "\n")
    return path.read_text().strip()


# The registry: one login, in its htpasswd and in the clients' docker config.
registry = password(d / "auth/password")
write(d / "auth/htpasswd", "farm:" + bcrypt.hashpw(registry.encode(), bcrypt.gensalt()).decode() + "\n")
auth = base64.b64encode(f"farm:{registry}".encode()).decode()
write(d / "docker-config/config.json", json.dumps({"auths": {f"127.0.0.1:{registry_port}": {"auth": auth}}}, indent=2))

# Redis: one user per client (farm/stack/_credentials.py has the rules); `default` gets a password
# nobody is given, so an anonymous client can do nothing.
files = {user: d / f"secrets/redis-{user}.password" for user in ("default", *REDIS_USERS)}
passwords = {user: password(path) for user, path in files.items()}
write(d / "redis/users.acl", acl_text(passwords), 0o644)


def url(user: str, db: int, host: str = "redis:6379") -> str:
    return f"redis://{user}:{passwords[user]}@{host}/{db}"


write(d / "env/worker.env", f"FARM_BROKER_URL={url('worker', 0)}\nFARM_RESULT_BACKEND={url('worker', 1)}\n")
write(d / "env/flower.env", f"CELERY_BROKER_URL={url('flower', 0)}\n")
write(d / "env/metrics.env", f"FARM_BROKER_URL={url('flower', 0)}\n")

# The farm's sealing key pair: the worker holds the private half, producers seal with the public one.
key = sealing.load_or_create(d / "secrets/sealing.key")


def from_file(user: str, db: int | None) -> str:
    tail = "" if db is None else f"/{db}"
    return f'"redis://{user}:$(cat {shlex.quote(str(files[user]))})@127.0.0.1:{redis_port}{tail}"'


print(f"export FARM_BROKER_URL={from_file('producer', 0)}")
print(f"export FARM_RESULT_BACKEND={from_file('producer', 1)}")
print(f"export FARM_REDIS_ADMIN_URL={from_file('admin', None)}")
print(f"export FARM_SEALING_PUBLIC_KEY={sealing.public_text(key)}")
print(f"export FARM_CONTEXT_STORE={shlex.quote('file://' + str(d / 'contexts'))}")
print(f"export DOCKER_CONFIG={shlex.quote(str(d / 'docker-config'))}")
print(f"FARM_COMPOSE_DIR={d} ready: registry login farm (password in {d}/auth/password); Redis users "
      f"{', '.join(REDIS_USERS)} (passwords in {d}/secrets/); the exports above are for producers",
      file=sys.stderr)
PY
