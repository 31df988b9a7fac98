"""What each stack service is: the processes it runs, the files it needs, how to tell it is ready.

A service is one or more units; a unit is one process with its own pidfile and log. Only
``docker`` has two (a private containerd, then dockerd talking to it), so that two stacks never
share a containerd, a namespace or a socket.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
import httpx

from farm.errors import StackError
from farm.stack import _configs, _credentials
from farm.stack._go_tools import cache_dir
from farm.stack._packages import search_path, which
from farm.stack._state import REGISTRY_USER, StackPaths, StackSettings

BUILDKIT_VERSION = "v0.23.2"


@dataclass(frozen=True)
class Unit:
    """One process of a service."""

    name: str
    argv: tuple[str, ...]
    ready: Callable[[], bool]
    start_timeout: float = 20.0
    stop_timeout: float = 10.0
    env: dict[str, str] | None = None
    tcp_port: int | None = None
    unix_socket: Path | None = None
    before_stop: Callable[[], None] | None = None  # run while this unit still runs, before SIGTERM
    umask: int = -1                                # -1: ours; 0o077 where its files hold data or credentials


@dataclass(frozen=True)
class Service:
    name: str
    address: str
    binaries: tuple[str, ...]
    units: tuple[Unit, ...]
    prepare: Callable[[], None] = field(default=lambda: None)
    cleanup: Callable[[], None] = field(default=lambda: None)  # after all units stopped: undo side effects


# --- readiness probes -------------------------------------------------------------------------

def redis_ping(port: int, auth: tuple[str, str] | None = None) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            if auth is not None:
                s.sendall(f"AUTH {auth[0]} {auth[1]}\r\n".encode())
                if not s.recv(64).startswith(b"+OK"):
                    return False
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def http_status(url: str, *, uds: Path | None = None, auth: tuple[str, str] | None = None) -> int | None:
    transport = httpx.HTTPTransport(uds=str(uds)) if uds else None
    try:
        with httpx.Client(transport=transport, timeout=2.0, trust_env=False) as client:
            return client.get(url, auth=auth).status_code
    except httpx.HTTPError:
        return None


def unix_answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1.0)
            s.connect(str(path))
        return True
    except OSError:
        return False


def buildkit_bin(name: str) -> Path:
    return cache_dir() / f"buildkit-{BUILDKIT_VERSION}" / "bin" / name


def buildctl_answers(paths: StackPaths) -> bool:
    if not unix_answers(paths.buildkit_socket):
        return False
    try:
        proc = subprocess.run([str(buildkit_bin("buildctl")), "--addr", f"unix://{paths.buildkit_socket}",
                               "debug", "workers"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


# --- environment for children -----------------------------------------------------------------

def child_env(drop_prefixes: tuple[str, ...] = ()) -> dict[str, str]:
    """Our environment with sbin on PATH, minus variables that would override generated config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop_prefixes)}
    env["PATH"] = search_path()
    return env


def _require_root(service: str) -> None:
    if os.geteuid() != 0:
        raise StackError(f"{service} runs as root in the local stack; run `farm stack up` as root "
                         f"or leave {service} out")


# --- credentials ------------------------------------------------------------------------------

def private(directory: Path) -> None:
    """`directory` 0700 and every file in it 0600 (files an older stack wrote world-readable)."""
    os.chmod(directory, 0o700)
    for root, dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o600)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o700)


