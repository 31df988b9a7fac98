"""A running job's lease: renewed every third of its length while the builder runs, together with
the message's delivery time in kombu's unacked index (so kombu re-delivers only lost workers' jobs).

When a renewal finds the job has another owner (this worker was taken for lost, say after a long
network partition), `lost` is set and the runtime kills the builder: a job never runs twice at once
for long, and a stale owner's result is never recorded (FINISH checks the owner).
"""

from __future__ import annotations

import threading
from types import TracebackType

from farm.jobs import JobStore


class Lease:
    def __init__(self, store: JobStore, job_id: str, owner: str, tag: str, seconds: float) -> None:
        self.store, self.job_id, self.owner, self.tag, self.seconds = store, job_id, owner, tag, seconds
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"lease-{job_id[:8]}", daemon=True)

    def _keep(self) -> None:
        while not self._done.wait(self.seconds / 3):
            try:
                if not self.store.renew(self.job_id, self.owner, self.seconds, self.tag):
                    self.lost.set()
                    return
            except Exception:  # noqa: BLE001 - Redis restarting: the next beat tries again
                continue

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self._done.set()
        self._thread.join(timeout=5)
