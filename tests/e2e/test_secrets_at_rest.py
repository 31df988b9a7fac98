"""Nothing at rest: after real builds with a build secret (cluster-buildkit, `RUN --mount=type=secret`,
through `farm build` and a real worker), the secret value is in no Redis key, no Redis file (the
append-only file and an RDB snapshot taken afterwards), no file of the stack's state directory, and
no file of the builders' data directories (buildkitd's root and the worker's directory).

The value waits for its worker sealed (farm.sealing): X25519 + AES-GCM for the worker's key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from farm import keys
from tests.conftest import ROOT, broker_holds, write_project

pytestmark = pytest.mark.e2e

MAX_SCAN = 256 * 1024 * 1024        # bytes of one file read; image layers hold no secret of ours


def files_holding(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            try:
                if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_SCAN:
                    continue
                data = path.read_bytes()
            except OSError:
                continue                  # a socket, a file gone meanwhile
            if any(n in data for n in needles):
                found.append(str(path))
    return found


def test_build_secrets_never_rest_in_plaintext(worker: object, stack_env: dict[str, str], tmp_path: Path) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    dockerfile = (f"FROM {stack_env['FARM_BASE_IMAGE']}\n"
                  "RUN --mount=type=secret,id=tok,required=true sha256sum /run/secrets/tok | cut -d' ' -f1 > /hash\n"
                  "RUN --mount=type=secret,id=tok,required=true cat /run/secrets/tok; echo\n")
    proj = write_project(tmp_path / "p", {"api": {"Dockerfile": dockerfile, "a.txt": uuid.uuid4().hex}},
                         mode="cluster-buildkit",
                         extra_build_yaml=f"spec:\n  secrets:\n    tok: {secret}\n")
    out = subprocess.run([sys.executable, "-m", "farm.cli", "build", "--project", str(proj), "--json"],
                         capture_output=True, text=True, env=os.environ.copy(), cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr
    assert secret not in out.stdout + out.stderr
    (b,) = json.loads(out.stdout)["builds"]
    assert b["status"] == "built"

    # While a job waits, Redis holds its secrets sealed: a job's secrets key as a submitter writes it.
    admin = redis.Redis.from_url(stack_env["FARM_REDIS_ADMIN_URL"] + "/0")
    from farm.jobs import JobStore
    from farm.sealing import seal
    store = JobStore(redis.Redis.from_url(stack_env["FARM_BROKER_URL"], decode_responses=True))
    job = uuid.uuid4().hex
    store.put_secrets(job, {"sealed": seal(store.sealing_key() or stack_env["FARM_SEALING_PUBLIC_KEY"],
                                           {"tok": secret}, job)}, ttl=60)
    assert secret.encode() not in repr(admin.hgetall(keys.secrets(job))).encode()
    store.drop_secrets(job)

    time.sleep(2)                                     # appendfsync everysec
    admin.save()                                      # and an RDB snapshot of everything now
    needles = [secret.encode()]
    state = Path(stack_env["FARM_STATE_DIR"])
    assert broker_holds(stack_env, secret) == []
    assert (state / "redis" / "dump.rdb").is_file() and any((state / "redis").rglob("*.aof"))
    assert files_holding(state / "redis", needles) == []
    assert files_holding(state, needles) == []        # logs, configs, contexts, worker dir, buildkit root
    buildkit_root = state / "buildkit"
    assert buildkit_root.is_dir()
    assert files_holding(buildkit_root, needles) == []
