"""A worker tells the farm it is alive and which queues it serves, every few seconds (farm.fleet),
so producers can say why a job waits. Runs in the worker's main process."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from farm import fleet
from farm.broker import redis_client
from farm.settings import get_settings

INTERVAL = 5.0
_stop = threading.Event()
_info: fleet.WorkerInfo | None = None


def _queues(app: Any) -> tuple[str, ...]:
    env = os.environ.get("FARM_WORKER_QUEUES", "")
    return tuple(q for q in env.split(",") if q) or tuple(app.amqp.queues.keys())


def start(app: Any, hostname: str | None) -> None:
    global _info
    _info = fleet.WorkerInfo(name=hostname or f"{socket.gethostname()}:{os.getpid()}",
                             host=socket.gethostname(), pid=os.getpid(), queues=_queues(app), started_at=time.time())
    client = redis_client(get_settings())
    info = _info

    def beat() -> None:
        while not _stop.is_set():
            try:
                fleet.announce(client, info)
            except Exception:  # noqa: BLE001 - Redis restarting: try again next beat
                pass
            _stop.wait(INTERVAL)

    threading.Thread(target=beat, name="farm-presence", daemon=True).start()


def stop(app: Any) -> None:
    _stop.set()
    if _info is not None:
        try:
            fleet.retire(redis_client(get_settings()), _info.name)
        except Exception:  # noqa: BLE001 - it expires anyway
            pass
