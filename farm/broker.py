"""The broker seam: the Celery configuration shared by producers and workers, the queues, the Redis client.

A queue per build mode and platform (`build.cluster-buildkit.linux-arm64`): a worker consumes only
the queues of the modes it has a builder for, so it never takes a job it cannot run. Producer and
worker must agree on the visibility timeout: Redis keeps the shortest one any app sets, so both read
it from here (CELERY-NOTES: set in all three places).
"""

from __future__ import annotations

import os
import platform as _platform
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from farm import keys
from farm.errors import BrokerError
from farm.settings import Settings

if TYPE_CHECKING:  # both are imported on first use: a run where every Build is cached needs neither
    import redis
    from celery import Celery

TASK_BUILD_PLATFORM = "farm.build_platform"
TASK_MERGE_INDEX = "farm.merge_index"
# Merging needs no builder (registry API only), so every worker consumes this queue.
MERGE_QUEUE = "build.merge"


MODES = ("local-docker", "cluster-buildkit", "kaniko")


def platform_slug(platform: str) -> str:
    """`linux/arm64/v8` -> `linux-arm64-v8`."""
    return "-".join(part for part in platform.strip().lower().split("/") if part)


def queue_for(mode: str, platform: str) -> str:
    """`cluster-buildkit`, `linux/arm64` -> `build.cluster-buildkit.linux-arm64`."""
    return f"build.{mode}.{platform_slug(platform)}"


def parse_queue(queue: str) -> tuple[str, str] | None:
    """(mode, platform slug) of a build queue, None for others."""
    _, mode, slug = (queue.split(".", 2) + ["", ""])[:3]
    return (mode, slug) if queue.startswith("build.") and mode in MODES and slug else None


def machine_platform() -> str:
    """This machine's platform, as a Build names it: `linux/amd64`, `linux/arm64`."""
    machine = _platform.machine()
    return f"linux/{ {'x86_64': 'amd64', 'aarch64': 'arm64', 'arm64': 'arm64'}.get(machine, machine)}"


def worker_argv(platforms: Sequence[str] = (), modes: Sequence[str] = (), concurrency: int = 1,
                loglevel: str = "INFO") -> list[str]:
    """The command line of a farm worker (`python -m workers`): it serves `platforms` (default: this
    machine's) in the `modes` it finds a builder for (default: all of them), and the merge queue."""
    argv = [sys.executable, "-m", "workers", "--concurrency", str(concurrency), "--loglevel", loglevel,
            "--name", f"farm-{os.getpid()}@%h"]
    for platform in platforms or [machine_platform()]:
        argv += ["--platform", platform]
    for mode in modes:
        argv += ["--mode", mode]
    return argv


def celery_config(settings: Settings) -> dict[str, Any]:
    transport = {"visibility_timeout": settings.visibility_timeout,
                 # kombu's sweep for messages of lost workers: every 5 s rather than every ~100 s.
                 "unacked_restore_interval": 5, "unacked_restore_throttle": 1,
                 "unacked_key": keys.UNACKED, "unacked_index_key": keys.UNACKED_INDEX}
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "visibility_timeout": settings.visibility_timeout,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_extended": True,
        "result_expires": 7 * 24 * 3600,
        "task_track_started": True,
        # Off: the producer's task-sent event names the task by its Celery name and, when it reaches
        # Flower after the worker's task-received, overwrites the readable shadow name
        # ("build api linux/amd64 v-…"). Queued jobs are listed by `farm jobs` and the metrics.
        "task_send_sent_event": False,
        "broker_connection_retry_on_startup": True,
    }


def producer_app(settings: Settings) -> Celery:
    """A Celery app that only sends tasks by name: the producer never imports `workers`."""
    from celery import Celery

    app = Celery("farm")
    app.conf.update(celery_config(settings))
    # A CI run should fail fast on a dead broker, not retry forever; a Redis restart of a few
    # seconds is waited out (about a minute of retries before a send fails).
    app.conf.broker_connection_max_retries = 2
    app.conf.task_publish_retry_policy = {"max_retries": 30, "interval_start": 0.5, "interval_step": 0.5,
                                          "interval_max": 2}
    return app


def redis_client(settings: Settings) -> redis.Redis:
    import redis

    return redis.Redis.from_url(settings.broker_url, decode_responses=True, socket_connect_timeout=5,
                                health_check_interval=30)


def check_broker(client: redis.Redis, url: str) -> None:
    """Fail with one clear line when Redis is not there, before anything is enqueued."""
    import redis

    try:
        client.ping()
    except redis.RedisError as exc:
        raise BrokerError(f"cannot reach the broker at {_safe_url(url)}: {str(exc).rstrip('. ')}. "
                          "Is the stack up? (`farm stack up`, then `eval \"$(farm stack env)\"`)") from None


def with_auth(url: str, auth: str) -> str:
    """`url` connecting as `auth` (`user:password`) instead of the user it names, if any."""
    if not auth:
        return url
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{auth}@{rest.rpartition('@')[2]}" if sep else url


def _safe_url(url: str) -> str:
    """A broker URL with any password removed, for messages."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
