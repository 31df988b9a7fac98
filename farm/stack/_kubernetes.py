"""The stack's optional ``kubernetes`` service: a real single-node cluster on 127.0.0.1.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler (built from the Go module proxy by
scripts/install-kubernetes.sh), then a node: Debian's containerd with CRI and runc, Debian's CNI
bridge plugin, and a kubelet. Pods really run, pulling from the stack's registry. Stopping it
leaves the host as it was: no process, mount, bridge, address, cgroup or changed sysctl.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import subprocess
from dataclasses import asdict
from typing import Any

import httpx

from farm.errors import StackError
from farm.stack import _configs
from farm.stack import _kubernetes_configs as kc
from farm.stack import _kubernetes_host as host
from farm.stack._go_tools import run_install_script
from farm.stack._kubernetes_pki import cert_specs, ensure_pki
from farm.stack._mounts import detach, mounts_under
from farm.stack._packages import which
from farm.stack._pushed_image import ensure_pushed, file_tar
from farm.stack._services import Service, Unit, child_env, http_status, registry_password, unix_answers
from farm.stack._state import StackPaths, StackSettings

KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "pause")


# --- credentials ------------------------------------------------------------------------------

def tokens(layout: kc.KubeLayout) -> kc.KubeTokens:
    """The static tokens, generated once into the state directory (0600)."""
    path = layout.file("tokens.json")
    try:
        return kc.KubeTokens(**json.loads(path.read_text()))
    except FileNotFoundError:
        pass
    except (ValueError, TypeError) as exc:
        raise StackError(f"{path} is corrupt ({exc}); run `farm stack down` and remove it") from None
    made = kc.KubeTokens(*(secrets.token_urlsafe(32) for _ in range(4)))
    _configs.write_if_changed(path, json.dumps(asdict(made)) + "\n", 0o600)
    return made


# --- probes -----------------------------------------------------------------------------------

def api_get(layout: kc.KubeLayout, token: str, path: str) -> tuple[int, Any] | None:
    """GET an API path as ``token``; (status, JSON body) or None when the API server is not answering."""
    try:
        tls = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
        with httpx.Client(verify=tls, timeout=3.0, trust_env=False) as client:
            r = client.get(layout.apiserver_url + path, headers={"Authorization": f"Bearer {token}"})
    except (httpx.HTTPError, OSError):  # OSError: no CA yet
        return None
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, r.text


def https_ok(url: str) -> bool:
    """A control-plane component's /healthz (self-signed serving certificate)."""
    try:
        with httpx.Client(verify=False, timeout=2.0, trust_env=False) as client:
            return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def node_ready(layout: kc.KubeLayout, admin_token: str) -> bool:
    """The node reports Ready and the default ServiceAccount exists: pods can be created and run."""
    if http_status(f"http://127.0.0.1:{layout.ports.kubelet_healthz}/healthz") != 200:
        return False
    got = api_get(layout, admin_token, f"/api/v1/nodes/{layout.net.node_name}")
    if got is None or got[0] != 200:
        return False
    conditions = got[1].get("status", {}).get("conditions", [])
    if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        return False
    sa = api_get(layout, admin_token, "/api/v1/namespaces/default/serviceaccounts/default")
    return sa is not None and sa[0] == 200


# --- preparing --------------------------------------------------------------------------------

def ensure_binaries(paths: StackPaths) -> None:
    missing = [b for b in KUBE_BINARIES if not os.access(kc.kube_bin(b), os.X_OK)]
    if missing or not os.access(kc.etcd_bin(), os.X_OK):
        run_install_script("install-kubernetes.sh", paths.log("install-kubernetes"))
    still = [str(kc.kube_bin(b)) for b in KUBE_BINARIES if not os.access(kc.kube_bin(b), os.X_OK)]
    if not os.access(kc.etcd_bin(), os.X_OK):
        still.append(str(kc.etcd_bin()))
    if still:
        raise StackError(f"scripts/install-kubernetes.sh ran but {', '.join(still)} is missing")


def pause_rootfs() -> bytes:
    return file_tar({"pause": (kc.kube_bin("pause").read_bytes(), 0o755)})


def ensure_pause_image(paths: StackPaths, settings: StackSettings) -> str:
    """The node's sandbox image: the static pause program, in the stack's registry."""
    return ensure_pushed(settings, registry_password(paths), paths.docker_socket, kc.PAUSE_REPO, kc.PAUSE_TAG,
                         pause_rootfs, ['ENTRYPOINT ["/pause"]'])


def write_files(layout: kc.KubeLayout, toks: kc.KubeTokens, password: str) -> None:
    w = _configs.write_if_changed
    ca = layout.pki / "ca.crt"
    server = layout.apiserver_url
    w(layout.file("tokens.csv"), kc.token_csv(toks, layout.net.node_name), 0o600)
    w(layout.paths.kubeconfig, kc.kubeconfig(server, ca, "farm-admin", toks.admin), 0o600)
    w(layout.file("controller-manager.kubeconfig"),
      kc.kubeconfig(server, ca, "system:kube-controller-manager", toks.controller_manager), 0o600)
    w(layout.file("scheduler.kubeconfig"), kc.kubeconfig(server, ca, "system:kube-scheduler", toks.scheduler),
      0o600)
    w(layout.file("kubelet.kubeconfig"),
      kc.kubeconfig(server, ca, f"system:node:{layout.net.node_name}", toks.node), 0o600)
    w(layout.file("kubelet.json"), kc.kubelet_config(layout))
    runc = which("runc") or "/usr/sbin/runc"
    w(layout.file("containerd.toml"), kc.node_containerd_toml(layout, runc, password), 0o600)
    w(layout.certs_d / layout.registry / "hosts.toml", kc.registry_hosts_toml(layout.registry))
    w(layout.cni_conf_dir / "10-farm.conflist", kc.cni_conflist(layout))


