"""Where a stack keeps its files, and the settings it was started with.

Everything lives under the state directory, except unix sockets and dockerd's exec root: those
go under a short per-stack run directory (``/run/farm-<hash8>``) because a unix socket path is
limited to 108 bytes and a state directory can be arbitrarily deep.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from farm.errors import StackError

# "kubernetes" is the first of a block of KUBE_PORTS ports (API server, etcd, kubelet, ...).
DEFAULT_PORTS = {"redis": 6390, "registry": 5050, "flower": 5555, "kubernetes": 16443, "metrics": 9808}
PORT_ENV = {"redis": "FARM_REDIS_PORT", "registry": "FARM_REGISTRY_PORT", "flower": "FARM_FLOWER_PORT",
            "kubernetes": "FARM_KUBE_PORT", "metrics": "FARM_METRICS_PORT"}
KUBE_PORTS = 8
REGISTRY_USER = "farm"
BASE_IMAGE_REPO = "library/busybox"
BASE_IMAGE_TAG = "1.36"
_SOCKET_MAX = 100  # sun_path is 108 bytes including the NUL; keep a margin


def resolve_state_dir(state_dir: Path | None) -> Path:
    """``state_dir``, else ``$FARM_STATE_DIR``, else ``./.farm``; always absolute."""
    if state_dir is None:
        env = os.environ.get("FARM_STATE_DIR")
        state_dir = Path(env) if env else Path.cwd() / ".farm"
    return Path(os.path.abspath(os.path.expanduser(state_dir)))


def _run_base() -> Path:
    run = Path("/run")
    if run.is_dir() and os.access(run, os.W_OK):
        return run
    return Path(tempfile.gettempdir())


@dataclass(frozen=True)
class StackPaths:
    """Every file a stack reads or writes, derived from its state directory alone."""

    state: Path

    @property
    def key(self) -> str:
        return hashlib.sha256(str(self.state).encode()).hexdigest()[:8]

    @property
    def run(self) -> Path:
        return _run_base() / f"farm-{self.key}"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def lock(self) -> Path:
        return self.state / ".lock"

    @property
    def settings(self) -> Path:
        return self.state / "stack.json"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pidfile(self, service: str) -> Path:
        return self.pids / f"{service}.pid"

    # redis
    @property
    def redis_dir(self) -> Path:
        return self.state / "redis"

    # registry
    @property
    def registry_dir(self) -> Path:
        return self.state / "registry"

    @property
    def registry_password(self) -> Path:
        return self.registry_dir / "password"

    @property
    def registry_secret(self) -> Path:
        return self.registry_dir / "http-secret"

    @property
    def htpasswd(self) -> Path:
        return self.registry_dir / "htpasswd"

    @property
    def docker_config(self) -> Path:
        """The DOCKER_CONFIG directory clients use; its config.json carries the registry login."""
        return self.state / "docker-config"

    # docker
    @property
    def docker_dir(self) -> Path:
        return self.state / "docker"

    @property
    def docker_socket(self) -> Path:
        sock = self.state / "docker.sock"
        return sock if len(str(sock)) <= _SOCKET_MAX else self.run / "docker.sock"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd" / "containerd.sock"

    # buildkit
    @property
    def buildkit_dir(self) -> Path:
        return self.state / "buildkit"

    @property
    def buildkit_socket(self) -> Path:
        return self.run / "buildkitd.sock"

    def config(self, name: str) -> Path:
        return self.state / "config" / name

    # kubernetes: persistent parts (etcd, PKI, images) in the state dir; kubelet and the node's
    # containerd state (sockets, netns mounts, pod dirs) under the short run dir.
    @property
    def kube_dir(self) -> Path:
        return self.state / "kubernetes"

    @property
    def kube_run(self) -> Path:
        return self.run / "k8s"

    @property
    def kubeconfig(self) -> Path:
        return self.kube_dir / "admin.kubeconfig"


@dataclass(frozen=True)
class StackSettings:
    """The ports a stack was started with; written by ``up`` so ``env`` reports what is running."""

    redis_port: int
    registry_port: int
    flower_port: int
    kube_port: int = DEFAULT_PORTS["kubernetes"]
    metrics_port: int = DEFAULT_PORTS["metrics"]

    @classmethod
    def from_env(cls) -> StackSettings:
        ports: dict[str, int] = {}
        for service, default in DEFAULT_PORTS.items():
            var = PORT_ENV[service]
            raw = os.environ.get(var, "").strip()
            if not raw:
                ports[service] = default
                continue
            try:
                port = int(raw)
            except ValueError:
                raise StackError(f"{var}={raw!r} is not a port number") from None
            if not 1 <= port <= 65535:
                raise StackError(f"{var}={port} is out of range 1-65535")
            ports[service] = port
        if len(set(ports.values())) != len(ports):
            raise StackError(f"redis, registry, flower, kubernetes and metrics need different ports, got {ports}")
        kube = range(ports["kubernetes"], ports["kubernetes"] + KUBE_PORTS)
        clash = [s for s in ("redis", "registry", "flower", "metrics") if ports[s] in kube]
        if clash or kube.stop > 65536:
            raise StackError(f"FARM_KUBE_PORT={ports['kubernetes']} needs {KUBE_PORTS} free ports "
                             f"{kube.start}-{kube.stop - 1} clear of {', '.join(clash) or 'port 65535'}")
        return cls(ports["redis"], ports["registry"], ports["flower"], ports["kubernetes"], ports["metrics"])

    @classmethod
    def load(cls, path: Path) -> StackSettings | None:
        try:
            data = json.loads(path.read_text())
            return cls(int(data["redis_port"]), int(data["registry_port"]), int(data["flower_port"]),
                       int(data.get("kube_port", DEFAULT_PORTS["kubernetes"])),
                       int(data.get("metrics_port", DEFAULT_PORTS["metrics"])))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise StackError(f"{path} is corrupt ({exc}); run `farm stack down` and remove it") from None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    def port(self, service: str) -> int:
        return {"redis": self.redis_port, "registry": self.registry_port, "flower": self.flower_port,
                "kubernetes": self.kube_port, "metrics": self.metrics_port}[service]

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    @property
    def base_image(self) -> str:
        return f"{self.registry}/{BASE_IMAGE_REPO}:{BASE_IMAGE_TAG}"
