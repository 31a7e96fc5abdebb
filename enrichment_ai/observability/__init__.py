"""Operating the pipeline: Prometheus metrics, structured logs without secrets, health.

* :mod:`.metrics` — the metric objects and the calls that feed them;
* :mod:`.exporter` — multiprocess collection and the worker's ``/metrics`` endpoint;
* :mod:`.logs` — text or JSON log lines through Celery's logging signals;
* :mod:`.redact` — credentials masked in URLs and log lines;
* :mod:`.health` — the checks behind ``enrichment-ai health``.

Nothing here imports ``prometheus_client`` at package import (its value class is fixed
at import, see :func:`.exporter.prepare`). docs/operations.md documents it all.
"""

from __future__ import annotations

from enrichment_ai.config import Settings


def setup_worker(settings: Settings, *, name: str) -> None:
    """In a worker's main process, before the Celery app is built: the metrics directory
    (pool processes inherit it), the pool-exit hook and the log formatter."""
    from enrichment_ai.observability import exporter, logs

    exporter.prepare(settings, name)
    exporter.install_process_hooks(settings.queue)
    logs.install(settings)


def serve_metrics(settings: Settings) -> None:
    """Start the worker's ``/metrics`` endpoint in the main process once Celery has set the
    worker up (``celeryd_after_setup``: its logging is configured, the pool not yet forked)."""
    from celery.signals import celeryd_after_setup

    from enrichment_ai.observability import exporter

    def on_setup(**_kw) -> None:
        exporter.serve(settings, queue_names(settings))

    celeryd_after_setup.connect(on_setup, weak=False, dispatch_uid="enrichment.metrics.serve")


def queue_names(settings: Settings | None = None) -> tuple[str, ...]:
    """Every Celery queue of the project (the analysis queues ``workers.app.QUEUES`` and
    the background queue), for queue-depth metrics and health: the one place both read them."""
    from workers.app import QUEUES, backfill_queue

    return (*QUEUES, *map(backfill_queue, QUEUES), settings.background_queue if settings is not None else "background")
