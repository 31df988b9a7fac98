"""workers/k8s_objects.py pinned by known answers (issue 19): the manifest hash is sha256 over the
canonical JSON (sorted keys, no spaces) without its own annotation; checked with `sha256sum`."""

from __future__ import annotations

from workers.k8s_objects import HASH_ANNOTATION, buildkit_deployment, manifest_hash

SHA_A_B = "da1085"   # printf '%s' 'a_bseed' | sha1sum | cut -c1-6
SHA_LONG = "726517"  # the same for 48 a's, "_b", "seed"


def test_manifest_hash_known_answers() -> None:
    # printf '%s' '{"kind":"K","metadata":{"annotations":{"a":"b"},"name":"x"}}' | sha256sum
    m = {"metadata": {"name": "x", "annotations": {HASH_ANNOTATION: "old", "a": "b"}}, "kind": "K"}
    assert manifest_hash(m) == "60abf712fa3dea93ebc8d8e1cb8f4c5a5cfe64ed8631cbe70e3b61bc645167af"
    assert m["metadata"]["annotations"][HASH_ANNOTATION] == "old"  # the input is not changed
    # printf '%s' '{"kind":"K"}' | sha256sum
    assert manifest_hash({"kind": "K"}) == "94a8db0505cbf2ad10c3e022d14c8aba644c233c9cad12c0384f19f92eeb2661"
    assert manifest_hash({"kind": "K", "metadata": {"annotations": None}}) == manifest_hash(
        {"metadata": {"annotations": None}, "kind": "K"})


def test_util_registry_domain_loses_trailing_slashes_only() -> None:
    [container] = buildkit_deployment("ns", "auth", util_image_registry_domain="regX//")["spec"]["template"][
        "spec"]["containers"]
    assert container["image"] == "regX/gardendev/buildkit:v0.23.2"


def test_kaniko_pod_name_known_answers() -> None:
    from workers.k8s_objects import kaniko_pod_name

    # printf '%s' 'a_bseed' | sha1sum | cut -c1-6 ; the prefix is cut at 56 characters, trailing "-" dropped
    assert kaniko_pod_name("a_b", "seed") == "kaniko-a-b-" + SHA_A_B
    long = "a" * 48 + "_b"
    assert kaniko_pod_name(long, "seed") == "kaniko-" + "a" * 48 + "-" + SHA_LONG


def test_kaniko_pod_grace_period() -> None:
    from workers.k8s_objects import kaniko_pod

    pod = kaniko_pod("ns", "p", image="i", argv=["/kaniko/executor"], auth_secret_name="s", active_deadline=60)
    assert pod["spec"]["terminationGracePeriodSeconds"] == 5
    assert pod["spec"]["activeDeadlineSeconds"] == 60


def test_state_volume_and_host_network() -> None:
    for rootless, state_dir in ((False, "/var/lib/buildkit"), (True, "/home/user/.local/share/buildkit")):
        d = buildkit_deployment("ns", "auth", rootless=rootless, state_volume=True, host_network=True,
                                tcp_address="tcp://127.0.0.1:41234")
        spec = d["spec"]["template"]["spec"]
        [container] = spec["containers"]
        assert container["volumeMounts"][-1] == {"name": "buildkit-state", "mountPath": state_dir}
        assert spec["volumes"][-1] == {"name": "buildkit-state", "emptyDir": {}}
        assert (spec["hostNetwork"], spec["dnsPolicy"]) == (True, "ClusterFirstWithHostNet")
        assert container["args"][2:4] == ["--addr", "tcp://127.0.0.1:41234"]
        assert container["ports"] == [{"name": "buildkitd", "containerPort": 41234, "protocol": "TCP"}]
    plain = buildkit_deployment("ns", "auth")["spec"]["template"]["spec"]
    assert "hostNetwork" not in plain and "dnsPolicy" not in plain
    assert all(v["name"] != "buildkit-state" for v in plain["volumes"])
