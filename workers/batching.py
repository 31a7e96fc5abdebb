"""Consumer-side micro-batching for Celery tasks, with late acks kept intact.

Each platform event is one ordinary Celery message (``analyze_message(message_id)``),
so any Celery client can produce it. :class:`BatchTask` replaces Celery's per-message
execution *strategy*: the worker's consumer buffers the requests and hands them to the
pool as one list when ``flush_every`` are buffered or ``flush_interval`` seconds after
the first one arrived, whichever comes first. The task's ``run(events)`` then sees the
whole batch.

Acknowledgement, in the consumer process, after the pool reports back:

* the batch returned (committed, skipped, or re-published for a retry) -> ack all;
* the pool process died (kill -9, OOM) -> reject with requeue (``task_reject_on_worker_lost``),
  or leave unacked for the visibility timeout when that setting is off;
* the consumer itself died -> nothing was acked; Redis redelivers after the
  visibility timeout.

Poison messages: a batch whose pool process died is not requeued as it was. Each of its
events is re-published on its own with a ``worker_lost`` count in its headers, and an
event with such a count is always run alone, so one message that kills its process
(segfault, OOM) cannot take its batch-mates down again. An event whose process died
while it ran alone, after an earlier loss (:attr:`BatchTask.worker_lost_limit`), is
re-published with ``quarantine`` set: the task records a ``worker_lost`` skip for it
instead of analysing it, and the sweeper leaves it alone. No crash loop, nothing dropped.

Retries: the pool-side wrapper catches :func:`transient_errors` and re-publishes every
event of the batch with ``retries + 1`` and an exponential countdown *before* the
originals are acked, so a message is never lost between the two. Past
``max_retries`` the events are dropped with an error log; the sweeper re-enqueues
messages that still lack an analysis. Anything else (a bug) is logged and acked —
no crash loop.

Why not ``celery-batches``: it pins ``celery<5.7`` (we pin 5.7.0), acks a failed
batch like a successful one (losing it), has no per-event retry, and flushes on a
repeating timer rather than a max wait from the first buffered event. This module is
the same mechanism (a custom ``Strategy``) in ~150 lines with those points fixed.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

from celery import Task, signals
from celery.utils.imports import symbol_by_name
from celery.utils.time import timezone
from celery.worker.request import create_request_cls
from celery.worker.strategy import hybrid_to_proto2, proto1_to_proto2
from kombu.asynchronous.timer import to_timestamp

from enrichment_ai.observability import metrics

log = logging.getLogger("enrichment.batching")

def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying: lost/refused DB or broker connections, serialization
    failures, deadlocks. Bad input never raises (it becomes a recorded skip)."""
    import psycopg
    import redis
    from kombu.exceptions import OperationalError as KombuOperationalError

    return (
        psycopg.OperationalError,  # connection lost/refused, admin shutdown, deadlock, serialization
        redis.ConnectionError,
        redis.TimeoutError,
        KombuOperationalError,
        ConnectionError,
        TimeoutError,
    )


