"""The worker's ``/metrics`` endpoint: prometheus-client's multiprocess mode.

A prefork worker is one main process (the consumer) and N pool processes (the batches).
Each writes its metrics to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR``; the main
process serves the sum (``MultiProcessCollector``) over HTTP, plus the queue depths it
reads from Redis at scrape time. Lifecycle, as the library documents it:

* :func:`prepare` (main process, before ``prometheus_client`` is imported): a private
  directory ``<data_dir>/metrics/<name>-<pid>``, emptied; sibling directories of dead
  workers are removed;
* :func:`serve` (main process): the HTTP server thread on ``Settings.metrics_port``;
* :func:`install_process_hooks`: ``mark_process_dead`` when a pool process exits, so its
  ``live*`` gauges vanish.

``metrics_port = 0`` turns the endpoint (and the files) off; metrics then stay in memory.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from enrichment_ai.config import Settings

log = logging.getLogger("enrichment.metrics")

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
#: kombu's Redis transport keeps priority levels 3/6/9 in these sibling lists
_PRIORITY_SEP, _PRIORITY_STEPS = "\x06\x16", (3, 6, 9)


def prepare(settings: Settings, name: str) -> Path | None:
    """Point prometheus-client at a fresh multiprocess directory for this worker (call in
    the main process before anything imports ``prometheus_client``; pool processes inherit
    it). Returns the directory, or None when metrics are off."""
    if not settings.metrics_port:
        return None
    if "prometheus_client" in sys.modules and os.environ.get(ENV_VAR) is None:
        raise RuntimeError("prometheus_client was imported before exporter.prepare(): its values "
                           "would stay per-process and the endpoint would miss the pool's metrics")
    root = Path(settings.data_dir).resolve() / "metrics"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():  # directories of workers that are gone
        pid = old.name.rsplit("-", 1)[-1]
        if old.is_dir() and (not pid.isdigit() or not _alive(int(pid))):
            shutil.rmtree(old, ignore_errors=True)
    path = root / f"{''.join(c if c.isalnum() else '_' for c in name)}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    os.environ[ENV_VAR] = str(path)  # read by prometheus_client at import (not a setting)
    return path


def serve(settings: Settings, queues: Sequence[str]):
    """Start the HTTP endpoint in this (main) process; returns the server, or None when off
    or the port is taken (logged: metrics must never stop a worker)."""
    if not settings.metrics_port:
        return None
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if os.environ.get(ENV_VAR):
        MultiProcessCollector(registry)
    registry.register(QueueDepthCollector(settings.redis_url, queues))
    try:
        server, _thread = start_http_server(settings.metrics_port, addr=settings.metrics_addr,
                                            registry=registry)
    except OSError as exc:
        log.error("metrics endpoint not started on %s:%s: %s", settings.metrics_addr,
                  settings.metrics_port, exc)
        return None
    log.info("metrics on http://%s:%s/metrics", settings.metrics_addr, settings.metrics_port)
    return server


def install_process_hooks(queue: str) -> None:
    """``mark_process_dead`` for a pool process at its exit (Celery's
    ``worker_process_shutdown`` runs in that process), and the count of analyze events as
    the consumer receives them (``task_received``, main process; redeliveries count again)."""
    from celery.signals import task_received, worker_process_shutdown

    def on_received(request=None, **_kw) -> None:
        from enrichment_ai.process import ANALYZE_TASK

        if getattr(request, "name", None) == ANALYZE_TASK:
            from enrichment_ai.observability.metrics import EVENTS_RECEIVED

            EVENTS_RECEIVED.labels(queue).inc()

    task_received.connect(on_received, weak=False, dispatch_uid="enrichment.metrics.received")

    def on_shutdown(pid=None, **_kw) -> None:
        if os.environ.get(ENV_VAR):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid or os.getpid())

    worker_process_shutdown.connect(on_shutdown, weak=False, dispatch_uid="enrichment.metrics.dead")


def queue_depths(redis, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in each Celery queue (all priority levels), by LLEN."""
    out = {}
    for q in queues:
        keys = [q, *(f"{q}{_PRIORITY_SEP}{p}" for p in _PRIORITY_STEPS)]
        with redis.pipeline(transaction=False) as pipe:
            for k in keys:
                pipe.llen(k)
            out[q] = int(sum(pipe.execute()))
    return out


class QueueDepthCollector:
    """Custom collector: queue depths and unacknowledged messages, read from Redis on each
    scrape (the value is the broker's, so it belongs to no process's files)."""

    def __init__(self, redis_url: str | None, queues: Sequence[str]) -> None:
        self.redis_url, self.queues = redis_url, tuple(queues)
        self._client = None

    def _redis(self):
        if self._client is None:
            from enrichment_ai.embedded import redis_client

            self._client = redis_client(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        return self._client

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("enrichment_broker_up", "1 if the broker answered the last scrape")
        depth = GaugeMetricFamily("enrichment_queue_depth", "Messages waiting in the queue (LLEN)",
                                  labels=["queue"])
        unacked = GaugeMetricFamily("enrichment_broker_unacked_messages",
                                    "Messages fetched by a worker and not yet acknowledged")
        scrape = GaugeMetricFamily("enrichment_queue_scrape_duration_seconds",
                                   "Time to read the queue depths from Redis")
        t0 = time.perf_counter()
        try:
            client = self._redis()
            for q, n in queue_depths(client, self.queues).items():
                depth.add_metric([q], n)
            unacked.add_metric([], client.hlen("unacked"))
            up.add_metric([], 1)
            yield depth
            yield unacked
        except Exception as exc:  # noqa: BLE001 - a scrape reports, never fails
            log.warning("queue depth scrape failed: %r", exc)
            self._client = None
            up.add_metric([], 0)
        scrape.add_metric([], time.perf_counter() - t0)
        yield up
        yield scrape


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
