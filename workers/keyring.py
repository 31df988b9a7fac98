"""This worker's private sealing key (farm.sealing): FARM_SEALING_KEY_FILE, else one made once in
the worker directory (0600 in 0700). Every worker of a farm must hold the same one."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from farm import sealing
from farm.settings import get_settings

_key: X25519PrivateKey | None = None


def sealing_key() -> X25519PrivateKey:
    global _key
    if _key is None:
        settings = get_settings()
        _key = sealing.load_or_create(settings.sealing_key_file or settings.worker_root / "sealing.key")
    return _key
