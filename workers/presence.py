"""A worker tells the farm it is alive, which queues it serves and how many builds it runs at once,
every few seconds (farm.fleet), so producers can say why a job waits and admission knows each queue's
capacity. The same beat runs admission's round (farm.admission.maintain: requeue what was never
sent, reap, trim, dispatch), so waiting jobs move even when no submitter or build is active. It also
announces the farm's fair-share policy (FARM_NAMESPACE_CAP, FARM_NAMESPACE_CAPS) as this worker reads
it. Runs in the worker's main process."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from farm import admission, fleet, sealing
from farm.broker import redis_client
from farm.jobs import JobStore
from farm.settings import get_settings
from workers import keyring

INTERVAL = 5.0
_stop = threading.Event()
_info: fleet.WorkerInfo | None = None
logger = logging.getLogger(__name__)


def _queues(app: Any) -> tuple[str, ...]:
    env = os.environ.get("FARM_WORKER_QUEUES", "")
    return tuple(q for q in env.split(",") if q) or tuple(app.amqp.queues.keys())


def touch(path: str) -> None:
    try:
        with open(path, "a"):
            os.utime(path)
    except OSError:
        logger.debug("farm: cannot touch the heartbeat file %s", path, exc_info=True)


def start(app: Any, hostname: str | None, concurrency: int = 1) -> None:
    global _info
    settings = get_settings()
    _info = fleet.WorkerInfo(name=hostname or f"{socket.gethostname()}:{os.getpid()}",
                             host=socket.gethostname(), pid=os.getpid(), queues=_queues(app), started_at=time.time(),
                             concurrency=max(int(concurrency or 1), 1))
    client = redis_client(settings)
    store = JobStore(client, reconnect_s=1, ttl=settings.history_ttl)
    policy = admission.policy(settings.namespace_cap, admission.parse_caps(settings.namespace_caps))
    info = _info
    public = sealing.public_text(keyring.sealing_key())

    heartbeat = os.environ.get("FARM_HEARTBEAT_FILE", "")

    def beat() -> None:
        while not _stop.is_set():
            try:
                fleet.announce(client, info, policy)
                store.announce_sealing_key(public)    # producers seal build secrets with it
                admission.maintain(app, store)
            except Exception:  # noqa: BLE001 - Redis restarting: try again next beat
                logger.debug("farm: presence beat failed", exc_info=True)
            if heartbeat:   # the liveness probe's file (workers.alive): touched whether Redis answered or not
                touch(heartbeat)
            _stop.wait(INTERVAL)

    threading.Thread(target=beat, name="farm-presence", daemon=True).start()


def stop(app: Any) -> None:
    _stop.set()
    if _info is not None:
        try:
            fleet.retire(redis_client(get_settings()), _info.name, _info.queues)
        except Exception:  # noqa: BLE001 - it expires anyway
            pass
