"""openssl command lines and extensions for the local cluster's certificates (farm/stack/_kubernetes_pki.py)."""

from __future__ import annotations

from pathlib import Path

from farm.stack._kubernetes_pki import (
    CertSpec,
    ca_argv,
    cert_specs,
    csr_argv,
    extensions,
    key_argv,
    sa_pub_argv,
    sign_argv,
    subject,
)

PKI = Path("/pki")


def test_apiserver_serving_cert_names_every_address_clients_use() -> None:
    apiserver = {s.name: s for s in cert_specs("10.96.0.1")}["apiserver"]
    for san in ("IP:127.0.0.1", "IP:10.96.0.1", "DNS:localhost", "DNS:kubernetes.default.svc"):
        assert san in apiserver.sans
    ext = extensions(apiserver)
    assert "extendedKeyUsage = serverAuth" in ext
    assert "subjectAltName = IP:127.0.0.1, IP:10.96.0.1, DNS:localhost" in ext
    assert "basicConstraints = critical, CA:FALSE" in ext


def test_kubelet_client_cert_is_a_master_client() -> None:
    client = {s.name: s for s in cert_specs("10.96.0.1")}["apiserver-kubelet-client"]
    assert client.organizations == ("system:masters",) and client.usage == "clientAuth"
    assert "subjectAltName" not in extensions(client)
    assert subject(client.common_name, client.organizations) == \
        "/O=system:masters/CN=kube-apiserver-kubelet-client"


def test_ca_is_self_signed_with_ca_constraints() -> None:
    argv = ca_argv(PKI)
    assert argv[:4] == ["openssl", "req", "-x509", "-new"]
    assert "basicConstraints=critical,CA:TRUE" in argv
    assert argv[argv.index("-key") + 1] == "/pki/ca.key" and argv[argv.index("-out") + 1] == "/pki/ca.crt"


def test_leaf_is_signed_by_the_ca_with_its_extension_file() -> None:
    spec = CertSpec("x", "cn")
    assert csr_argv(PKI, spec)[-2:] == ["-subj", "/CN=cn"]
    argv = sign_argv(PKI, spec, 42)
    for flag, value in (("-CA", "/pki/ca.crt"), ("-CAkey", "/pki/ca.key"), ("-set_serial", "42"),
                        ("-extfile", "/pki/x.ext"), ("-out", "/pki/x.crt"), ("-in", "/pki/x.csr")):
        assert argv[argv.index(flag) + 1] == value


def test_keys_are_rsa_and_the_sa_public_key_is_derived() -> None:
    assert key_argv(PKI / "k.key")[-2:] == ["-out", "/pki/k.key"]
    assert "rsa_keygen_bits:2048" in key_argv(PKI / "k.key")
    assert sa_pub_argv(PKI) == ["openssl", "pkey", "-in", "/pki/sa.key", "-pubout", "-out", "/pki/sa.pub"]
