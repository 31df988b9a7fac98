"""A running job's lease: renewed every third of its length while the builder runs, together with
the message's delivery time in kombu's unacked index (so kombu re-delivers only lost workers' jobs).

When a renewal finds the job has another owner (this worker was taken for lost, say after a long
network partition), `lost` and `stop` are set and the runtime kills the builder: a job never runs
twice at once for long, and a stale owner's result is never recorded (FINISH checks the owner).
When a cancel was asked (`farm cancel`, a superseding build), `cancelled` and `stop` are set: the
runtime kills the builder and the task ends the attempt cancelled. The cancel flag is looked at
every second, between renewals, so a cancelled build stops within about a second.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from farm.jobs import CANCEL, LOST, JobStore

CANCEL_POLL_S = 1.0


class Lease:
    def __init__(self, store: JobStore, job_id: str, owner: str, tag: str, seconds: float) -> None:
        self.store, self.job_id, self.owner, self.tag, self.seconds = store, job_id, owner, tag, seconds
        self.stop = threading.Event()        # the builder must stop: lost or cancelled
        self.lost = threading.Event()
        self.cancelled = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._keep, name=f"lease-{job_id[:8]}", daemon=True)

    def _keep(self) -> None:
        next_renewal = time.monotonic() + self.seconds / 3
        while not self._done.wait(min(CANCEL_POLL_S, max(next_renewal - time.monotonic(), 0.01))):
            # A cancelled build keeps its lease while its builder is being stopped.
            try:
                if time.monotonic() < next_renewal:
                    if not self.cancelled.is_set() and self.store.cancel_requested(self.job_id):
                        self._stop(self.cancelled)
                    continue
                next_renewal = time.monotonic() + self.seconds / 3
                answer = self.store.renew(self.job_id, self.owner, self.seconds, self.tag)
                if answer == LOST:
                    self._stop(self.lost)
                    return
                if answer == CANCEL:
                    self._stop(self.cancelled)
            except Exception:  # noqa: BLE001 - Redis restarting: the next beat tries again
                continue

    def _stop(self, why: threading.Event) -> None:
        why.set()
        self.stop.set()

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self._done.set()
        self._thread.join(timeout=5)
