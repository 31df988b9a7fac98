"""The local cluster's config files and command lines, as data (farm/stack/_kubernetes_configs.py)."""

from __future__ import annotations

import ipaddress
import json
import tomllib
from pathlib import Path

import pytest

from farm.errors import StackError
from farm.stack import _kubernetes_configs as kc
from farm.stack._state import KUBE_PORTS, StackPaths, StackSettings


@pytest.fixture
def layout() -> kc.KubeLayout:
    return kc.KubeLayout.of(StackPaths(Path("/srv/farm-state")), StackSettings(6490, 5150, 5655, 17000))


def flags(argv: tuple[str, ...]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in argv[1:] if a.startswith("--") and "=" in a)


def test_ports_are_a_block_from_the_base(layout: kc.KubeLayout) -> None:
    values = list(vars(layout.ports).values())
    assert values == list(range(17000, 17000 + KUBE_PORTS))
    assert layout.apiserver_url == "https://127.0.0.1:17000"


def test_net_is_stable_per_key_and_distinct_between_keys() -> None:
    a, b = kc.KubeNet.for_key("e396c3c5"), kc.KubeNet.for_key("0badcafe")
    assert a == kc.KubeNet.for_key("e396c3c5")
    assert a.node_ip != b.node_ip and a.bridge != b.bridge
    for net in (a, b):
        assert len(net.bridge) <= 15  # IFNAMSIZ
        ip = ipaddress.ip_address(net.node_ip)
        assert not ip.is_loopback  # the kubelet refuses a loopback node IP
        subnet = ipaddress.ip_network(net.pod_subnet)
        assert ipaddress.ip_address(net.pod_gateway) in subnet and ip not in subnet
        assert ip not in ipaddress.ip_network(kc.SERVICE_CIDR)


def test_token_file_puts_admin_in_masters_and_node_in_nodes() -> None:
    toks = kc.KubeTokens("a" * 8, "n" * 8, "c" * 8, "s" * 8)
    rows = kc.token_csv(toks, "farm-x").splitlines()
    assert rows[0] == 'aaaaaaaa,farm-admin,farm-admin,"system:masters"'
    assert rows[1] == 'nnnnnnnn,system:node:farm-x,system:node:farm-x,"system:nodes"'
    assert rows[2].split(",")[1] == "system:kube-controller-manager"
    assert rows[3].split(",")[1] == "system:kube-scheduler"


def test_kubeconfig_has_one_current_context() -> None:
    cfg = json.loads(kc.kubeconfig("https://127.0.0.1:1", Path("/p/ca.crt"), "u", "tok"))
    assert cfg["current-context"] == "farm"
    assert cfg["clusters"][0]["cluster"] == {"server": "https://127.0.0.1:1", "certificate-authority": "/p/ca.crt"}
    assert cfg["users"] == [{"name": "u", "user": {"token": "tok"}}]


def test_kubelet_config_leaves_the_host_alone(layout: kc.KubeLayout) -> None:
    cfg = json.loads(kc.kubelet_config(layout))
    assert cfg["cgroupDriver"] == "cgroupfs" and cfg["failCgroupV1"] is False
    assert cfg["makeIPTablesUtilChains"] is False and cfg["failSwapOn"] is False
    assert cfg["cgroupRoot"] == layout.cgroup_root
    assert cfg["address"] == layout.net.node_ip and cfg["port"] == layout.ports.kubelet
    assert cfg["healthzBindAddress"] == "127.0.0.1" and cfg["readOnlyPort"] == 0
    assert cfg["authentication"]["anonymous"] == {"enabled": False}
    assert cfg["authentication"]["x509"]["clientCAFile"] == str(layout.pki / "ca.crt")
    assert cfg["containerRuntimeEndpoint"] == f"unix://{layout.containerd_socket}"


