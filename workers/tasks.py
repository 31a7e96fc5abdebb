"""The Celery tasks — thin: decode the event, call ``enrichment_ai``, pick ack/retry.

Registered on an app by :func:`register` (called by :func:`workers.app.create_app`);
nothing is registered at import. Every task gets its models and connections from the
per-process :mod:`workers.context`.

Task names and arguments are the contract (docs/design.md):

* ``enrichment.analyze_message(message_id)`` — micro-batched (:mod:`workers.batching`)
* ``enrichment.analyze_message(message_id, force=False)`` — ``force``: recompute even if
  the message already has a row for this model version (or was quarantined)
* ``enrichment.sweep(since=None)`` — re-enqueue messages still lacking an analysis after
  the grace period that are neither queued nor in flight
* ``enrichment.summarize_channel(channel_id)``
* ``enrichment.summarize_quiet_channels()`` — channels that went quiet after activity
* ``enrichment.nightly_rollup(day=None)`` — ``day`` as ``YYYY-MM-DD``; default yesterday (UTC)
* ``enrichment.ensure_partitions()`` — message partitions ahead of time; prunes old stored embeddings
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from celery import Celery

from enrichment_ai.config import Settings
from workers.app import (
    ANALYZE,
    ENSURE_PARTITIONS,
    NIGHTLY_ROLLUP,
    SUMMARIZE,
    SUMMARIZE_QUIET,
    SWEEP,
)
from enrichment_ai.observability.logs import bind_batch
from enrichment_ai.observability.metrics import SUMMARIES, SWEEP_REQUEUED, observe_batch, timed_task
from workers import markers
from workers.batching import BatchTask, Event, transient_errors
from workers.context import WorkerContext, get_context

log = logging.getLogger("enrichment.tasks")

#: Stored message embeddings (a cache for summaries) older than this are dropped daily;
#: a window reaching further back embeds its older messages again.
EMBEDDING_KEEP_S = 2 * 86400


def message_id_of(event: Event) -> Any:
    """The raw ``message_id`` of an event: keyword (the contract) or first positional."""
    if "message_id" in event.kwargs:
        return event.kwargs["message_id"]
    return event.args[0] if event.args else None


def enqueue_analyses(app: Celery, message_ids, *, force: bool = False, queue: str | None = None) -> int:
    """Send one ``analyze_message`` per id over a single broker connection, each marked
    pending (:mod:`workers.markers`) first so the sweeper knows it is on its way.
    ``force``: recompute messages that already have a row (or a ``worker_lost`` skip);
    ``queue``: instead of the routed analysis queue (a backfill: ``app.backfill_queue``)."""
    ids = [str(mid) for mid in message_ids]
    task = app.tasks[ANALYZE]
    client = task.markers_redis()
    if client is not None and ids:
        markers.mark_pending(client, ids, task.pending_ttl_s)
    kwargs = {"force": True} if force else {}
    with app.producer_or_acquire() as producer:
        for mid in ids:  # header enqueued_at: the publish time, for the event latency metric
            app.send_task(ANALYZE, kwargs={"message_id": mid, **kwargs}, producer=producer,
                          headers={"enqueued_at": time.time()}, **({"queue": queue} if queue else {}))
    return len(ids)


def analysis_queue(app: Celery) -> str:
    """The queue ``analyze_message`` is routed to (whatever queue the sweep runs on)."""
    return app.amqp.router.route({}, ANALYZE)["queue"].name


def _uuid_or_none(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


def enqueue_summaries(app: Celery, channel_ids) -> int:
    """One ``summarize_channel`` per channel (already marked pending by
    ``summaries.claim_due``), to the background queue by routing."""
    channel_ids = list(channel_ids)
    if not channel_ids:
        return 0
    with app.producer_or_acquire() as producer:
        for cid in channel_ids:
            app.send_task(SUMMARIZE, kwargs={"channel_id": str(cid)}, producer=producer)
    return len(channel_ids)


@contextmanager
def resources(settings: Settings) -> Iterator[WorkerContext]:
    """This process's context; its connections are dropped after a transient error
    (the task is then retried with fresh ones)."""
    ctx = get_context(settings)
    try:
        yield ctx
    except transient_errors():
        ctx.reset()
        raise


def register(app: Celery, settings: Settings) -> None:
    """Register every ``enrichment.*`` task on ``app`` only (``shared=False``: Celery would
    otherwise add the first app's tasks, bound to its settings, to every later app)."""
    retry_opts = dict(
        autoretry_for=transient_errors(),
        retry_backoff=True,
        retry_backoff_max=300,
        retry_jitter=True,
        max_retries=settings.task_max_retries,
    )

    @app.task(shared=False, base=BatchTask, bind=True, name=ANALYZE, flush_every=settings.batch_max_size,
              flush_interval=settings.batch_max_wait_ms / 1000.0,
              max_retries=settings.task_max_retries)
    @bind_batch
    def analyze_message(self, events: list[Event]) -> dict:
        from enrichment_ai.process import analyze_batch

        with resources(settings) as ctx:
            outcome = analyze_batch(ctx.conn, ctx.enricher, [message_id_of(e) for e in events],
                                    settings, redis=ctx.redis,
                                    quarantined=[message_id_of(e) for e in events if e.quarantine],
                                    recompute=[message_id_of(e) for e in events if e.kwargs.get("force")])
        observe_batch(outcome, settings.queue, [e.enqueued_at for e in events], redis=ctx.redis)
        enqueue_summaries(app, outcome.due_channels)
        return {"batch": outcome.batch_id, "size": outcome.size,
                "analysed": len(outcome.analysed), "skipped": len(outcome.skipped),
                "already": len(outcome.already)}

    # ``expires``: beat's sweep that waited behind a backlog longer than one interval is
    # discarded (Celery revokes expired tasks on receipt); the next one is on its way.
    @app.task(shared=False, bind=True, name=SWEEP, expires=settings.sweep_interval_s, **retry_opts)
    @timed_task("sweep")
    def sweep(self, since: str | None = None) -> int:
        """Re-enqueue messages older than the grace period (and, if given, created at or
        after ``since``, ISO 8601; naive = UTC) that have no analysis of any model version
        (a lost event, exhausted retries — not a model upgrade: history keeps its rows until
        an operator backfills, so the safety net never queues history ahead of live events
        on the analysis queue) and are not on their way: none created after the oldest event still queued for
        analysis, none with a pending marker (enqueued or in flight). Single flight: at
        most one sweep per half interval does anything (Redis ``SET NX EX``), so sweeps
        that pile up behind a backlog do not each re-enqueue the same messages."""
        from enrichment_ai.db import store

        start = datetime.fromisoformat(since) if since else None
        if start is not None and start.tzinfo is None:
            start = start.replace(tzinfo=UTC)  # as `enrichment-ai enqueue --missing-since` reads it
        with resources(settings) as ctx:
            if not markers.try_sweep_lock(ctx.redis, settings.sweep_interval_s // 2):
                log.info("sweep: another sweep ran less than %d s ago; skipped", settings.sweep_interval_s // 2)
                return 0
            head = _uuid_or_none(markers.oldest_queued_message_id(ctx.redis, analysis_queue(app)))
            ids = store.messages_missing_analysis(
                ctx.conn, None, older_than_s=settings.sweep_grace_s,
                since=start, before_message=head, limit=settings.sweep_limit)
            on_way = markers.pending(ctx.redis, ids)
        ids = [i for i in ids if str(i) not in on_way]
        if on_way:
            log.info("sweep: %d messages without an analysis are queued or in flight; left alone", len(on_way))
        n = enqueue_analyses(app, ids)
        SWEEP_REQUEUED.inc(n)
        if n:
            log.warning("sweep: re-enqueued %d messages without an analysis", n)
        return n

    @app.task(shared=False, bind=True, name=SUMMARIZE, **retry_opts)
    @timed_task("summarize_channel")
    def summarize_channel(self, channel_id: str) -> str | None:
        from enrichment_ai import summaries

        try:
            cid = UUID(str(channel_id))
        except ValueError:
            log.warning("summarize_channel: malformed channel id %r (recorded in rejected_events)", channel_id)
            from enrichment_ai.db import store

            with resources(settings) as ctx:
                store.record_rejected(ctx.conn, SUMMARIZE, [(repr(channel_id)[:100], "malformed_id")])
            return None
        with resources(settings) as ctx:
            try:
                summary_id = summaries.summarize_channel(ctx.conn, cid, ctx, settings,
                                                         summarizer=ctx.summarizer)
            except transient_errors():
                raise  # retried: this task stays the channel's pending summary
            except BaseException:
                summaries.release(ctx.redis, cid)
                raise
            summaries.release(ctx.redis, cid)
        SUMMARIES.inc(1 if summary_id else 0)
        return str(summary_id) if summary_id else None

    @app.task(shared=False, bind=True, name=SUMMARIZE_QUIET, **retry_opts)
    @timed_task("summarize_quiet_channels")
    def summarize_quiet_channels(self) -> int:
        from enrichment_ai import summaries

        with resources(settings) as ctx:
            due = summaries.quiet_channels_due(ctx.conn, settings, redis=ctx.redis)
        return enqueue_summaries(app, due)

    @app.task(shared=False, bind=True, name=NIGHTLY_ROLLUP, **retry_opts)
    @timed_task("nightly_rollup")
    def nightly_rollup(self, day: str | None = None) -> dict:
        from enrichment_ai import rollups

        the_day = date.fromisoformat(day) if day else datetime.now(UTC).date() - timedelta(days=1)
        with resources(settings) as ctx:
            result = rollups.run_rollups(ctx.conn, the_day, toxicity_threshold=settings.toxicity_threshold)
        log.info("nightly rollup %s: %s", the_day, result)
        return {"day": the_day.isoformat(), **{k: v for k, v in dict(result).items()}}

    @app.task(shared=False, bind=True, name=ENSURE_PARTITIONS, **retry_opts)
    @timed_task("ensure_partitions")
    def ensure_partitions(self) -> Any:
        from enrichment_ai import db

        from enrichment_ai.db import embedding_sql

        with resources(settings) as ctx:
            created = db.ensure_partitions(ctx.conn)
            pruned = embedding_sql.prune(ctx.conn, EMBEDDING_KEEP_S)
        if pruned:
            log.info("pruned %d stored message embeddings older than %d s", pruned, EMBEDDING_KEEP_S)
        return created
