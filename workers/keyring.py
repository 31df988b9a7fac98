"""This worker's private sealing key (farm.sealing): FARM_SEALING_KEY_FILE, else one made once in
the worker directory (0600 in 0700). Every worker of a farm must hold the same one."""

from __future__ import annotations

import logging
import os

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from farm import sealing
from farm.settings import get_settings

_key: X25519PrivateKey | None = None
logger = logging.getLogger(__name__)


def sealing_key() -> X25519PrivateKey:
    global _key
    if _key is None:
        settings = get_settings()
        path = settings.sealing_key_file or settings.worker_root / "sealing.key"
        if settings.sealing_key_file and not path.exists() and not os.access(path.parent, os.W_OK):
            # A key file missing from a read-only mount (a Secret without that key): this worker's own
            # key serves a farm of one worker; with several, their secrets cannot be opened elsewhere.
            logger.warning("farm: %s is missing; using a sealing key of this worker's own", path)
            path = settings.worker_root / "sealing.key"
        _key = sealing.load_or_create(path)
    return _key
