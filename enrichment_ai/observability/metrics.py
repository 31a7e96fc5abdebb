"""The pipeline's Prometheus metrics (``prometheus-client``), and the calls that feed them.

Metric objects are module-level, the library's own idiom: each process writes its values
(in prefork workers: to ``PROMETHEUS_MULTIPROC_DIR``, see :mod:`.exporter`) and the
worker's main process serves the aggregate. They hold numbers only — no connection, no
model — so they are the one kind of module global the style guide allows. Names follow
the Prometheus conventions (``_total`` counters, ``_seconds`` in base units); every
metric is documented in docs/operations.md (a unit test keeps the two in sync).

Importing this module imports ``prometheus_client``, whose value class (in-memory or
multiprocess files) is chosen at import: workers call
:func:`enrichment_ai.observability.exporter.prepare` first.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger("enrichment.metrics")

#: Redis key (per queue) holding the unix time of the last committed batch; read by
#: ``enrichment-ai health`` (cheaper than scanning ai_analysis for its newest row).
from enrichment_ai.observability.health import LAST_BATCH_KEY  # noqa: E402,F401

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800,
                    3600, 21600, 86400)
_STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

EVENTS_RECEIVED = Counter("enrichment_events_received", "analyze_message events received by the worker's "
                          "consumer (a redelivery counts again)", ["queue"])
EVENTS_ANALYSED = Counter("enrichment_events_analysed", "Events committed as an ai_analysis row "
                          "(including rows the enricher skipped with a reason, e.g. empty)", ["queue"])
EVENTS_SKIPPED = Counter("enrichment_events_skipped", "Events recorded in analysis_skips, by reason "
                         "(not_found, deleted, worker_lost)", ["queue", "reason"])
ROWS_SKIPPED = Counter("enrichment_analysis_skipped_rows", "ai_analysis rows the enricher stored as "
                       "skipped (NULL scores), by skip_reason", ["queue", "reason"])
EVENTS_REJECTED = Counter("enrichment_events_rejected", "Events whose argument is no message id at all, "
                          "recorded in rejected_events", ["queue", "reason"])
EVENTS_RETRIED = Counter("enrichment_events_retried", "Events re-published for a retry after a "
                         "transient DB/broker error", ["task"])
EVENTS_GIVEN_UP = Counter("enrichment_events_given_up", "Events dropped after max retries (the sweeper "
                          "re-enqueues them)", ["task"])
EVENTS_QUARANTINED = Counter("enrichment_events_quarantined", "Events quarantined after killing their "
                             "pool process repeatedly", ["task"])
EVENTS_RESTORED = Counter("enrichment_events_restored", "Unacked events of a dead worker put back on "
                          "their queue by a live one (before the visibility timeout)", ["task"])
POOL_LOST = Counter("enrichment_pool_process_lost", "Batches whose pool process died mid-batch", ["task"])
BATCH_FAILURES = Counter("enrichment_batch_failures", "Batches that did not commit, by what happened "
                         "(retry, requeue, failed)", ["task", "status"])
BATCHES = Counter("enrichment_batches", "Batches committed", ["queue"])
BATCH_SIZE = Histogram("enrichment_batch_size_events", "Events per committed batch", ["queue"],
                       buckets=_SIZE_BUCKETS)
BATCH_SECONDS = Histogram("enrichment_batch_duration_seconds", "Wall time of one batch, fetch to "
                          "alerts", ["queue"], buckets=_STAGE_BUCKETS)
STAGE_SECONDS = Histogram("enrichment_batch_stage_duration_seconds", "Wall time of one stage of a "
                          "batch (fetch, analyse, write, alerts, summaries_due)", ["queue", "stage"],
                          buckets=_STAGE_BUCKETS)
EVENT_LATENCY = Histogram("enrichment_event_latency_seconds", "Time from the message's created_at "
                          "(since=created) or the event's publish (since=enqueued) to its row's "
                          "commit", ["queue", "since"], buckets=_LATENCY_BUCKETS)
ALERTS = Counter("enrichment_alerts_published", "Moderation alerts published to Redis streams", ["queue"])
LAST_BATCH = Gauge("enrichment_last_batch_timestamp_seconds", "Unix time of the last committed batch",
                   ["queue"], multiprocess_mode="max")
TASK_RUNS = Counter("enrichment_task_runs", "Runs of the background tasks (summaries, rollups, sweep, "
                    "partitions), by outcome", ["task", "outcome"])
TASK_SECONDS = Histogram("enrichment_task_duration_seconds", "Wall time of one background task run",
                         ["task"], buckets=_TASK_BUCKETS)
SUMMARIES = Counter("enrichment_summaries_written", "Conversation summaries written", [])
SWEEP_REQUEUED = Counter("enrichment_sweep_requeued_events", "Messages the sweeper re-enqueued", [])
# An Info metric is a gauge of 1 with the info as labels; prometheus-client's Info type has
# no multiprocess mode, so it is written as that gauge directly (same exposition).
MODEL_INFO = Gauge("enrichment_model_info", "The loaded model_version (value 1)", ["model_version"],
                   multiprocess_mode="livemax")
MODEL_LOAD_SECONDS = Gauge("enrichment_model_load_seconds", "Time the pool process took to load its "
                           "models (slowest live process)", multiprocess_mode="livemax")


class Stopwatch:
    """Laps of a batch's stages: ``lap()`` returns the seconds since the previous lap."""

    def __init__(self) -> None:
        self.start = self._last = time.perf_counter()
        self.started_at = time.time()

    def lap(self) -> float:
        now = time.perf_counter()
        elapsed, self._last = now - self._last, now
        return elapsed

    def total(self) -> float:
        return time.perf_counter() - self.start