def prepare(paths: StackPaths, settings: StackSettings, layout: kc.KubeLayout) -> None:
    if os.geteuid() != 0:
        raise StackError("kubernetes runs a kubelet as root in the local stack; run `farm stack up` as root")
    host.ensure_node_packages()
    ensure_binaries(paths)
    ensure_pause_image(paths, settings)
    layout.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    layout.etcd_data.mkdir(mode=0o700, exist_ok=True)
    for d in (layout.run, layout.kubelet_root, layout.pod_logs, layout.ipam_dir):
        d.mkdir(parents=True, exist_ok=True)
    ensure_pki(layout.pki, cert_specs(kc.SERVICE_IP))
    write_files(layout, tokens(layout), registry_password(paths))
    host.record_host(layout.file("host.json"), layout.net.node_ip)
    host.make_cgroup_root(layout.cgroup_root)


# --- stopping ---------------------------------------------------------------------------------

def _ctr(layout: kc.KubeLayout, *args: str) -> str:
    """ctr's output, or "" if it fails or hangs: ``cleanup`` then kills what is left the hard way."""
    argv = [which("ctr") or "ctr", "--address", str(layout.containerd_socket), "--namespace", "k8s.io", *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False,
                              timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout


def remove_pods(layout: kc.KubeLayout) -> None:
    """With the kubelet stopped and containerd still up: kill and delete every pod container and
    sandbox, so their shims exit and containerd unmounts their root filesystems."""
    if not unix_answers(layout.containerd_socket):
        return
    tasks = _ctr(layout, "tasks", "ls", "-q").split()
    for task in tasks:
        _ctr(layout, "tasks", "kill", "--all", "--signal", "SIGKILL", task)
    for task in tasks:
        _ctr(layout, "tasks", "rm", "--force", task)
    containers = _ctr(layout, "containers", "ls", "-q").split()
    for container in containers:
        _ctr(layout, "containers", "rm", container)
    host.forget_pods(containers, layout.pod_logs)


def task_ids(layout: kc.KubeLayout) -> list[str]:
    """Containers whose shim state is still in our run dir (their containerd or shim died)."""
    try:
        return [d.name for d in (layout.containerd_state / "io.containerd.runtime.v2.task" / "k8s.io").iterdir()]
    except OSError:
        return []


def cleanup(layout: kc.KubeLayout) -> None:
    """After every unit stopped: what may still be left by a node that died, then the host changes."""
    host.kill_pids(host.shim_pids(layout.containerd_socket))
    problems = [f"cgroup {c}" for c in host.remove_cgroup_root(layout.cgroup_root)]
    ids = task_ids(layout)
    host.forget_pods(ids, layout.pod_logs)
    for sock in host.shim_sockets(layout.containerd_socket, "k8s.io", ids):
        sock.unlink(missing_ok=True)
    problems += detach(mounts_under(layout.run, layout.containerd_root))
    problems += host.restore_host(layout.file("host.json"), layout.net.node_ip, layout.net.bridge)
    if problems:
        raise StackError(f"kubernetes stopped but could not undo: {', '.join(problems)}")
    shutil.rmtree(layout.run, ignore_errors=True)


# --- the service ------------------------------------------------------------------------------

def kubernetes_service(paths: StackPaths, settings: StackSettings) -> Service:
    layout = kc.KubeLayout.of(paths, settings)
    ports = layout.ports

    def admin_token() -> str:
        return tokens(layout).admin

    def apiserver_ready() -> bool:
        got = api_get(layout, admin_token(), "/readyz")
        return got is not None and got[0] == 200

    env = child_env(("KUBE", "ETCD"))
    units = (
        Unit("etcd", kc.etcd_argv(layout), tcp_port=ports.etcd_client, env=env, stop_timeout=20.0,
             ready=lambda: http_status(f"http://127.0.0.1:{ports.etcd_client}/health") == 200),
        Unit("kube-apiserver", kc.apiserver_argv(layout), ready=apiserver_ready, tcp_port=ports.apiserver,
             env=env, start_timeout=90.0, stop_timeout=20.0),
        Unit("kube-controller-manager", kc.controller_manager_argv(layout), tcp_port=ports.controller_manager,
             ready=lambda: https_ok(f"https://127.0.0.1:{ports.controller_manager}/healthz"),
             env=env, start_timeout=60.0),
        Unit("kube-scheduler", kc.scheduler_argv(layout), tcp_port=ports.scheduler,
             ready=lambda: https_ok(f"https://127.0.0.1:{ports.scheduler}/healthz"), env=env,
             start_timeout=60.0),
        Unit("kube-containerd", kc.containerd_argv(layout, which("containerd") or "containerd"),
             ready=lambda: unix_answers(layout.containerd_socket), unix_socket=layout.containerd_socket,
             env=env, stop_timeout=20.0, before_stop=lambda: remove_pods(layout)),
        Unit("kubelet", kc.kubelet_argv(layout), ready=lambda: node_ready(layout, admin_token()),
             tcp_port=ports.kubelet_healthz, env=env, start_timeout=120.0, stop_timeout=20.0),
    )
    return Service("kubernetes", layout.apiserver_url, ("containerd", "runc"), units,
                   prepare=lambda: prepare(paths, settings, layout), cleanup=lambda: cleanup(layout))

