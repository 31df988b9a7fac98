"""The local cluster as data: where its files live, its ports and addresses, and the config files and
command lines of etcd, the control plane, the node's containerd and the kubelet. Pure functions of
``StackPaths`` and ``StackSettings``; ``_kubernetes`` does the I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from farm.stack._configs import _q
from farm.stack._go_tools import cache_dir
from farm.stack._state import KUBE_PORTS, REGISTRY_USER, StackPaths, StackSettings

KUBERNETES_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.16"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the first service address: the `kubernetes` Service
PAUSE_REPO = "farm/pause"
PAUSE_TAG = "1"
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
ADMIN_GROUP = "system:masters"


def kube_bin(name: str) -> Path:
    """A kubernetes binary (kube-apiserver, kubelet, pause, ...) built by scripts/install-kubernetes.sh."""
    return cache_dir() / f"kubernetes-{KUBERNETES_VERSION}" / "bin" / name


def etcd_bin() -> Path:
    return cache_dir() / f"etcd-{ETCD_VERSION}" / "bin" / "etcd"


@dataclass(frozen=True)
class KubePorts:
    """A block of KUBE_PORTS ports on 127.0.0.1 (the kubelet's on the node IP), from FARM_KUBE_PORT."""

    apiserver: int
    etcd_client: int
    etcd_peer: int
    controller_manager: int
    scheduler: int
    kubelet: int
    kubelet_healthz: int
    stream: int  # containerd's CRI stream server (exec, attach, port-forward)

    @classmethod
    def from_base(cls, base: int) -> KubePorts:
        ports = cls(*range(base, base + KUBE_PORTS))
        return ports


@dataclass(frozen=True)
class KubeNet:
    """Node name and addresses, derived from the stack's key so two stacks' nodes do not collide.

    The node IP is a /32 of our own on ``lo``: the kubelet refuses a loopback node IP, and an
    address on ``lo`` never leaves the machine."""

    node_name: str
    node_ip: str
    bridge: str
    pod_subnet: str
    pod_gateway: str

    @classmethod
    def for_key(cls, key: str) -> KubeNet:
        n = int(hashlib.sha256(key.encode()).hexdigest()[:4], 16)
        hi, lo = n >> 8, n & 0xFF
        return cls(node_name=f"farm-{key}", node_ip=f"10.245.{hi}.{max(lo, 1)}", bridge=f"farmk8s{key[:6]}",
                   pod_subnet=f"10.244.{hi}.0/24", pod_gateway=f"10.244.{hi}.1")


@dataclass(frozen=True)
class KubeTokens:
    """Static bearer tokens in the API server's token file."""

    admin: str
    node: str
    controller_manager: str
    scheduler: str


@dataclass(frozen=True)
class KubeLayout:
    """Every path, port and address of the stack's cluster."""

    paths: StackPaths
    ports: KubePorts
    net: KubeNet
    registry: str  # host:port of the stack's registry

    @classmethod
    def of(cls, paths: StackPaths, settings: StackSettings) -> KubeLayout:
        return cls(paths, KubePorts.from_base(settings.kube_port), KubeNet.for_key(paths.key), settings.registry)

    # persistent (state dir)
    @property
    def dir(self) -> Path:
        return self.paths.kube_dir

    @property
    def pki(self) -> Path:
        return self.dir / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.dir / "etcd"

    @property
    def containerd_root(self) -> Path:
        return self.dir / "containerd"

    @property
    def pod_logs(self) -> Path:
        return self.dir / "pod-logs"

    def file(self, name: str) -> Path:
        return self.dir / name

    # per boot (run dir: short socket paths, mounts, pod dirs)
    @property
    def run(self) -> Path:
        return self.paths.kube_run

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd.sock"

    @property
    def containerd_state(self) -> Path:
        return self.run / "containerd-state"

    @property
    def kubelet_root(self) -> Path:
        return self.run / "kubelet"

    @property
    def cni_conf_dir(self) -> Path:
        return self.run / "cni"

    @property
    def ipam_dir(self) -> Path:
        return self.run / "ipam"

    @property
    def certs_d(self) -> Path:
        return self.dir / "certs.d"

    @property
    def cgroup_root(self) -> str:
        return f"/farm-{self.paths.key}"

    @property
    def apiserver_url(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    @property
    def pause_image(self) -> str:
        return f"{self.registry}/{PAUSE_REPO}:{PAUSE_TAG}"


# --- files ------------------------------------------------------------------------------------

def token_csv(tokens: KubeTokens, node_name: str) -> str:
    """--token-auth-file: token,user,uid,"groups". Node and system components get their RBAC names."""
    rows = [
        (tokens.admin, "farm-admin", "farm-admin", ADMIN_GROUP),
        (tokens.node, f"system:node:{node_name}", f"system:node:{node_name}", "system:nodes"),
        (tokens.controller_manager, "system:kube-controller-manager", "system:kube-controller-manager", ""),
        (tokens.scheduler, "system:kube-scheduler", "system:kube-scheduler", ""),
    ]
    return "".join(f'{t},{user},{uid},"{groups}"\n' if groups else f"{t},{user},{uid}\n"
                   for t, user, uid, groups in rows)


def kubeconfig(server: str, ca_file: Path, user: str, token: str) -> str:
    """A kubeconfig (JSON is YAML) with one cluster, one token user and one current context."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "farm", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "farm", "context": {"cluster": "farm", "user": user}}],
        "current-context": "farm",
    }, indent=2) + "\n"


def kubelet_config(layout: KubeLayout) -> str:
    """KubeletConfiguration for a node on a cgroup-v1 host that must leave the host as it found it."""
    return json.dumps({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.net.node_ip,
        "port": layout.ports.kubelet,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": layout.ports.kubelet_healthz,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": layout.cgroup_root,
        "failCgroupV1": False,  # 1.35 refuses cgroup v1 hosts otherwise
        "failSwapOn": False,
        "makeIPTablesUtilChains": False,  # else a KUBE-FIREWALL DROP rule lands in the host's chains
        "podLogsDir": str(layout.pod_logs),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(layout.pki / "ca.crt")},  # the API server's kubelet client cert
        },
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDomain": "cluster.local",
        "serializeImagePulls": False,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "nodefs.inodesFree": "1%",
                         "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusReportFrequency": "10s",
        "maxPods": 50,
    }, indent=2) + "\n"


def cni_conflist(layout: KubeLayout) -> str:
    """A bridge network for pods; host-local keeps its leases in our run dir, not /var/lib/cni.
    containerd adds the loopback interface itself (the ``loopback`` plugin from the same bin dir)."""
    return json.dumps({
        "cniVersion": "0.4.0",
        "name": "farm",
        "plugins": [{
            "type": "bridge",
            "bridge": layout.net.bridge,
            "isGateway": True,
            "ipMasq": False,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": layout.net.pod_subnet, "gateway": layout.net.pod_gateway}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": str(layout.ipam_dir),
            },
        }],
    }, indent=2) + "\n"


def registry_hosts_toml(registry: str) -> str:
    """certs.d/<registry>/hosts.toml: the stack's registry speaks plain HTTP."""
    return "\n".join([
        f'server = {_q("http://" + registry)}',
        f"[host.{_q('http://' + registry)}]",
        '  capabilities = ["pull", "resolve", "push"]',
        "  skip_verify = true",
        "",
    ])


def node_containerd_toml(layout: KubeLayout, runc: str, registry_password: str) -> str:
    """The node's own containerd: CRI on, own root/state/sockets, runc v2 on cgroupfs, credentials for
    the stack's htpasswd-protected registry. Written 0600 (it holds the registry password)."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    sock = layout.containerd_socket
    return "\n".join([
        "# generated by farm.stack (kubernetes node)",
        "version = 2",
        f"root = {_q(layout.containerd_root)}",
        f"state = {_q(layout.containerd_state)}",
        "disabled_plugins = []",
        "oom_score = 0",
        "[grpc]",
        f"  address = {_q(sock)}",
        "[ttrpc]",
        f"  address = {_q(str(sock) + '.ttrpc')}",
        "[debug]",
        '  address = ""',
        '  level = "info"',
        "[metrics]",
        '  address = ""',
        '[plugins."io.containerd.internal.v1.opt"]',
        f"  path = {_q(layout.containerd_root / 'opt')}",
        f"[{cri}]",
        f"  sandbox_image = {_q(layout.pause_image)}",
        "  disable_apparmor = true",
        # The sandbox lacks CAP_SYS_RESOURCE: a negative oom_score_adj would kill every pod sandbox.
        "  restrict_oom_score_adj = true",
        "  netns_mounts_under_state_dir = true",
        '  stream_server_address = "127.0.0.1"',
        f'  stream_server_port = "{layout.ports.stream}"',
        "  enable_tls_streaming = false",
        "  max_container_log_line_size = 16384",
        f"[{cri}.containerd]",
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        f"[{cri}.containerd.runtimes.runc]",
        '  runtime_type = "io.containerd.runc.v2"',
        f"[{cri}.containerd.runtimes.runc.options]",
        "  SystemdCgroup = false",
        f"  BinaryName = {_q(runc)}",
        f"  Root = {_q(layout.run / 'runc')}",  # runc's state; else /run/containerd/runc
        f"[{cri}.cni]",
        f"  bin_dir = {_q(CNI_BIN_DIR)}",
        f"  conf_dir = {_q(layout.cni_conf_dir)}",
        "  max_conf_num = 1",
        f"[{cri}.registry]",
        f"  config_path = {_q(layout.certs_d)}",
        f"[{cri}.registry.configs.{_q(layout.registry)}.auth]",
        f"  username = {_q(REGISTRY_USER)}",
        f"  password = {_q(registry_password)}",
        "",
    ])


# --- command lines ----------------------------------------------------------------------------

def etcd_argv(layout: KubeLayout) -> tuple[str, ...]:
    client = f"http://127.0.0.1:{layout.ports.etcd_client}"
    peer = f"http://127.0.0.1:{layout.ports.etcd_peer}"
    return (str(etcd_bin()), "--name=farm", f"--data-dir={layout.etcd_data}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=farm={peer}", "--initial-cluster-state=new",
            "--log-level=warn")


def apiserver_argv(layout: KubeLayout) -> tuple[str, ...]:
    pki = layout.pki
    return (str(kube_bin("kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{layout.ports.etcd_client}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={layout.ports.apiserver}",
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={layout.file('tokens.csv')}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--allow-privileged=true",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--cert-dir={layout.dir / 'apiserver-certs'}",
            "--profiling=false")


def controller_manager_argv(layout: KubeLayout) -> tuple[str, ...]:
    kc = layout.file("controller-manager.kubeconfig")
    return (str(kube_bin("kube-controller-manager")),
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={layout.ports.controller_manager}",
            f"--cert-dir={layout.dir / 'controller-manager-certs'}",
            "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={layout.pki / 'sa.key'}",
            f"--root-ca-file={layout.pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allocate-node-cidrs=false", "--profiling=false",
            f"--flex-volume-plugin-dir={layout.run / 'kcm-volume-plugins'}")  # else /usr/libexec/kubernetes


def scheduler_argv(layout: KubeLayout) -> tuple[str, ...]:
    kc = layout.file("scheduler.kubeconfig")
    return (str(kube_bin("kube-scheduler")),
            f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={layout.ports.scheduler}",
            f"--cert-dir={layout.dir / 'scheduler-certs'}",
            "--leader-elect=false", "--profiling=false")


def containerd_argv(layout: KubeLayout, containerd: str) -> tuple[str, ...]:
    return (containerd, "--config", str(layout.file("containerd.toml")))


def kubelet_argv(layout: KubeLayout) -> tuple[str, ...]:
    return (str(kube_bin("kubelet")),
            f"--config={layout.file('kubelet.json')}",
            f"--kubeconfig={layout.file('kubelet.kubeconfig')}",
            f"--root-dir={layout.kubelet_root}",
            f"--cert-dir={layout.kubelet_root / 'pki'}",
            f"--hostname-override={layout.net.node_name}",
            f"--node-ip={layout.net.node_ip}",
            f"--volume-plugin-dir={layout.run / 'volume-plugins'}",  # else /usr/libexec/kubernetes/...
            "--v=1")