def observe_batch(outcome: Any, queue: str, enqueued_at: Sequence[float | None] = (), *, redis=None) -> None:
    """Record one committed batch (a :class:`enrichment_ai.process.BatchOutcome`).

    ``enqueued_at`` are the events' publish times where known (header ``enqueued_at``);
    ``redis`` gets the last-batch timestamp for ``enrichment-ai health``. Never raises:
    the batch has committed, metrics must not turn it into a retry.
    """
    try:
        _observe_batch(outcome, queue, enqueued_at)
        if redis is not None:
            redis.set(LAST_BATCH_KEY.format(queue=queue), f"{time.time():.3f}")
    except Exception:  # noqa: BLE001 - see docstring
        log.warning("could not record batch metrics", exc_info=True)


def _observe_batch(outcome: Any, queue: str, enqueued_at: Iterable[float | None]) -> None:
    from enrichment_ai.process import MALFORMED_ID

    committed = getattr(outcome, "committed_at", None) or time.time()
    EVENTS_ANALYSED.labels(queue).inc(len(outcome.analysed))
    for _raw, reason in outcome.skipped:
        (EVENTS_REJECTED if reason == MALFORMED_ID else EVENTS_SKIPPED).labels(queue, reason).inc()
    latency = EVENT_LATENCY.labels(queue, "created")
    for msg, analysis in outcome.analysed:
        if analysis.skipped:
            ROWS_SKIPPED.labels(queue, analysis.reason or "skipped").inc()
        if msg.created_at is not None:
            latency.observe(max(0.0, committed - msg.created_at.timestamp()))
    queued = EVENT_LATENCY.labels(queue, "enqueued")
    for t in enqueued_at:
        if t:
            queued.observe(max(0.0, committed - float(t)))
    ALERTS.labels(queue).inc(outcome.alerts)
    BATCHES.labels(queue).inc()
    BATCH_SIZE.labels(queue).observe(outcome.size)
    timings = getattr(outcome, "timings", {}) or {}
    for stage, seconds in timings.items():
        if stage != "total":
            STAGE_SECONDS.labels(queue, stage).observe(seconds)
    if "total" in timings:
        BATCH_SECONDS.labels(queue).observe(timings["total"])
    LAST_BATCH.labels(queue).set(committed)


def observe_model(model_version: str, load_seconds: float) -> None:
    """The pool process loaded its models."""
    MODEL_INFO.labels(model_version).set(1)
    MODEL_LOAD_SECONDS.set(load_seconds)


def timed_task(name: str) -> Callable:
    """Decorator: count runs (``ok``/``error``) and time a background task."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            t0 = time.perf_counter()
            outcome = "error"
            try:
                result = fn(*args, **kwargs)
                outcome = "ok"
                return result
            finally:
                TASK_RUNS.labels(name, outcome).inc()
                TASK_SECONDS.labels(name).observe(time.perf_counter() - t0)

        return inner

    return wrap
