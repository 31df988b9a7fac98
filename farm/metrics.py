"""Prometheus metrics for the whole farm on one scrape endpoint: `python -m farm.metrics`.

Counters and histograms are accumulated in Redis by the job scripts themselves (`farm.keys`:
HINCRBY per bucket), so any number of workers and producers feed one endpoint and a restart of
this process loses nothing; gauges (waiting rooms, in flight, capacity, shares) are read from the
admission keys. A custom collector reads all of it on each scrape (prometheus_client renders it).

    farm_queue_waiting{queue,priority}          jobs in the waiting rooms
    farm_celery_queue_messages{queue}           messages in Celery's lists (every priority)
    farm_queue_in_flight{queue}, farm_queue_capacity{queue}
    farm_namespace_running{namespace}           jobs of a namespace in flight (its share)
    farm_workers                                live workers
    farm_queue_wait_seconds{mode,platform}      histogram: submission -> first start
    farm_build_run_seconds{mode,platform}       histogram: the last attempt's run
    farm_builds_total{result,cause}             builds ended (built, failed, cancelled) and why
    farm_merges_total{result}                   index merges ended
    farm_status_check_hits_total{namespace}     Builds the registry status check answered (not built)
    farm_single_flight_hits_total               submissions that followed a job already running
    farm_retries_total{mode,platform}           attempts retried after a transient failure
    farm_lease_expiries_total                   attempts taken over after their worker was lost
    farm_redispatches_total                     dispatched jobs whose message never reached Celery
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from farm import keys
from farm.broker import redis_client
from farm.settings import get_settings

KOMBU_SEP = "\x06\x16"
KOMBU_STEPS = (0, 3, 6, 9)
DEFAULT_PORT = 9808

COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "builds": ("Builds ended, by result and cause", ("result", "cause")),
    "merges": ("Index merges ended, by result", ("result",)),
    "status_check_hits": ("Builds the registry status check answered: builds avoided", ("namespace",)),
    "single_flight_hits": ("Submissions that followed a job already being built", ()),
    "retries": ("Attempts retried after a transient failure", ("mode", "platform")),
    "lease_expiries": ("Attempts taken over after their worker was lost (lease lapsed)", ()),
    "redispatches": ("Dispatched jobs sent again: their message never reached Celery", ()),
}
HISTOGRAMS: dict[str, tuple[str, str]] = {
    "queue_wait_seconds": ("farm_queue_wait_seconds", "Seconds from submission to the first start"),
    "run_seconds": ("farm_build_run_seconds", "Seconds the last attempt of a build ran"),
}


def _split(field: str) -> tuple[str, dict[str, str]]:
    """`builds|result=built|cause=` -> ("builds", {"result": "built", "cause": ""})."""
    name, *parts = field.split("|")
    return name, dict(part.partition("=")[::2] for part in parts)


class FarmCollector(Collector):
    """Reads the farm's state and tallies from Redis on every scrape."""

    def __init__(self, client: Any) -> None:
        self.redis = client

    def collect(self) -> Iterator[Metric]:
        r = self.redis
        now = time.time()
        yield from self._counters(r.hgetall(keys.COUNTERS))
        yield from self._histograms(r.hgetall(keys.HISTOGRAMS))
        queues = sorted(r.smembers(keys.QUEUES))
        waiting = GaugeMetricFamily("farm_queue_waiting", "Jobs in the waiting rooms, by priority",
                                    labels=["queue", "priority"])
        celery = GaugeMetricFamily("farm_celery_queue_messages", "Messages in Celery's queue lists",
                                   labels=["queue"])
        flight = GaugeMetricFamily("farm_queue_in_flight", "Jobs sent to Celery and not ended", labels=["queue"])
        capacity = GaugeMetricFamily("farm_queue_capacity", "Builds the live workers serving a queue run at once",
                                     labels=["queue"])
        concurrency = r.hgetall(keys.CONCURRENCY)
        for queue in queues:
            by_class = [0, 0, 0]
            for ns in r.zrange(keys.turns(queue), 0, -1):
                for klass in range(3):
                    low = klass * keys.CLASS_SPAN
                    by_class[klass] += r.zcount(keys.waiting(queue, ns), low, f"({low + keys.CLASS_SPAN}")
            for name, klass in keys.PRIORITIES.items():
                waiting.add_metric([queue, name], by_class[klass])
            pipe = r.pipeline(transaction=False)
            for step in KOMBU_STEPS:
                pipe.llen(queue if step == 0 else f"{queue}{KOMBU_SEP}{step}")
            celery.add_metric([queue], sum(pipe.execute()))
            flight.add_metric([queue], r.zcard(keys.in_flight(queue)))
            live = r.zrangebyscore(keys.serving(queue), now - keys.WORKER_TTL, "+inf")
            capacity.add_metric([queue], sum(int(concurrency.get(w, 1)) for w in live))
        yield from (waiting, celery, flight, capacity)
        running = GaugeMetricFamily("farm_namespace_running", "Jobs of a namespace in flight (its share)",
                                    labels=["namespace"])
        for ns in sorted(r.smembers(keys.NAMESPACES)):
            running.add_metric([ns], r.zcard(keys.running(ns)))
        yield running
        yield GaugeMetricFamily("farm_workers", "Live workers",
                                value=r.zcount(keys.WORKERS, now - keys.WORKER_TTL, "+inf"))

    def _counters(self, raw: dict[str, str]) -> Iterator[Metric]:
        families = {name: CounterMetricFamily(f"farm_{name}", doc, labels=list(labels))
                    for name, (doc, labels) in COUNTERS.items()}
        for field, value in sorted(raw.items()):
            name, labels = _split(field)
            if name in families:
                families[name].add_metric([labels.get(k, "") for k in COUNTERS[name][1]], float(value))
        yield from families.values()

    def _histograms(self, raw: dict[str, str]) -> Iterator[Metric]:
        series: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
        for field, value in raw.items():
            name, labels = _split(field)
            if name not in HISTOGRAMS:
                continue
            key = (name, labels.get("mode", ""), labels.get("platform", ""))
            if "le" in labels:
                series[key][labels["le"]] = float(value)
            elif field.endswith("|sum"):
                series[key]["sum"] = float(value)
        for name, (metric, doc) in HISTOGRAMS.items():
            family = HistogramMetricFamily(metric, doc, labels=["mode", "platform"])
            for (n, mode, platform), values in sorted(series.items()):
                if n != name:
                    continue
                buckets = [(_le(b), values.get(_le(b), 0.0)) for b in keys.BUCKETS]
                buckets.append(("+Inf", values.get("+Inf", 0.0)))
                family.add_metric([mode, platform], buckets, sum_value=values.get("sum", 0.0))
            yield family


def _le(bucket: float) -> str:
    """A bucket bound as the Lua scripts write it (`0.25`, `1`, `30`)."""
    return str(int(bucket)) if float(bucket).is_integer() else str(bucket)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m farm.metrics", description="The farm's Prometheus endpoint.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = ap.parse_args(argv)
    registry = CollectorRegistry()
    registry.register(FarmCollector(redis_client(get_settings())))
    server, thread = start_http_server(args.port, addr=args.host, registry=registry)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    server.shutdown()
    thread.join(timeout=5)


if __name__ == "__main__":
    main()
