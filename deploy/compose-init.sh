#!/usr/bin/env bash
# Prepares $FARM_COMPOSE_DIR for docker-compose.yml, once: the registry's htpasswd, a docker config
# with the same login (for the worker and for you), and the shared context store directory.
# Needs python3 with bcrypt (the farm's venv has it: PYTHON=.venv/bin/python).
set -euo pipefail
dir="${FARM_COMPOSE_DIR:?set FARM_COMPOSE_DIR to an absolute directory, e.g. \$PWD/.farm-compose}"
case "$dir" in /*) ;; *) echo "FARM_COMPOSE_DIR must be absolute (got $dir)" >&2; exit 2;; esac
port="${FARM_COMPOSE_REGISTRY_PORT:-15050}"
py="${PYTHON:-python3}"
mkdir -p "$dir/auth" "$dir/contexts" "$dir/docker-config"
if [ ! -s "$dir/auth/password" ]; then
  (umask 077; "$py" -c 'import secrets; print(secrets.token_urlsafe(24))' > "$dir/auth/password")
fi
FARM_PASSWORD_FILE="$dir/auth/password" FARM_DIR="$dir" FARM_PORT="$port" "$py" - <<'PY'
import base64, json, os, bcrypt
d, port = os.environ["FARM_DIR"], os.environ["FARM_PORT"]
password = open(os.environ["FARM_PASSWORD_FILE"]).read().strip()
with open(f"{d}/auth/htpasswd", "w") as f:
    f.write("farm:" + bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode() + "\n")
auth = base64.b64encode(f"farm:{password}".encode()).decode()
old = os.umask(0o077)
with open(f"{d}/docker-config/config.json", "w") as f:
    json.dump({"auths": {f"127.0.0.1:{port}": {"auth": auth}}}, f, indent=2)
os.umask(old)
PY
echo "FARM_COMPOSE_DIR=$dir ready: registry login farm (password in $dir/auth/password)"
