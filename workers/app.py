"""The Celery app the workers run: settings for minutes-long builds on Redis (CELERY-NOTES.md).

Celery stays the engine; the farm adds job states, leases and single flight on top (farm.jobs).
What each setting protects against is in the README's operations section.
"""

from __future__ import annotations

import sys

from celery import Celery, signals

from farm.broker import MERGE_QUEUE, celery_config
from farm.settings import get_settings

settings = get_settings()
if problems := settings.time_problems():
    sys.exit("farm worker: " + "; ".join(problems))

app = Celery("farm", include=["workers.tasks"])
app.conf.update(celery_config(settings))
app.conf.update(
    # A message is acknowledged when its build ends, so a lost worker's build is delivered again;
    # the job's START script makes a second delivery of a running or ended job do nothing.
    task_acks_late=True,
    # A killed pool process hands its message back instead of failing it (START dedupes).
    task_reject_on_worker_lost=True,
    # A worker holds exactly what it runs, so no build waits (and ages) behind another.
    worker_prefetch_multiplier=1,
    worker_send_task_events=True,
    # A Redis restart must not cancel a running build: it carries on and records its result after
    # the reconnect (the lease and START keep a second delivery from running it twice).
    worker_cancel_long_running_tasks_on_connection_loss=False,
    broker_connection_retry=True,
    broker_connection_max_retries=None,
    worker_deduplicate_successful_tasks=True,
    # SIGTERM: running builds get this long to finish before they are handed back.
    worker_soft_shutdown_timeout=settings.soft_shutdown_timeout,
    # Backstop only; the Build's own `timeout` is enforced by the runtime.
    task_time_limit=settings.max_build_timeout + 300,
    task_default_queue=MERGE_QUEUE,
)


@signals.worker_ready.connect
def _announce(sender: object, **_: object) -> None:
    from workers import presence

    controller = getattr(sender, "controller", None)
    presence.start(app, getattr(sender, "hostname", None),
                   getattr(controller, "concurrency", None) or app.conf.worker_concurrency or 1)


@signals.worker_shutdown.connect
def _retire(sender: object, **_: object) -> None:
    from workers import presence

    presence.stop(app)
