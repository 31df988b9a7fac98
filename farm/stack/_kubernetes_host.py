"""What a kubelet node changes on the host, recorded before it starts and undone when it stops:
sysctls (the kubelet's kernel tunables, the bridge plugin's ip_forward), the node's /32 on ``lo``,
the pod bridge, the kubelet's cgroup root, and the one path the kubelet writes whatever its root
dir (``/var/lib/kubelet/device-plugins``). Also the Debian packages a node needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from farm.errors import StackError
from farm.stack._packages import _no_service_starts, search_path, which

# The kubelet sets the first five (setupKernelTunables); the bridge plugin turns on ip_forward.
SYSCTLS = ("vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
           "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.ip_forward")
# Paths written whatever our config says: the kubelet's device plugins and container log links,
# libcni's result cache, and containerd 1.6's shim sockets (/run/containerd/s/<sha256>).
HOST_PATHS = (Path("/var/lib/kubelet"), Path("/var/lib/kubelet/device-plugins"),
              Path("/var/lib/kubelet/device-plugins/kubelet.sock"),
              Path("/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint"),
              Path("/var/log/containers"), Path("/var/lib/cni"), Path("/var/lib/cni/results"),
              Path("/run/containerd"), Path("/run/containerd/s"))
CONTAINER_LOG_LINKS = Path("/var/log/containers")
CNI_RESULTS = Path("/var/lib/cni/results")
SHIM_SOCKETS = Path("/run/containerd/s")
CGROUP_V1 = Path("/sys/fs/cgroup")
# path that must exist -> Debian package providing it
NODE_PACKAGES = {
    "/usr/bin/containerd": "containerd",
    "/usr/bin/ctr": "containerd",
    "/usr/sbin/runc": "runc",
    "/usr/lib/cni/bridge": "containernetworking-plugins",
    "/usr/lib/cni/host-local": "containernetworking-plugins",
    "/usr/lib/cni/loopback": "containernetworking-plugins",
    "/usr/bin/openssl": "openssl",
    "/usr/sbin/ip": "iproute2",
}


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls(names: tuple[str, ...] = SYSCTLS) -> dict[str, str]:
    out = {}
    for name in names:
        with contextlib.suppress(OSError):
            out[name] = _sysctl_path(name).read_text().strip()
    return out


def write_sysctls(values: dict[str, str]) -> list[str]:
    """Write each value; returns the names that could not be written."""
    failed = []
    for name, value in values.items():
        try:
            path = _sysctl_path(name)
            if path.read_text().strip() != value:
                path.write_text(value + "\n")
        except OSError:
            failed.append(name)
    return failed


@dataclass
class HostRecord:
    """What was there before the node started, so stop restores exactly that (kept in the state dir)."""

    sysctls: dict[str, str] = field(default_factory=dict)
    lo_address_added: bool = False
    created: list[str] = field(default_factory=list)  # HOST_PATHS paths that did not exist

    @classmethod
    def load(cls, path: Path) -> HostRecord | None:
        try:
            data = json.loads(path.read_text())
            return cls(dict(data["sysctls"]), bool(data["lo_address_added"]), list(data["created"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise StackError(f"{path} is corrupt ({exc}); fix or remove it") from None

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)


def record_host(path: Path, node_ip: str) -> HostRecord:
    """Note the host's state before the node changes it; an earlier record (a node that was never
    stopped) wins, since it holds the values from before that node."""
    record = HostRecord.load(path)
    if record is None:
        record = HostRecord(sysctls=read_sysctls(), lo_address_added=False,
                            created=[str(p) for p in HOST_PATHS if not os.path.lexists(p)])
    if not lo_has(node_ip):
        _ip("addr", "add", f"{node_ip}/32", "dev", "lo")
        record.lo_address_added = True
    record.save(path)
    return record


def restore_host(path: Path, node_ip: str, bridge: str) -> list[str]:
    """Undo what ``record_host`` noted and the node did; returns what could not be undone."""
    problems: list[str] = []
    delete_link(bridge)
    record = HostRecord.load(path)
    if record is None:
        return problems
    failed = write_sysctls(record.sysctls)
    problems += [f"sysctl {n}" for n in failed]
    if record.lo_address_added and lo_has(node_ip):
        _ip("addr", "del", f"{node_ip}/32", "dev", "lo")
    for p in sorted(map(Path, record.created), key=lambda p: -len(p.parts)):
        with contextlib.suppress(FileNotFoundError, OSError):
            if p.is_dir() and not p.is_symlink():
                p.rmdir()  # only if empty: never remove what someone else put there since
            else:
                p.unlink()
    path.unlink(missing_ok=True)
    return problems


def forget_pods(ids: list[str], pod_logs: Path) -> None:
    """Drop what the kubelet and libcni keep outside our dirs about pods that were removed without
    their help (a stopped kubelet, a CNI DEL that never ran): CNI results named
    ``<network>-<sandbox id>-<ifname>`` and ``/var/log/containers`` links into our pod log dir."""
    wanted = {f"-{i}-" for i in ids}
    with contextlib.suppress(OSError):
        for f in CNI_RESULTS.iterdir():
            if any(w in f.name for w in wanted):
                f.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        for link in CONTAINER_LOG_LINKS.iterdir():
            if link.is_symlink() and Path(os.readlink(link)).is_relative_to(pod_logs):
                link.unlink(missing_ok=True)


# --- network ----------------------------------------------------------------------------------

def _ip(*args: str) -> str:
    proc = subprocess.run([which("ip") or "/usr/sbin/ip", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise StackError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc.stdout


def lo_has(address: str) -> bool:
    return f" {address}/" in _ip("-o", "-4", "addr", "show", "dev", "lo")


def delete_link(name: str) -> None:
    if Path("/sys/class/net", name).exists():
        _ip("link", "del", name)


# --- cgroups (v1: one directory per hierarchy) ------------------------------------------------

def _hierarchies() -> list[Path]:
    try:
        return [p for p in CGROUP_V1.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def make_cgroup_root(root: str) -> None:
    """The kubelet requires its --cgroup-root to exist in every hierarchy; cpuset needs cpus/mems."""
    for h in _hierarchies():
        d = h / root.lstrip("/")
        d.mkdir(exist_ok=True)
        if h.name == "cpuset":
            for f in ("cpuset.cpus", "cpuset.mems"):
                if not (d / f).read_text().strip():
                    (d / f).write_text((h / f).read_text())


def cgroup_pids(root: str) -> set[int]:
    pids: set[int] = set()
    for h in _hierarchies():
        d = h / root.lstrip("/")
        if not d.is_dir():
            continue
        for procs in d.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(x) for x in procs.read_text().split())
    return pids


def remove_cgroup_root(root: str) -> list[str]:
    """SIGKILL whatever still runs in our cgroups (pod processes whose shim died), then rmdir them."""
    for _ in range(50):
        pids = cgroup_pids(root)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    left = []
    for h in _hierarchies():
        d = h / root.lstrip("/")
        if not d.is_dir():
            continue
        for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) + [d]:
            try:
                sub.rmdir()
            except OSError:
                left.append(str(sub))
    return left


# --- containerd shims -------------------------------------------------------------------------

def shim_pids(containerd_socket: Path) -> list[int]:
    """Shims started by our containerd (they name its socket in their argv, and outlive it)."""
    wanted = str(containerd_socket).encode()
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and wanted in argv:
            found.append(int(d.name))
    return found


def shim_sockets(containerd_socket: Path, namespace: str, ids: list[str]) -> list[Path]:
    """Where containerd 1.6 puts a sandbox's shim socket: /run/containerd/s/sha256(<address>/<ns>/<id>).
    A shim that is killed leaves its socket behind."""
    return [SHIM_SOCKETS / hashlib.sha256(f"{containerd_socket}/{namespace}/{i}".encode()).hexdigest()
            for i in ids]


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# --- packages ---------------------------------------------------------------------------------

def missing_node_packages() -> list[str]:
    return sorted({pkg for path, pkg in NODE_PACKAGES.items() if not os.path.exists(path)})


def ensure_node_packages() -> None:
    """apt-get install what the node needs (containerd, runc, CNI plugins, openssl, iproute2)."""
    packages = missing_node_packages()
    if not packages:
        return
    if os.geteuid() != 0 or shutil.which("apt-get", path=search_path()) is None:
        raise StackError(f"the kubernetes node needs {', '.join(packages)}; install them as root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", PATH=search_path())
    with _no_service_starts():
        for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *packages]):
            proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
                raise StackError(f"`{' '.join(argv)}` failed (exit {proc.returncode}):\n{tail}")
    if missing_node_packages():
        raise StackError(f"installed {', '.join(packages)} but {', '.join(missing_node_packages())} is missing")