def backoff_s(retries: int, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter on the upper half: ~1, 2, 4 … ``cap`` seconds."""
    base = min(cap, 2.0**retries)
    return base / 2 + random.uniform(0, base / 2)


@dataclass(frozen=True, slots=True)
class Event:
    """One buffered message as the batch sees it (plain data: crosses into the pool)."""

    task_id: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    retries: int = 0
    #: times a pool process died while this event was in its batch
    worker_lost: int = 0
    #: record it as a ``worker_lost`` skip; do not analyse it again
    quarantine: bool = False
    #: unix time the event was published (header ``enqueued_at``), where the producer set it
    enqueued_at: float | None = None


class BatchTask(Task):
    """Base class for a task consumed in micro-batches; ``run(events)`` gets a list.

    Producers call it like any task (``send_task(name, kwargs={...})``); set
    ``flush_every`` (max batch size) and ``flush_interval`` (max wait, seconds).
    """

    typing = False
    flush_every: int = 64
    flush_interval: float = 0.25
    #: pool-process deaths (the last one with the event running alone) before quarantine
    worker_lost_limit: int = 2

    def run(self, events: list[Event]) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    # --- producer side --------------------------------------------------------------

    def republish(self, events: list[Event]) -> int:
        """Re-send ``events`` with ``retries + 1`` and a backoff countdown; return how
        many were re-sent (those past ``max_retries`` are dropped and logged)."""
        sent = 0
        for ev in events:
            if ev.retries >= (self.max_retries or 0):
                log.error("giving up on %s %s after %d retries (the sweeper will re-enqueue it)",
                          self.name, ev.kwargs, ev.retries)
                metrics.EVENTS_GIVEN_UP.labels(self.name).inc()
                continue
            self.apply_async(args=ev.args, kwargs=ev.kwargs, countdown=backoff_s(ev.retries),
                             retries=ev.retries + 1)
            sent += 1
        metrics.EVENTS_RETRIED.labels(self.name).inc(sent)
        return sent

    # --- consumer side ----------------------------------------------------------------

    def Strategy(self, task: BatchTask, app, consumer):  # noqa: N802 - Celery's name
        """Celery calls this once per consumer; returns the per-message handler."""
        pool, timer = consumer.pool, consumer.timer
        Req = create_request_cls(symbol_by_name(task.Request), task, pool, consumer.hostname,
                                 consumer.event_dispatcher, app=app)
        buffer: list = []
        pending_timer: list = []  # the flush timer entry, at most one

        def flush() -> None:
            while pending_timer:
                pending_timer.pop().cancel()
            while buffer:
                chunk = buffer[: task.flush_every]
                del buffer[: task.flush_every]
                task._dispatch(pool, chunk)

        def add(req) -> None:
            if req.request_dict.get("worker_lost"):  # its last batch died: run it alone
                task._dispatch(pool, [req])
                return
            buffer.append(req)
            if len(buffer) >= task.flush_every:
                flush()
            elif not pending_timer:
                pending_timer.append(timer.call_after(task.flush_interval, flush))

        def add_after_eta(req) -> None:
            consumer.qos.decrement_eventually()
            add(req)

        def handler(message, body, ack, reject, callbacks, **_kw) -> None:
            if body is None and "args" not in message.payload:
                body, headers, decoded, utc = message.body, message.headers, False, app.uses_utc_timezone()
            elif "args" in message.payload:
                body, headers, decoded, utc = hybrid_to_proto2(message, message.payload)
            else:
                body, headers, decoded, utc = proto1_to_proto2(message, body)
            req = Req(message, on_ack=ack, on_reject=reject, app=app, hostname=consumer.hostname,
                      eventer=consumer.event_dispatcher, task=task, body=body, headers=headers,
                      decoded=decoded, utc=utc, connection_errors=consumer.connection_errors)
            if req.expires and req.revoked():
                return
            signals.task_received.send(sender=consumer, request=req)
            if req.eta:
                eta = to_timestamp(timezone.to_system(req.eta)) if req.utc else to_timestamp(req.eta, app.timezone)
                consumer.qos.increment_eventually()  # held requests must not block prefetch
                timer.call_at(eta, add_after_eta, (req,), priority=6)
                return
            add(req)

        return handler

    def _dispatch(self, pool, reqs: list) -> None:
        events = []
        for r in reqs:
            args, kwargs, _embed = r._payload
            rd = r.request_dict
            events.append(Event(r.id, tuple(args or ()), dict(kwargs or {}), int(rd.get("retries") or 0),
                                int(rd.get("worker_lost") or 0), bool(rd.get("quarantine")),
                                _float_or_none(rd.get("enqueued_at"))))
        requeue_lost = bool(self.app.conf.task_reject_on_worker_lost)

        def on_return(result) -> None:
            if isinstance(result, dict) and result.get("status") == "requeue":
                for r in reqs:
                    r.reject(requeue=True)
                return
            for r in reqs:
                r.acknowledge()

        def on_error(exc_info) -> None:  # the pool process was lost mid-batch
            log.error("%s: pool process lost with a batch of %d: %r (requeue=%s)",
                      self.name, len(reqs), getattr(exc_info, "exception", exc_info), requeue_lost)
            metrics.POOL_LOST.labels(self.name).inc()
            if requeue_lost:
                self._after_worker_lost(reqs, events)

        pool.apply_async(run_batch_in_pool, (self, events), callback=on_return, error_callback=on_error)

    def _after_worker_lost(self, reqs: list, events: list[Event]) -> None:
        """Re-publish each event of a lost batch on its own (``worker_lost`` + 1; quarantined
        past the limit), then ack its original; if the broker refuses, requeue the rest."""
        alone = len(events) == 1
        for i, (r, ev) in enumerate(zip(reqs, events, strict=True)):
            lost = ev.worker_lost + 1
            quarantine = ev.quarantine or (alone and lost >= self.worker_lost_limit)
            try:
                self.apply_async(args=ev.args, kwargs=ev.kwargs, retries=ev.retries,
                                 headers={"worker_lost": lost, "quarantine": quarantine})
            except Exception:  # noqa: BLE001 - broker trouble: fall back to a plain requeue
                log.exception("%s: could not re-publish after a lost pool process; requeueing", self.name)
                for rest in reqs[i:]:
                    rest.reject(requeue=True)
                return
            if quarantine:
                log.error("%s: %s killed its pool process %d times; quarantined (recorded as a "
                          "worker_lost skip)", self.name, ev.kwargs or ev.args, lost)
                metrics.EVENTS_QUARANTINED.labels(self.name).inc()
            r.acknowledge()



def run_batch_in_pool(task: BatchTask, events: list[Event]) -> dict[str, Any]:
    """Runs in the pool process: the batch, then the retry/ack decision. Never raises."""
    try:
        return {"status": "done", "result": task.run(events)}
    except transient_errors() as exc:
        log.warning("%s: transient error on a batch of %d, retrying: %r", task.name, len(events), exc)
        metrics.BATCH_FAILURES.labels(task.name, "retry").inc()
        try:
            return {"status": "retry", "republished": task.republish(events)}
        except Exception:  # broker trouble too: put the originals back on the queue
            log.exception("%s: could not re-publish a batch for retry; requeueing it", task.name)
            metrics.BATCH_FAILURES.labels(task.name, "requeue").inc()
            return {"status": "requeue"}
    except Exception:
        log.exception("%s: batch of %d failed (acked; the sweeper re-enqueues what lacks an "
                      "analysis)", task.name, len(events))
        metrics.BATCH_FAILURES.labels(task.name, "failed").inc()
        return {"status": "failed"}


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
