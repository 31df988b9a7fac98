#!/usr/bin/env bash
# The Secrets deploy/ reads and you create, made once into OUTDIR (0700) as OUTDIR/farm-secrets.yaml
# (0600), for `kubectl apply -f OUTDIR/farm-secrets.yaml` (a second run keeps every credential):
#   farm-redis-acl    users.acl: the Redis ACL users (farm/stack/_credentials.py), password hashes only
#   farm-redis-users  each client's Redis URL with its own user: worker-broker-url, worker-backend-url
#                     (the workers), flower-broker-url (Flower, metrics), producer-broker-url,
#                     producer-backend-url (give these to your CI's `farm build`), admin-url (operators)
#   farm-sealing-key  sealing.key: the private half of the farm's sealing key (every worker)
#   farm-flower-auth  basic_auth: Flower's login, user farm
# Prints only the public sealing key (FARM_SEALING_PUBLIC_KEY for producers) and where the file is.
# Needs the farm's Python: PYTHON=.venv/bin/python bash deploy/cluster-secrets.sh OUTDIR [REDIS_HOST]
set -euo pipefail
out="${1:?usage: cluster-secrets.sh OUTDIR [REDIS_HOST:PORT, default farm-redis:6379]}"
(umask 077; mkdir -p "$out/secrets")
chmod 700 "$out" "$out/secrets"
FARM_OUT="$out" FARM_REDIS_HOST="${2:-farm-redis:6379}" "${PYTHON:-python3}" - <<'PY'
import os, secrets
from pathlib import Path

import yaml

from farm import sealing
from farm.stack._credentials import FLOWER_USER, REDIS_USERS, acl_text

out, host = Path(os.environ["FARM_OUT"]), os.environ["FARM_REDIS_HOST"]


def password(name: str) -> str:
    """The password in OUTDIR/secrets/NAME, made once (hex: safe in a URL)."""
    path = out / "secrets" / name
    if not path.is_file():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(24) + "\n")
    return path.read_text().strip()


passwords = {user: password(f"redis-{user}.password") for user in ("default", *REDIS_USERS)}


def url(user: str, db: int | None) -> str:
    return f"redis://{user}:{passwords[user]}@{host}" + ("" if db is None else f"/{db}")


key_file = out / "secrets" / "sealing.key"
key = sealing.load_or_create(key_file)


def secret(name: str, data: dict[str, str]) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": "farm", "labels": {"app.kubernetes.io/part-of": "farm"}},
            "stringData": data}


docs = [
    secret("farm-redis-acl", {"users.acl": acl_text(passwords)}),
    secret("farm-redis-users", {
        "worker-broker-url": url("worker", 0), "worker-backend-url": url("worker", 1),
        "flower-broker-url": url("flower", 0),
        "producer-broker-url": url("producer", 0), "producer-backend-url": url("producer", 1),
        "admin-url": url("admin", None)}),
    secret("farm-sealing-key", {"sealing.key": key_file.read_text().strip()}),
    secret("farm-flower-auth", {"basic_auth": f"{FLOWER_USER}:{password('flower.password')}"}),
]
target = out / "farm-secrets.yaml"
fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    yaml.safe_dump_all(docs, f, sort_keys=False, width=1000)
os.chmod(target, 0o600)
print(f"FARM_SEALING_PUBLIC_KEY={sealing.public_text(key)}")
print(f"wrote {target} (0600): kubectl apply -f {target}; producers' Redis URLs are its farm-redis-users "
      "producer-broker-url and producer-backend-url")
PY
