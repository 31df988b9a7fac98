"""docker-compose.yml validated by Docker Compose itself (Debian's docker-compose), and the worker
image (deploy/worker.Dockerfile) built from the repo on the stack's REAL dockerd, from bases this test
makes (nothing can be pulled here): a Python base from the machine's own interpreter, and a
"buildkit" image holding the buildctl the stack built."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from farm.stack._packages import ensure_binaries, search_path
from tests.conftest import ROOT

pytestmark = pytest.mark.integration
STACK_DEFAULT_PORTS = {"6390", "5050", "5555", "9808"}


def port_pair(p: str | dict[str, object]) -> tuple[str, str]:
    """(published, target) of a port entry, long form (Compose v2) or `ip:published:target/proto` (v1)."""
    if isinstance(p, dict):
        return str(p.get("published")), str(p.get("target"))
    *_, published, target = str(p).split("/")[0].split(":")
    return published, target


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    ensure_binaries(["docker-compose"])
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FARM_COMPOSE", "FLOWER_"))}
    return subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "--project-directory", str(ROOT),
                           "config"], capture_output=True, text=True, env={**clean, **env,
                                                                             "PATH": search_path()},
                          timeout=120, check=False)


def compose_init(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "deploy/compose-init.sh")], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "PYTHON": sys.executable, **env}, timeout=60, check=False)


def test_compose_file_is_valid_and_wired(tmp_path: Path) -> None:
    assert compose_init(FARM_COMPOSE_DIR=str(tmp_path)).returncode == 0
    out = compose_config({"FARM_COMPOSE_DIR": str(tmp_path), "FLOWER_BASIC_AUTH": "admin:s3cret"})
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    services = cfg["services"]
    assert set(services) == {"redis", "registry", "buildkitd", "worker", "flower", "metrics"}
    assert "--appendonly" in services["redis"]["command"] and "noeviction" in services["redis"]["command"]
    published = {port_pair(p)[0] for s in services.values() for p in s.get("ports", [])}
    assert published and not published & STACK_DEFAULT_PORTS
    worker = services["worker"]
    # The worker and buildkitd reach the registry at the address the host (and the project) uses.
    assert worker["network_mode"] == services["buildkitd"]["network_mode"] == "service:registry"
    registry_port = services["registry"]["environment"]["REGISTRY_HTTP_ADDR"].rsplit(":", 1)[1]
    assert (registry_port, registry_port) in [port_pair(p) for p in services["registry"]["ports"]]
    # One context store: a host directory at the same absolute path in the worker as in the URL.
    store = f"{tmp_path}/contexts"
    assert worker["environment"]["FARM_CONTEXT_STORE"] == f"file://{store}"
    assert any(v.startswith(f"{store}:{store}") for v in worker["volumes"])
    assert worker["environment"]["BUILDKIT_HOST"] == "unix:///run/buildkit/buildkitd.sock"
    assert any(v.startswith("buildkit-run:/run/buildkit") for v in worker["volumes"])
    assert worker["healthcheck"]["test"][1:4] == ["python3", "-m", "workers.alive"]
    grace = worker["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > 60        # covers Celery's 60 s soft shutdown
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == "admin:s3cret"
    assert any("--persistent=True" == a for a in services["flower"]["command"])
    assert any(v.startswith("flower-data:") for v in services["flower"]["volumes"])
    # Redis loads the ACL file compose-init wrote, read-only; every client has its own user, from env
    # files, and no Redis URL (nor any password) is on a command line.
    redis_cmd = services["redis"]["command"]
    acl = redis_cmd[redis_cmd.index("--aclfile") + 1]
    assert f"{tmp_path}/redis/users.acl:{acl}:ro" in services["redis"]["volumes"]
    users = {"worker": ("FARM_BROKER_URL", "FARM_RESULT_BACKEND"), "flower": ("CELERY_BROKER_URL",),
             "metrics": ("FARM_BROKER_URL",)}
    expected = {"worker": "worker", "flower": "flower", "metrics": "flower"}
    passwords = {u: (tmp_path / f"secrets/redis-{u}.password").read_text().strip() for u in ("worker", "flower")}
    for name, variables in users.items():
        service = services[name]
        for var in variables:
            url = urlsplit(service["environment"][var])
            assert (url.username, url.hostname, url.port) == (expected[name], "redis", 6379), (name, var)
            assert url.password == passwords[expected[name]]
        assert not any("redis://" in str(a) or "--broker" in str(a) for a in service["command"]), name
    # The worker holds the sealing key compose-init made, read-only, where FARM_SEALING_KEY_FILE says.
    key = worker["environment"]["FARM_SEALING_KEY_FILE"]
    assert f"{tmp_path}/secrets/sealing.key:{key}:ro" in worker["volumes"]
    assert "sealing.key" not in str(services["flower"]) + str(services["metrics"])


def test_compose_refuses_to_run_without_its_directory_or_flower_auth(tmp_path: Path) -> None:
    out = compose_config({"FLOWER_BASIC_AUTH": "a:b"})
    assert out.returncode != 0 and "set FARM_COMPOSE_DIR to an absolute directory" in out.stderr
    out = compose_config({"FARM_COMPOSE_DIR": str(tmp_path), "FLOWER_BASIC_AUTH": "a:b"})
    assert out.returncode != 0 and "worker.env" in out.stderr          # compose-init has not run
    assert compose_init(FARM_COMPOSE_DIR=str(tmp_path)).returncode == 0
    out = compose_config({"FARM_COMPOSE_DIR": str(tmp_path)})
    assert out.returncode != 0 and "FLOWER_BASIC_AUTH" in out.stderr


# --- the worker image --------------------------------------------------------------------------

def _libs(binaries: list[Path]) -> set[Path]:
    """The shared libraries (and loader) these ELF files need, as ldd resolves them."""
    out: set[Path] = set()
    for b in binaries:
        text = subprocess.run(["ldd", str(b)], capture_output=True, text=True, check=False).stdout
        out.update(Path(p) for p in re.findall(r"(/\S+\.so[.\d]*)", text))
    return out


def python_rootfs(dest: Path) -> None:
    """The machine's Debian python3.11, its stdlib, the libraries it loads, and pip/setuptools/wheel
    (Debian's) and click (the only module `farm --help` needs beyond the stdlib)."""
    lib = Path("/usr/lib/python3.11")   # without EXTERNALLY-MANAGED, like the python:3.11-slim base
    shutil.copytree(lib, dest / "usr/lib/python3.11", symlinks=True,
                    ignore=shutil.ignore_patterns("test", "idlelib", "tkinter", "__pycache__", "EXTERNALLY-MANAGED"))
    (dest / "usr/bin").mkdir(parents=True)
    shutil.copy2("/usr/bin/python3.11", dest / "usr/bin/python3.11")
    os.symlink("python3.11", dest / "usr/bin/python3")
    for so in _libs([Path("/usr/bin/python3.11"), *lib.glob("lib-dynload/*.so")]):
        target = dest / so.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(so, target)                           # the file behind any symlink
    site = dest / "usr/lib/python3/dist-packages"
    site.mkdir(parents=True)
    debian = Path("/usr/lib/python3/dist-packages")
    for name in os.listdir(debian):
        if name.split("-")[0] in ("pip", "setuptools", "wheel", "pkg_resources", "_distutils_hack"):
            src = debian / name
            (shutil.copytree(src, site / name, symlinks=True) if src.is_dir() else shutil.copy2(src, site / name))
    import click
    shutil.copytree(Path(click.__file__).parent, site / "click", ignore=shutil.ignore_patterns("__pycache__"))


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {out.stdout[-3000:]}{out.stderr[-3000:]}")
    return out


def test_worker_image_builds_from_the_repo_and_runs(stack_env: dict[str, str], tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    base_ctx = tmp_path / "python-base"
    python_rootfs(base_ctx / "rootfs")
    (base_ctx / "Dockerfile").write_text(
        f"FROM {stack_env['FARM_BASE_IMAGE']}\nCOPY rootfs/ /\n"
        "ENV LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu\n")
    docker("build", "--network", "none", "-t", f"farmtest/python-base:{run}", str(base_ctx))
    bk_ctx = tmp_path / "buildkit"
    (bk_ctx / "usr/bin").mkdir(parents=True)
    shutil.copy2(stack_env.get("FARM_BUILDCTL") or shutil.which("buildctl") or "buildctl", bk_ctx / "usr/bin/buildctl")
    (bk_ctx / "Dockerfile").write_text(f"FROM {stack_env['FARM_BASE_IMAGE']}\nCOPY usr/ /usr/\n")
    docker("build", "--network", "none", "-t", f"farmtest/buildkit:{run}", str(bk_ctx))

    image = f"farmtest/farm-worker:{run}"
    try:
        built = docker("build", "--network", "none", "-f", "deploy/worker.Dockerfile", "-t", image,
                       "--build-arg", f"BASE=farmtest/python-base:{run}",
                       "--build-arg", f"BUILDKIT_IMAGE=farmtest/buildkit:{run}",
                       "--build-arg", "APT_PACKAGES=",
                       "--build-arg", "PIP_FLAGS=--no-deps --no-build-isolation --no-index", str(ROOT))
        # .dockerignore keeps .venv/ and .farm/ (hundreds of MB here) out of the build context.
        sent = re.search(r"Sending build context to Docker daemon\s+([\d.]+)([kMG]?B)", built.stdout)
        assert sent, built.stdout[:2000]
        size = float(sent.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[sent.group(2)]
        assert size < 20e6, sent.group(0)
        print(f"\nworker image build context: {sent.group(1)} {sent.group(2)}")

        def in_image(*argv: str) -> subprocess.CompletedProcess[str]:
            return docker("run", "--rm", "--network", "none", image, *argv, check=False, timeout=120)

        helped = in_image("farm", "--help")
        assert helped.returncode == 0, helped.stderr
        assert "publish" in helped.stdout and "gc" in helped.stdout and "worker" in helped.stdout
        assert in_image("id", "-u").stdout.strip() == "10001"
        assert "buildctl github.com/moby/buildkit" in in_image("buildctl", "--version").stdout
        assert in_image("ls", "-a", "/src").stdout.split() == [".", "..", "README.md", "farm", "pyproject.toml",
                                                               "workers"]
        dead = in_image("python3", "-m", "workers.alive", "60")
        assert dead.returncode == 1 and "no heartbeat in /tmp/farm-heartbeat" in dead.stderr
        alive = in_image("sh", "-c", "touch /tmp/farm-heartbeat && python3 -m workers.alive 60")
        assert alive.returncode == 0, alive.stderr
        cmd = docker("image", "inspect", "-f", "{{json .Config.Cmd}}", image).stdout.strip()
        assert cmd == '["farm","worker"]'
    finally:
        docker("rmi", "-f", image, f"farmtest/python-base:{run}", f"farmtest/buildkit:{run}", check=False)


def test_compose_init_writes_one_login_for_the_registry_and_the_clients(tmp_path: Path) -> None:
    import base64
    import json

    import bcrypt

    init = compose_init
    assert init(FARM_COMPOSE_DIR="relative/dir").returncode == 2
    d = tmp_path / "compose"
    out = init(FARM_COMPOSE_DIR=str(d), FARM_COMPOSE_REGISTRY_PORT="15999")
    assert out.returncode == 0, out.stderr
    password = (d / "auth/password").read_text().strip()
    user, _, hashed = (d / "auth/htpasswd").read_text().strip().partition(":")
    assert user == "farm" and bcrypt.checkpw(password.encode(), hashed.encode())
    auth = json.loads((d / "docker-config/config.json").read_text())["auths"]["127.0.0.1:15999"]["auth"]
    assert base64.b64decode(auth).decode() == f"farm:{password}"
    assert (d / "contexts").is_dir() and oct((d / "auth/password").stat().st_mode)[-3:] == "600"
    assert password not in out.stdout + out.stderr
    init(FARM_COMPOSE_DIR=str(d), FARM_COMPOSE_REGISTRY_PORT="15999")
    assert (d / "auth/password").read_text().strip() == password     # a second run keeps the login


def test_compose_init_makes_redis_users_that_a_real_redis_enforces(tmp_path: Path) -> None:
    """compose-init's ACL file loaded by a real redis-server (Debian's, as the stack's): anonymous
    clients refused, each service's env file and the producer's exports log in as their own user,
    with their own limits; the sealing key pair is one; no password is printed."""
    import socket
    import time

    import redis
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from farm import sealing

    d = tmp_path / "compose"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = compose_init(FARM_COMPOSE_DIR=str(d), FARM_COMPOSE_REDIS_PORT=str(port))
    assert out.returncode == 0, out.stderr
    secrets_dir = d / "secrets"
    passwords = [p.read_text().strip() for p in secrets_dir.glob("*.password")]
    assert len(passwords) == 5 and not any(p in out.stdout + out.stderr for p in passwords)
    for sub in ("secrets", "redis", "env"):
        assert oct((d / sub).stat().st_mode)[-3:] == "700", sub
    for f in [*secrets_dir.iterdir(), *(d / "env").iterdir()]:
        assert oct(f.stat().st_mode)[-3:] == "600", f
    assert not any(p in (d / "redis/users.acl").read_text() for p in passwords)      # hashes only

    ensure_binaries(["redis-server"])
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--aclfile", str(d / "redis/users.acl")], env={"PATH": search_path()},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):                # redis-py's own retries back off for minutes: a plain socket
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).set("x", "1")

        def env_file(name: str) -> dict[str, str]:
            lines = (d / f"env/{name}.env").read_text().splitlines()
            return dict(line.split("=", 1) for line in lines if line)

        def client(url: str) -> redis.Redis:
            return redis.Redis.from_url(url.replace("@redis:6379/", f"@127.0.0.1:{port}/"))

        worker = env_file("worker")
        assert client(worker["FARM_BROKER_URL"]).acl_whoami() == "worker"
        assert client(worker["FARM_RESULT_BACKEND"]).acl_whoami() == "worker"
        assert client(worker["FARM_BROKER_URL"]).lpush("q", "job") == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            client(worker["FARM_BROKER_URL"]).config_get("*")
        flower = client(env_file("flower")["CELERY_BROKER_URL"])
        assert flower.acl_whoami() == "flower" and flower.llen("q") == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            flower.hset("farm:job:x", "state", "done")
        assert client(env_file("metrics")["FARM_BROKER_URL"]).acl_whoami() == "flower"
        # The producer's exports, as a shell evaluates them.
        shell = subprocess.run(["bash", "-c", f'eval "$1"; echo "$FARM_BROKER_URL"; echo "$FARM_REDIS_ADMIN_URL"; '
                                f'echo "$FARM_SEALING_PUBLIC_KEY"', "_", out.stdout], capture_output=True,
                               text=True, check=True, timeout=30)
        producer, admin, public = shell.stdout.split()
        assert redis.Redis.from_url(producer).acl_whoami() == "producer"
        assert redis.Redis.from_url(admin).acl_whoami() == "admin"
        key = sealing.load_or_create(secrets_dir / "sealing.key")
        assert isinstance(key, X25519PrivateKey) and sealing.public_text(key) == public
        assert sealing.unseal(key, sealing.seal(public, {"t": "v"}, "job-1"), "job-1") == {"t": "v"}
    finally:
        server.terminate()
        server.wait(timeout=30)
    # A second run keeps every credential.
    again = compose_init(FARM_COMPOSE_DIR=str(d), FARM_COMPOSE_REDIS_PORT=str(port))
    assert again.stdout == out.stdout
    assert sorted(p.read_text().strip() for p in secrets_dir.glob("*.password")) == sorted(passwords)