def test_node_containerd_config(layout: kc.KubeLayout) -> None:
    cfg = tomllib.loads(kc.node_containerd_toml(layout, "/usr/sbin/runc", 'pa"ss'))
    assert cfg["version"] == 2 and cfg["disabled_plugins"] == []
    assert cfg["grpc"]["address"] == str(layout.containerd_socket)
    assert cfg["root"] == str(layout.containerd_root) and cfg["state"] == str(layout.containerd_state)
    cri = cfg["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True and cri["disable_apparmor"] is True
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["sandbox_image"] == "127.0.0.1:5150/farm/pause:1"
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2" and runc["options"]["SystemdCgroup"] is False
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni" and cri["cni"]["conf_dir"] == str(layout.cni_conf_dir)
    assert cri["registry"]["config_path"] == str(layout.certs_d)
    assert cri["registry"]["configs"]["127.0.0.1:5150"]["auth"] == {"username": "farm", "password": 'pa"ss'}
    assert cfg["plugins"]["io.containerd.internal.v1.opt"]["path"].startswith(str(layout.containerd_root))


def test_registry_hosts_toml_is_plain_http() -> None:
    cfg = tomllib.loads(kc.registry_hosts_toml("127.0.0.1:5150"))
    assert cfg["server"] == "http://127.0.0.1:5150"
    assert "pull" in cfg["host"]["http://127.0.0.1:5150"]["capabilities"]


def test_cni_bridge_keeps_leases_in_our_dir(layout: kc.KubeLayout) -> None:
    conf = json.loads(kc.cni_conflist(layout))
    bridge = conf["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["isGateway"] is True and bridge["ipMasq"] is False
    assert bridge["bridge"] == layout.net.bridge
    assert bridge["ipam"]["type"] == "host-local" and bridge["ipam"]["dataDir"] == str(layout.ipam_dir)
    assert bridge["ipam"]["ranges"] == [[{"subnet": layout.net.pod_subnet, "gateway": layout.net.pod_gateway}]]


def test_apiserver_argv(layout: kc.KubeLayout) -> None:
    f = flags(kc.apiserver_argv(layout))
    assert f["authorization-mode"] == "Node,RBAC"
    assert f["enable-admission-plugins"] == "NodeRestriction"
    assert f["allow-privileged"] == "true" and f["endpoint-reconciler-type"] == "none"
    assert f["bind-address"] == "127.0.0.1" and f["secure-port"] == str(layout.ports.apiserver)
    assert f["etcd-servers"] == f"http://127.0.0.1:{layout.ports.etcd_client}"
    assert f["service-cluster-ip-range"] == kc.SERVICE_CIDR
    assert f["token-auth-file"] == str(layout.file("tokens.csv"))
    assert f["kubelet-client-certificate"].endswith("apiserver-kubelet-client.crt")


def test_control_plane_binds_loopback_without_leader_election(layout: kc.KubeLayout) -> None:
    for argv, port in ((kc.controller_manager_argv(layout), layout.ports.controller_manager),
                       (kc.scheduler_argv(layout), layout.ports.scheduler)):
        f = flags(argv)
        assert f["bind-address"] == "127.0.0.1" and f["secure-port"] == str(port)
        assert f["leader-elect"] == "false"
        assert f["kubeconfig"] == f["authentication-kubeconfig"] == f["authorization-kubeconfig"]
    cm = flags(kc.controller_manager_argv(layout))
    assert cm["service-account-private-key-file"].endswith("sa.key")
    assert cm["root-ca-file"].endswith("ca.crt")


def test_etcd_and_kubelet_argv(layout: kc.KubeLayout) -> None:
    etcd = flags(kc.etcd_argv(layout))
    assert etcd["listen-client-urls"] == f"http://127.0.0.1:{layout.ports.etcd_client}"
    assert etcd["initial-cluster"] == f"farm=http://127.0.0.1:{layout.ports.etcd_peer}"
    assert etcd["data-dir"] == str(layout.etcd_data)
    kubelet = flags(kc.kubelet_argv(layout))
    assert kubelet["node-ip"] == layout.net.node_ip
    assert kubelet["hostname-override"] == layout.net.node_name
    assert kubelet["root-dir"] == str(layout.kubelet_root)


def test_kube_port_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FARM_REDIS_PORT", "FARM_REGISTRY_PORT", "FARM_FLOWER_PORT", "FARM_KUBE_PORT"):
        monkeypatch.delenv(var, raising=False)
    assert StackSettings.from_env().kube_port == 16443
    monkeypatch.setenv("FARM_KUBE_PORT", "20000")
    assert StackSettings.from_env().kube_port == 20000
    monkeypatch.setenv("FARM_REDIS_PORT", "20003")  # inside the kubernetes block
    with pytest.raises(StackError, match="FARM_KUBE_PORT"):
        StackSettings.from_env()


def test_settings_saved_before_kubernetes_still_load(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"redis_port": 1, "registry_port": 2, "flower_port": 3}))
    assert StackSettings.load(path) == StackSettings(1, 2, 3, 16443)
    StackSettings(1, 2, 3, 20000).save(path)
    assert StackSettings.load(path) == StackSettings(1, 2, 3, 20000)
