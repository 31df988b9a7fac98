"""Build secrets sealed for the workers: never in plaintext in Redis, its AOF or its RDB.

The farm has one X25519 key pair. Workers hold the private key (a 0600 file: FARM_SEALING_KEY_FILE,
the same on every worker, like any deployment secret; a worker without one makes one under its
directory); producers need only the public key (FARM_SEALING_PUBLIC_KEY, or the one the workers
announce in Redis). Each job's secret values are sealed with a fresh ephemeral key: X25519 agreement,
HKDF-SHA256, AES-256-GCM with the job id as associated data, so a sealed blob opens only for the
job it was sealed for, and only where the private key is.

    sealed = "v1." + base64(ephemeral public key (32) | nonce (12) | ciphertext + tag)
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from farm.errors import BuildError, FarmError

VERSION = "v1."
_INFO = b"farm build secrets v1"


class SealingError(FarmError):
    """A sealed value that cannot be opened here (another key, another job, or tampered with)."""


def _key(shared: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(shared)


def public_text(private: X25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def seal(public: str, values: dict[str, str], job_id: str) -> str:
    """`values` sealed for the holder of the private key of `public` (base64), for `job_id` only."""
    try:
        peer = X25519PublicKey.from_public_bytes(base64.b64decode(public, validate=True))
    except ValueError:
        raise FarmError("the farm's sealing key (FARM_SEALING_PUBLIC_KEY) is not a base64 X25519 key") from None
    ephemeral = X25519PrivateKey.generate()
    nonce = os.urandom(12)
    sealed = AESGCM(_key(ephemeral.exchange(peer))).encrypt(
        nonce, json.dumps(values, sort_keys=True).encode(), job_id.encode())
    eph = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return VERSION + base64.b64encode(eph + nonce + sealed).decode()


def unseal(private: X25519PrivateKey, blob: str, job_id: str) -> dict[str, str]:
    if not blob.startswith(VERSION):
        raise SealingError("build secrets arrived unsealed or in an unknown form; refused")
    try:
        raw = base64.b64decode(blob[len(VERSION):], validate=True)
        eph, nonce, sealed = X25519PublicKey.from_public_bytes(raw[:32]), raw[32:44], raw[44:]
        plain = AESGCM(_key(private.exchange(eph))).decrypt(nonce, sealed, job_id.encode())
    except (ValueError, InvalidTag):
        raise SealingError("the build secrets cannot be opened with this worker's sealing key "
                           "(FARM_SEALING_KEY_FILE must be the same on every worker)") from None
    values = json.loads(plain)
    if not isinstance(values, dict):
        raise BuildError("sealed build secrets hold no mapping")
    return {str(k): str(v) for k, v in values.items()}


def load_or_create(path: Path) -> X25519PrivateKey:
    """The private key in `path` (raw 32 bytes, base64), made once: 0600 in a 0700 directory."""
    try:
        return X25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text().strip()))
    except FileNotFoundError:
        pass
    except ValueError:
        raise FarmError(f"{path} is not a sealing key (base64 of 32 bytes)") from None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = X25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:            # another worker made it first
        return load_or_create(path)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(raw).decode() + "\n")
    return key
