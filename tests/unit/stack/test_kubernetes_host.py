"""The host record a kubelet node keeps so `down` restores the host (farm/stack/_kubernetes_host.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from farm.errors import StackError
from farm.stack._kubernetes_host import HOST_PATHS, SYSCTLS, HostRecord, _sysctl_path, shim_sockets


def test_sysctl_names_map_to_proc_sys() -> None:
    assert _sysctl_path("net.ipv4.ip_forward") == Path("/proc/sys/net/ipv4/ip_forward")
    assert {"vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops", "net.ipv4.ip_forward"} <= set(SYSCTLS)


def test_the_device_plugin_socket_is_tracked() -> None:
    assert Path("/var/lib/kubelet/device-plugins/kubelet.sock") in HOST_PATHS


def test_host_record_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    assert HostRecord.load(path) is None
    record = HostRecord({"kernel.panic": "0"}, True, ["/var/lib/kubelet"])
    record.save(path)
    assert HostRecord.load(path) == record


def test_corrupt_host_record_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text("{}")
    with pytest.raises(StackError, match="corrupt"):
        HostRecord.load(path)


def test_shim_socket_names_follow_containerd() -> None:
    sock = shim_sockets(Path("/run/x/containerd.sock"), "k8s.io", ["abc"])[0]
    assert sock.parent == Path("/run/containerd/s")
    assert sock.name == hashlib.sha256(b"/run/x/containerd.sock/k8s.io/abc").hexdigest()