def registry_password(paths: StackPaths) -> str:
    """The registry password, generated once into the state directory (mode 0600)."""
    try:
        return paths.registry_password.read_text().strip()
    except FileNotFoundError:
        pass
    paths.registry_password.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    fd = os.open(paths.registry_password, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return password


def _secret_file(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = secrets.token_hex(32)
        _configs.write_if_changed(path, value + "\n", 0o600)
        return value


# The registry checks the bcrypt hash on every request: at the usual cost 10 that is ~80 ms of CPU
# per request. The password is 32 random characters, so a low cost loses no real protection.
BCRYPT_ROUNDS = 4


def _htpasswd_current(paths: StackPaths, password: str) -> bool:
    try:
        user, _, hashed = paths.htpasswd.read_text().strip().partition(":")
    except FileNotFoundError:
        return False
    try:
        return (user == REGISTRY_USER and hashed.startswith(f"$2b${BCRYPT_ROUNDS:02d}$")
                and bcrypt.checkpw(password.encode(), hashed.encode()))
    except ValueError:
        return False


# --- the services -----------------------------------------------------------------------------

def build_services(paths: StackPaths, settings: StackSettings) -> dict[str, Service]:
    """Every service this stack can run, in start order."""
    from farm.stack._kubernetes import kubernetes_service  # it builds on this module's Service and probes

    return {s.name: s for s in (
        _redis(paths, settings), _registry(paths, settings), _docker(paths, settings),
        _flower(paths, settings), _metrics(paths, settings), _buildkitd(paths, settings),
        kubernetes_service(paths, settings),
    )}


def _redis(paths: StackPaths, settings: StackSettings) -> Service:
    conf = paths.config("redis.conf")

    def prepare() -> None:
        paths.redis_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        private(paths.redis_dir)          # its AOF and RDB hold the farm's data: 0600 in 0700
        _configs.write_if_changed(paths.redis_dir / "users.acl", _credentials.acl_file(paths), 0o600)
        _configs.write_if_changed(conf, _configs.redis_conf(paths, settings))

    port = settings.redis_port
    unit = Unit("redis", (which("redis-server") or "redis-server", str(conf)),
                ready=lambda: redis_ping(port, ("admin", _credentials.redis_password(paths, "admin"))),
                tcp_port=port, stop_timeout=30.0, umask=0o077)
    return Service("redis", f"127.0.0.1:{port}", ("redis-server",), (unit,), prepare)


def _registry(paths: StackPaths, settings: StackSettings) -> Service:
    conf = paths.config("registry.yml")

    def prepare() -> None:
        password = registry_password(paths)
        if not _htpasswd_current(paths, password):
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
            _configs.write_if_changed(paths.htpasswd, _configs.htpasswd_line(REGISTRY_USER, hashed), 0o600)
        secret = _secret_file(paths.registry_secret)
        _configs.write_if_changed(conf, _configs.registry_yml(paths, settings, secret), 0o600)
        os.chmod(conf, 0o600)             # it holds the registry's http secret
        _configs.write_if_changed(paths.docker_config / "config.json",
                                  _configs.docker_client_config(settings, password), 0o600)

    url = f"http://{settings.registry}/v2/"
    unit = Unit("registry", (which("docker-registry") or "/usr/bin/docker-registry", "serve", str(conf)),
                ready=lambda: http_status(url) == 401, tcp_port=settings.registry_port,
                env=child_env(("REGISTRY_",)))
    return Service("registry", settings.registry, ("docker-registry",), (unit,), prepare)


def _docker(paths: StackPaths, settings: StackSettings) -> Service:
    ctr_conf = paths.config("containerd.toml")
    daemon_json = paths.config("daemon.json")
    sock = paths.docker_socket

    def prepare() -> None:
        _require_root("docker")
        paths.run.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths.docker_dir.mkdir(parents=True, exist_ok=True)
        _configs.write_if_changed(ctr_conf, _configs.containerd_toml(paths))
        _configs.write_if_changed(daemon_json, _configs.dockerd_json())

    containerd = Unit(
        "containerd", (which("containerd") or "containerd", "--config", str(ctr_conf)),
        ready=lambda: unix_answers(paths.containerd_socket), unix_socket=paths.containerd_socket,
        env=child_env(), stop_timeout=15.0)
    dockerd = Unit(
        "docker",
        (which("dockerd") or "dockerd",
         "--config-file", str(daemon_json),
         "-H", f"unix://{sock}",
         "--containerd", str(paths.containerd_socket),
         "--data-root", str(paths.docker_dir / "data"),
         "--exec-root", str(paths.run / "docker"),
         "--pidfile", str(paths.run / "dockerd.pid"),
         "--iptables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none",
         "--insecure-registry", settings.registry),
        ready=lambda: http_status("http://docker/_ping", uds=sock) == 200,
        unix_socket=sock, env=child_env(("DOCKER_",)), start_timeout=60.0, stop_timeout=30.0)
    return Service("docker", f"unix://{sock}", ("dockerd", "containerd", "runc"), (containerd, dockerd),
                   prepare)


def _flower(paths: StackPaths, settings: StackSettings) -> Service:
    """Flower with basic auth (its API too: an unauthenticated revoke is refused), on Redis as the
    `flower` ACL user. Credentials reach it in its environment, never on its command line."""
    def prepare() -> None:
        if importlib.util.find_spec("flower") is None:
            raise StackError(f"flower is not installed for {sys.executable}; install the worker extras "
                             "(pip install 'farm[worker]') or leave flower out")

    port = settings.flower_port
    env = child_env(("FLOWER_", "CELERY_"))
    env["CELERY_BROKER_URL"] = _credentials.redis_url(paths, settings.redis_port, "flower")
    env["FLOWER_BASIC_AUTH"] = _credentials.flower_auth(paths)
    unit = Unit("flower",
                (sys.executable, "-m", "celery", "flower", "--address=127.0.0.1", f"--port={port}"),
                ready=lambda: http_status(f"http://127.0.0.1:{port}/healthcheck") == 200,
                tcp_port=port, env=env, start_timeout=30.0)
    return Service("flower", f"http://127.0.0.1:{port}", (), (unit,), prepare)


def _metrics(paths: StackPaths, settings: StackSettings) -> Service:
    """The farm's Prometheus endpoint (`python -m farm.metrics`): it reads the stack's Redis (as the
    read-mostly `flower` user) on each scrape. Like Flower's /metrics it has no authentication: it
    binds 127.0.0.1 only, and shows counts, never a credential."""
    port = settings.metrics_port
    env = child_env(("FARM_",))
    env["FARM_BROKER_URL"] = _credentials.redis_url(paths, settings.redis_port, "flower")
    unit = Unit("metrics", (sys.executable, "-m", "farm.metrics", "--host", "127.0.0.1", "--port", str(port)),
                ready=lambda: http_status(f"http://127.0.0.1:{port}/metrics") == 200, tcp_port=port, env=env)
    return Service("metrics", f"http://127.0.0.1:{port}/metrics", (), (unit,))


def _buildkitd(paths: StackPaths, settings: StackSettings) -> Service:
    conf = paths.config("buildkitd.toml")

    def prepare() -> None:
        for name in ("buildkitd", "buildctl"):
            if not os.access(buildkit_bin(name), os.X_OK):
                raise StackError(f"{buildkit_bin(name)} is missing; run scripts/install-buildkit.sh first")
        _require_root("buildkitd")
        paths.run.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths.buildkit_dir.mkdir(parents=True, exist_ok=True)
        _configs.write_if_changed(conf, _configs.buildkitd_toml(paths, settings))

    sock = paths.buildkit_socket
    unit = Unit("buildkitd",
                (str(buildkit_bin("buildkitd")), "--config", str(conf), "--root", str(paths.buildkit_dir),
                 "--addr", f"unix://{sock}", "--oci-worker=true", "--containerd-worker=false"),
                ready=lambda: buildctl_answers(paths), unix_socket=sock,
                env=child_env(("BUILDKIT_",)), start_timeout=60.0, stop_timeout=20.0)
    return Service("buildkitd", f"unix://{sock}", ("runc",), (unit,), prepare)
