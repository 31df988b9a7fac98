"""The local cluster's certificates and keys, made with openssl: a CA, the API server's serving
certificate, its client certificate for kubelets, and the service-account signing key pair.

The openssl command lines and extension files are pure functions of a ``CertSpec``; ``ensure_pki``
runs only what is missing, and re-issues a certificate whose spec changed (its extension text is
kept beside it), so a restart keeps the CA every kubeconfig trusts.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from farm.errors import StackError

DAYS = 3650
KEY_BITS = 2048


@dataclass(frozen=True)
class CertSpec:
    """A leaf certificate signed by the cluster CA."""

    name: str  # file stem: <name>.key, <name>.crt
    common_name: str
    organizations: tuple[str, ...] = ()
    usage: str = "serverAuth"  # extendedKeyUsage: serverAuth or clientAuth
    sans: tuple[str, ...] = ()  # "IP:1.2.3.4" / "DNS:name"


def apiserver_sans(service_ip: str) -> tuple[str, ...]:
    return ("IP:127.0.0.1", f"IP:{service_ip}", "DNS:localhost", "DNS:kubernetes",
            "DNS:kubernetes.default", "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local")


def cert_specs(service_ip: str) -> tuple[CertSpec, ...]:
    return (
        CertSpec("apiserver", "kube-apiserver", sans=apiserver_sans(service_ip)),
        # The API server's identity towards kubelets (logs, exec); the kubelet trusts our CA for it.
        CertSpec("apiserver-kubelet-client", "kube-apiserver-kubelet-client", ("system:masters",),
                 usage="clientAuth"),
    )


def subject(common_name: str, organizations: tuple[str, ...] = ()) -> str:
    return "".join(f"/O={o}" for o in organizations) + f"/CN={common_name}"


def extensions(spec: CertSpec) -> str:
    """The x509v3 extensions a leaf gets (an ``-extfile`` for ``openssl x509 -req``)."""
    lines = [
        "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature, keyEncipherment",
        f"extendedKeyUsage = {spec.usage}",
        "subjectKeyIdentifier = hash",
        "authorityKeyIdentifier = keyid",
    ]
    if spec.sans:
        lines.append("subjectAltName = " + ", ".join(spec.sans))
    return "\n".join(lines) + "\n"


def key_argv(key: Path) -> list[str]:
    return ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{KEY_BITS}",
            "-out", str(key)]


def ca_argv(pki: Path) -> list[str]:
    return ["openssl", "req", "-x509", "-new", "-key", str(pki / "ca.key"), "-out", str(pki / "ca.crt"),
            "-days", str(DAYS), "-subj", subject("farm-kubernetes-ca"),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"]


def csr_argv(pki: Path, spec: CertSpec) -> list[str]:
    return ["openssl", "req", "-new", "-key", str(pki / f"{spec.name}.key"), "-out", str(pki / f"{spec.name}.csr"),
            "-subj", subject(spec.common_name, spec.organizations)]


def sign_argv(pki: Path, spec: CertSpec, serial: int) -> list[str]:
    return ["openssl", "x509", "-req", "-in", str(pki / f"{spec.name}.csr"),
            "-CA", str(pki / "ca.crt"), "-CAkey", str(pki / "ca.key"), "-set_serial", str(serial),
            "-days", str(DAYS), "-extfile", str(pki / f"{spec.name}.ext"), "-out", str(pki / f"{spec.name}.crt")]


def sa_pub_argv(pki: Path) -> list[str]:
    return ["openssl", "pkey", "-in", str(pki / "sa.key"), "-pubout", "-out", str(pki / "sa.pub")]


# --- I/O --------------------------------------------------------------------------------------

def _run(argv: list[str]) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise StackError("openssl is not installed (Debian package openssl)") from None
    if proc.returncode != 0:
        raise StackError(f"`{' '.join(argv[:3])} ...` failed: {proc.stderr.strip()[-500:]}")


def _key(path: Path) -> bool:
    """Make a private key (0600) unless there is one; True if it was made."""
    if path.exists():
        return False
    old = os.umask(0o077)
    try:
        _run(key_argv(path))
    finally:
        os.umask(old)
    return True


def ensure_pki(pki: Path, specs: tuple[CertSpec, ...]) -> None:
    """CA, leaf certificates and the service-account key pair in ``pki``; only what is missing."""
    pki.mkdir(mode=0o700, parents=True, exist_ok=True)
    new_ca = _key(pki / "ca.key") or not (pki / "ca.crt").exists()
    if new_ca:
        _run(ca_argv(pki))
    for spec in specs:
        ext = pki / f"{spec.name}.ext"
        text = extensions(spec)
        current = ext.exists() and ext.read_text() == text and (pki / f"{spec.name}.crt").exists()
        if _key(pki / f"{spec.name}.key") or new_ca or not current:
            ext.write_text(text)
            _run(csr_argv(pki, spec))
            _run(sign_argv(pki, spec, secrets.randbits(63)))
            (pki / f"{spec.name}.csr").unlink(missing_ok=True)
    if _key(pki / "sa.key") or not (pki / "sa.pub").exists():
        _run(sa_pub_argv(pki))
