"""The Celery app the workers run: settings for minutes-long builds (see CELERY-NOTES.md)."""

from __future__ import annotations

from celery import Celery

from farm.broker import celery_config
from farm.settings import get_settings

settings = get_settings()
app = Celery("farm", include=["workers.tasks"])
app.conf.update(celery_config(settings))
app.conf.update(
    # A crash mid-build redelivers the build; builds are idempotent (push by ref, tag last).
    task_acks_late=True,
    # A worker holds exactly what it runs, so no build waits (and ages) behind another.
    worker_prefetch_multiplier=1,
    worker_send_task_events=True,
    worker_cancel_long_running_tasks_on_connection_loss=True,
    worker_deduplicate_successful_tasks=True,
    worker_soft_shutdown_timeout=60,
    # Backstop only; the Build's own `timeout` is enforced by the runtime.
    task_time_limit=settings.visibility_timeout - 60,
    task_default_queue="build.linux-amd64",
)
