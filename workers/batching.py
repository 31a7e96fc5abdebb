"""Consumer-side micro-batching for Celery tasks, with late acks kept intact.

Each platform event is one ordinary Celery message (``analyze_message(message_id)``),
so any Celery client can produce it. :class:`BatchTask` replaces Celery's per-message
execution *strategy*: the worker's consumer buffers the requests and hands them to the
pool as one list when ``flush_every`` are buffered or ``flush_interval`` seconds after
the first one arrived, whichever comes first, and only to a free process: while every
process is busy the buffer grows, and a returning batch flushes it. With
``flush_interval`` 0 (the default, ``Settings.batch_max_wait_ms``) an event reaching a
free process goes at once, so batch size follows the load by itself. The task's
``run(events)`` then sees the whole batch.

Acknowledgement, in the consumer process, after the pool reports back:

* the batch returned (committed, skipped, or re-published for a retry) -> ack all;
* the pool process died (kill -9, OOM) -> reject with requeue (``task_reject_on_worker_lost``),
  or leave unacked for the visibility timeout when that setting is off;
* the consumer itself died -> nothing was acked; Redis redelivers after the
  visibility timeout.

Poison messages (a message whose analysis kills the process: segfault, OOM). When a
pool process dies, the consumer — which still holds the lost batch's requests, unacked —
at once records every event of the batch as *suspect* in Redis (:mod:`workers.markers`)
and re-dispatches the batch itself to the pool, split: a batch of n > 4 into groups of
about sqrt(n), a smaller batch or a group that dies again into single events, and a
single event that dies again is *quarantined*: dispatched with ``quarantine`` set, so
the task records a ``worker_lost`` skip for it instead of analysing it. Nothing goes
back through the broker and nothing is acked before its group ran. A poison message
thus costs at most 3 process deaths (its batch, its group, itself) and its batch about
2*sqrt(n) runs (16 for a batch of 64), where halving would cost log2(n) + 1 deaths
(7 for 64): a death costs a process restart and a model reload, so depth matters more
than the few extra runs. Before batching any event the consumer looks up its suspect
count (one ``MGET`` per batch), so a copy of a suspect that arrives later (sweeper,
visibility-timeout redelivery, the platform) is run alone, or quarantined right away
when it already died alone. A suspect that commits is cleared. No crash loop, nothing
dropped, and an innocent message is quarantined only if it dies three times alone.

Backpressure: a batch that failed on a transient error (database or broker down) trips
a :class:`~workers.breaker.CircuitBreaker`; while it is open the consumer stops
consuming its queues and holds what it buffered; when it half-opens one batch probes
and the rest waits for its outcome, so an outage is probed by one batch per backoff
period instead of hammered by every queued event.

Pending markers: every event the consumer receives is marked pending in Redis (one
round trip per 50 ms of arrivals) for the visibility timeout, and again when it is
handed to the pool, so the sweeper does not re-enqueue it while it is buffered or in
flight. The marker names this consumer (its *holder* id), and the consumer keeps an
alive key fresh every 3 s; on the same beat it puts back on the queue every unacked
event whose holder's alive key expired (:func:`workers.markers.restore_from_dead_holders`).
A worker killed as a whole (SIGKILL, OOM, its host gone) thus has what it held
redelivered ~15 s later by any live or restarted worker, not after the visibility
timeout (an hour by default).

Flow control: the consumer hands the pool at most one batch per process; the rest waits
in its buffer (unacked, counted by the prefetch limit), where the breaker can hold it
and a dying process can only take the batch it was running.

Retries: the pool-side wrapper catches :func:`transient_errors` and re-publishes every
event of the batch with ``retries + 1`` and an exponential countdown *before* the
originals are acked, so a message is never lost between the two. Past
``max_retries`` the events are dropped with an error log; the sweeper re-enqueues
messages that still lack an analysis. Anything else (a bug) is logged and acked —
no crash loop.

Why not ``celery-batches``: it pins ``celery<5.7`` (we pin 5.7.0), acks a failed
batch like a successful one (losing it), has no per-event retry, and flushes on a
repeating timer rather than a max wait from the first buffered event. This module is
the same mechanism (a custom ``Strategy``) with those points fixed.
"""

from __future__ import annotations

import logging
import math
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from celery import Task, signals
from celery.utils.imports import symbol_by_name
from celery.utils.time import timezone
from celery.worker.request import create_request_cls
from celery.worker.strategy import hybrid_to_proto2, proto1_to_proto2
from kombu.asynchronous.timer import to_timestamp

from enrichment_ai.observability import metrics
from workers import markers
from workers.breaker import CircuitBreaker

log = logging.getLogger("enrichment.batching")

def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying: lost/refused DB or broker connections, serialization
    failures, deadlocks, a Redis that refuses writes for now (a replica after failover:
    READONLY; maxmemory: OOM — after the commit these lost the batch's alerts, acked as
    failed). Bad input never raises (it becomes a recorded skip)."""
    import psycopg
    import redis
    from kombu.exceptions import OperationalError as KombuOperationalError

    return (
        psycopg.OperationalError,  # connection lost/refused, admin shutdown, deadlock, serialization
        redis.ConnectionError,
        redis.TimeoutError,
        redis.exceptions.ReadOnlyError,
        redis.exceptions.OutOfMemoryError,
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
    #: batches handed to the pool and not yet reported back (consumer side)
    _outstanding: int = 0

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
            countdown = backoff_s(ev.retries)
            self.apply_async(args=ev.args, kwargs=ev.kwargs, countdown=countdown, retries=ev.retries + 1)
            sent += 1
            self._mark_pending(ev, self.pending_ttl_s + int(countdown) + 1)
        metrics.EVENTS_RETRIED.labels(self.name).inc(sent)
        return sent

    def _mark_pending(self, event: Event, ttl_s: int) -> None:
        key, client = self.event_key(event.args, event.kwargs), self.markers_redis()
        if key is not None and client is not None:
            try:
                markers.mark_pending(client, [key], ttl_s)
            except Exception:  # noqa: BLE001 - the event itself is re-sent; only the sweeper may re-send it too
                pass

    # --- delivery state in Redis (workers.markers) ---------------------------------------

    def event_key(self, args: tuple, kwargs: dict) -> str | None:
        """The id suspects and pending markers are kept under: ``message_id``."""
        mid = kwargs.get("message_id") if isinstance(kwargs, dict) else None
        if mid is None and args:
            mid = args[0]
        if mid is None:
            return None
        try:  # "{UPPER-CASE}" or hyphen-less ids are valid: key them as the sweeper does
            return str(UUID(str(mid)))
        except (TypeError, ValueError, AttributeError):
            return str(mid)[:100]

    @property
    def pending_ttl_s(self) -> int:
        """How long a dispatched event counts as in flight (visibility timeout + margin)."""
        opts = self.app.conf.broker_transport_options or {}
        return markers.pending_ttl(int(opts.get("visibility_timeout", 3600)))

    def markers_redis(self):
        """A Redis client on the broker's server for this process (a fresh one after
        fork: a pool process never shares its parent's socket); None if unavailable."""
        pid = os.getpid()
        if getattr(self, "_markers_pid", None) != pid:
            self._markers_pid, self._markers_client = pid, None
            try:
                from enrichment_ai.embedded import redis_client

                self._markers_client = redis_client(self.app.conf.broker_url, socket_timeout=5,
                                                    socket_connect_timeout=5)
            except Exception:  # noqa: BLE001 - no markers is degraded, not fatal
                log.exception("%s: no Redis client for delivery markers", self.name)
        return self._markers_client

    def new_holder(self, hostname: str) -> str:
        """A fresh holder id (:mod:`workers.markers`) for a consumer connection: each
        ``Strategy`` call (worker start, and every broker reconnect) gets its own. After a
        reconnect the old connection's events can neither be acked (its channel is closed)
        nor restored by kombu (the broker was gone when it closed), and its buffer is
        forgotten; with the old id no longer refreshed, the heartbeat restores them ~15 s
        later instead of the visibility timeout (an hour)."""
        self._holder = markers.new_holder_id(hostname or self.app.conf.get("worker_name") or str(os.getpid()))
        return self._holder

    def holder_id(self) -> str:
        """The current connection's holder id."""
        return getattr(self, "_holder", None) or self.new_holder("")

    @staticmethod
    def delivery_tag(req) -> str | None:
        tag = getattr(getattr(req, "message", None), "delivery_tag", None)
        return None if tag is None else str(tag)

    def _mark_held(self, client, reqs: list, keys: list) -> None:
        """Mark each event pending for the holder that received it (one round trip per
        holder): an event of a previous connection keeps that connection's id."""
        by_holder: dict[str, list[str]] = {}
        for r, k in zip(reqs, keys, strict=True):
            if k is not None:
                by_holder.setdefault(getattr(r, "enrichment_holder", None) or self.holder_id(), []).append(k)
        for holder, ks in by_holder.items():
            markers.mark_pending(client, ks, self.pending_ttl_s, holder)

    def _keys(self, events: list[Event]) -> list[str]:
        return [k for k in (self.event_key(e.args, e.kwargs) for e in events) if k is not None]

    # --- consumer side ----------------------------------------------------------------

    def Strategy(self, task: BatchTask, app, consumer):  # noqa: N802 - Celery's name
        """Celery calls this once per consumer (again after a broker reconnect); returns
        the per-message handler."""
        pool, timer = consumer.pool, consumer.timer
        Req = create_request_cls(symbol_by_name(task.Request), task, pool, consumer.hostname,
                                 consumer.event_dispatcher, app=app)
        buffer: list = []
        pending_timer: list = []  # the flush timer entry, at most one
        breaker = CircuitBreaker()
        paused: list[str] = []  # queues we stopped consuming while the breaker is open
        probing: list[bool] = []  # non-empty while a half-open probe batch is out
        # Batches handed to the pool at once: one per process. The rest waits here, where
        # the breaker can hold it and a lost process takes only the batch it ran; the pool's
        # own queue would take everything buffered out of our hands.
        capacity = max(1, int(getattr(pool, "num_processes", None) or getattr(pool, "limit", None) or 1))
        task._outstanding = 0
        # This connection's generation. Celery keeps the hub's timer across a broker
        # reconnect and builds a new strategy: an old closure's timer entry (a flush, an
        # ETA release, a resume) must then do nothing — it would hand the pool requests of
        # the dead channel, release a prefetch slot of the new connection's QoS that it
        # never took, or dispatch under the new counters — nor may a batch of the old
        # connection that finishes later count down the new one's (_dispatch).
        gen = object()
        task._gen = gen

        def stale() -> bool:
            return task._gen is not gen
        # Delivery tags this connection holds (buffered, ETA-held, in the pool) until acked:
        # what the heartbeat's restore must leave alone among the entries naming us. Per
        # connection: what an earlier one received is forgotten with its buffer at a
        # reconnect, and must not look held.
        # What the connections before this one held: an entry among them naming our holder
        # is one whose ack was lost with its connection (markers.restore_from_dead_holders);
        # one not among them may be another live consumer's delivery of the same message.
        earlier: set[str] = getattr(task, "_earlier_held", set())
        earlier |= getattr(task, "_held_tags", set())
        if len(earlier) > 100_000:  # many reconnects: forget (the visibility timeout remains)
            earlier.clear()
        task._earlier_held = earlier
        held: set[str] = set()
        task._held_tags = held
        holder = task.new_holder(consumer.hostname)
        log.info("%s: consuming as holder %s", task.name, holder)
        _start_heartbeat(task, consumer, holder, held, earlier)

        def flush() -> None:
            if stale():
                return
            while pending_timer:
                pending_timer.pop().cancel()
            if breaker.is_open:  # hold the buffer (unacked) until the breaker half-opens
                if buffer:
                    pending_timer.append(timer.call_at(breaker.open_until, flush))
                return
            if any(_from_backfill(r) for r in buffer):
                # live events first: the buffer holds up to a prefetch of backfill events
                # (workers.app.backfill_queue), which a live event would otherwise wait behind
                buffer.sort(key=_from_backfill)  # stable: each kind keeps its order
            while buffer and not probing and task._outstanding < capacity:
                # a batch of backfill alone is small: a live event arriving meanwhile waits
                # for a pool process at most that long (a full batch is ~0.5–1 s on CPU)
                size = min(task.flush_every, BACKFILL_BATCH) if _from_backfill(buffer[0]) else task.flush_every
                chunk = buffer[:size]
                del buffer[:size]
                if breaker.failures:  # half-open: this batch probes; the rest waits for its outcome
                    probing.append(True)
                try:
                    task._dispatch_fresh(pool, chunk)
                except Exception:  # noqa: BLE001 - kombu's timer would only log it and lose the chunk
                    # Not ours any more: the heartbeat puts what was not dispatched back on the
                    # queue (after its 15 s), instead of holding it unacked for the visibility
                    # timeout; and a probe that never went out must not stop all fetching.
                    log.exception("%s: dispatching %d events failed; released for redelivery",
                                  task.name, len(chunk))
                    probing.clear()
                    for r in chunk:
                        held.discard(task.delivery_tag(r))

        unmarked: list = []  # received, not yet marked pending (marked in one round trip)
        task._unmarked = unmarked  # a batch done within the 50 ms takes its own out (_clear_pending)

        def mark_received() -> None:
            if stale():
                return
            reqs, keys = list(unmarked), []
            unmarked.clear()
            for r in reqs:
                k = task.event_key(*task._args_kwargs(r))
                if k is not None:
                    keys.append(k)
            client = task.markers_redis()
            if client is not None and keys:
                try:
                    markers.mark_pending(client, keys, task.pending_ttl_s, holder)
                except Exception as exc:  # noqa: BLE001 - the sweeper may re-send some; harmless
                    log.warning("%s: could not mark events pending: %r", task.name, exc)

        def claim(req) -> None:
            # Out of the queue, not yet in the pool: mark it pending (and ours) now, or the
            # sweeper would take a buffered event for a lost one, and the heartbeat's
            # restore an unclaimed delivery for a dead worker's.
            req.enrichment_holder = holder
            tag = task.delivery_tag(req)
            if tag is not None:
                held.add(tag)
            if not unmarked:
                timer.call_after(0.05, mark_received)
            unmarked.append(req)

        def add(req) -> None:
            claim(req)
            buffer.append(req)
            if len(buffer) >= task.flush_every:
                flush()
            elif not pending_timer:
                pending_timer.append(timer.call_after(task.flush_interval, flush))

        def pause(seconds: float) -> None:
            """Why cancel the kombu consumer and not ``app.control.cancel_consumer`` or a
            prefetch of zero: remote control is a broadcast through the broker (which may
            be the thing that is down) and deselects the queue for every later reconnect;
            kombu's QoS cannot express "fetch nothing" (0 means unlimited); blocking in the
            strategy would stall the event loop (acks, heartbeats). ``cancel_by_queue`` on
            this consumer's own ``task_consumer`` is what ``cancel_consumer`` does locally,
            minus the deselect: a consumer rebuilt after a broker reconnect consumes again."""
            tc = consumer.task_consumer
            if tc is None or paused:
                return
            paused.extend(q.name for q in tc.queues)
            try:
                for name in paused:
                    tc.cancel_by_queue(name)
            except Exception as exc:  # noqa: BLE001 - the connection is going: Celery rebuilds it
                log.warning("%s: could not pause consuming: %r", task.name, exc)
            log.warning("%s: transient failure; circuit open, not fetching from %s for %.1f s",
                        task.name, ",".join(paused), seconds)
            timer.call_after(seconds, resume)

        def resume() -> None:
            if stale():
                return
            tc, names = consumer.task_consumer, list(paused)
            paused.clear()
            if tc is not None:
                try:
                    for name in names:
                        if not tc.consuming_from(name) and name in app.amqp.queues:
                            tc.add_queue(app.amqp.queues[name])
                    tc.consume()
                except Exception as exc:  # noqa: BLE001 - broker gone: the rebuilt consumer consumes all
                    log.warning("%s: could not resume consuming: %r", task.name, exc)
            log.info("%s: circuit half-open, fetching again", task.name)
            flush()

        def on_outcome(status: str | None) -> None:
            was_probing = bool(probing)
            probing.clear()
            if status in ("retry", "requeue"):
                pause(breaker.trip())
                return
            if status in ("done", "failed"):  # the services answered
                breaker.reset()
            if buffer or was_probing:
                flush()

        task._on_outcome = on_outcome  # per consumer; the pool results report here
        task._inflight = Counter()  # event key -> batches in the pool holding it
        task._parked = {}  # event key -> copies received while it was in flight here

        def add_after_eta(req) -> None:
            if stale():  # its message comes back from Redis (restore / visibility timeout)
                return
            consumer.qos.decrement_eventually()
            add(req)

        def request(message, body, headers, decoded, utc, ack, reject):
            return Req(message, on_ack=ack, on_reject=reject, app=app, hostname=consumer.hostname,
                       eventer=consumer.event_dispatcher, task=task, body=body, headers=headers,
                       decoded=decoded, utc=utc, connection_errors=consumer.connection_errors)

        def handler(message, body, ack, reject, callbacks, **_kw) -> None:
            try:
                payload = message.payload
                if body is None and "args" not in payload:
                    body, headers, decoded, utc = message.body, message.headers, False, app.uses_utc_timezone()
                elif "args" in payload:
                    body, headers, decoded, utc = hybrid_to_proto2(message, payload)
                else:
                    body, headers, decoded, utc = proto1_to_proto2(message, body)
                req = request(message, body, headers, decoded, utc, ack, reject)
                check_shape(req._payload)
                req.eta, req.expires  # noqa: B018 - parsed here: a bad header raises inside this try
            except Exception as exc:  # noqa: BLE001 - see malformed_body
                req = malformed_body(message, exc, ack, reject)
                if req is None:
                    return
            if req.expires and req.revoked():
                return
            signals.task_received.send(sender=consumer, request=req)
            if req.eta:
                eta = to_timestamp(timezone.to_system(req.eta)) if req.utc else to_timestamp(req.eta, app.timezone)
                consumer.qos.increment_eventually()  # held requests must not block prefetch
                claim(req)  # held here (unacked) until its countdown ends
                timer.call_at(eta, add_after_eta, (req,), priority=6)
                return
            add(req)

        def malformed_body(message, exc, ack, reject):
            # A body Celery cannot unpack ([[], {...}] without its third element, a JSON
            # object or null from a raw producer, kwargs that are not an object) raised
            # out of this handler through kombu: "Unrecoverable error", the worker exited
            # and the restored event killed every restart. It becomes an event whose
            # message_id names what arrived: the pool records it in rejected_events as
            # malformed_id and it is acked, like any other bad id (README, enqueue contract).
            what = f"malformed event body ({type(exc).__name__}): {_short_repr(_safe_payload(message))}"
            log.warning("%s: %s", task.name, what)
            try:  # only the headers a task message needs: the others may be what was wrong
                headers = {k: v for k, v in (message.headers or {}).items() if k in ("id", "task", "root_id")}
                return request(message, ((), {"message_id": what[:100]}, {}), headers, True,
                               app.uses_utc_timezone(), ack, reject)
            except Exception as exc2:  # noqa: BLE001 - not even the headers of a task: drop it, loudly
                log.error("%s: dropped an event that is not a task message (%r): %s", task.name, exc2, what)
                metrics.EVENTS_REJECTED.labels((message.delivery_info or {}).get("routing_key", ""), "not_a_task").inc()
                ack()
                return None

        return handler

    def _dispatch_fresh(self, pool, reqs: list) -> None:
        """Dispatch a chunk of newly received events: mark them pending and look up
        suspects in one Redis round trip; a suspect runs alone (or is quarantined if it
        already died alone), the rest run as one batch. A copy of an event this consumer
        already has in the pool (a visibility-timeout redelivery while its batch waited
        or was being re-run) is parked, unacked, until that one finishes, then dispatched:
        it is then acked as already analysed (or quarantined) instead of recomputed."""
        inflight, parked = getattr(self, "_inflight", None), getattr(self, "_parked", None)
        if inflight is not None:
            fresh = []
            for r in reqs:
                k = self.event_key(*self._args_kwargs(r))
                if k is not None and inflight[k] > 0:
                    parked.setdefault(k, []).append(r)
                else:
                    fresh.append(r)
            reqs = fresh
        if not reqs:
            return
        keys = [self.event_key(*self._args_kwargs(r)) for r in reqs]
        deaths: dict[str, tuple[int, bool]] = {}
        client = self.markers_redis()
        if client is not None:
            try:
                self._mark_held(client, reqs, keys)
                deaths = markers.suspects(client, [k for k in keys if k is not None])
            except Exception as exc:  # noqa: BLE001 - Redis trouble: batch as usual
                log.warning("%s: delivery markers unavailable: %r", self.name, exc)
        plain = []
        for r, k in zip(reqs, keys, strict=True):
            n, alone = deaths.get(k, (0, False)) if k is not None else (0, False)
            n = max(n, _int_or_zero(r.request_dict.get("worker_lost")))  # copies from an older worker
            if n:
                quarantine = (alone and n >= self.worker_lost_limit) or bool(r.request_dict.get("quarantine"))
                log.warning("%s: %s is suspect (%d process deaths%s): run %s", self.name, k, n,
                            ", the last alone" if alone else "", "as quarantined" if quarantine else "alone")
                self._dispatch(pool, [r], lost=n, quarantine=quarantine)
            else:
                plain.append(r)
        if plain:
            self._dispatch(pool, plain)

    @staticmethod
    def _args_kwargs(req) -> tuple[tuple, dict]:
        args, kwargs, _embed = req._payload  # shape checked at receipt (check_shape)
        return tuple(args or ()), dict(kwargs or {})

    def _dispatch(self, pool, reqs: list, *, lost: int = 0, quarantine: bool = False) -> None:
        """Hand ``reqs`` to the pool as one batch; ack (or requeue) them when it reports
        back, re-run them split if its process dies."""
        events = []
        for r in reqs:
            args, kwargs = self._args_kwargs(r)
            events.append(Event(r.id, args, kwargs, _int_or_zero(r.request_dict.get("retries")), lost, quarantine,
                                _float_or_none(r.request_dict.get("enqueued_at"))))
        requeue_lost = bool(self.app.conf.task_reject_on_worker_lost)
        keys = self._keys(events)
        inflight = getattr(self, "_inflight", None)
        if inflight is not None:
            inflight.update(keys)

        if hasattr(self, "_outstanding"):
            self._outstanding += 1
        gen = getattr(self, "_gen", None)

        def current() -> bool:
            """Whether the connection that dispatched this batch is still the consumer's."""
            return getattr(self, "_gen", None) is gen

        def on_return(result) -> None:
            status = result.get("status") if isinstance(result, dict) else None
            if not current():  # acked on a closed channel, if at all: comes back from Redis
                for r in reqs:
                    try:
                        r.acknowledge()
                    except Exception:  # noqa: BLE001 - the channel is gone
                        pass
                return
            self._outstanding -= 1
            try:
                for r in reqs:
                    try:
                        r.reject(requeue=True) if status == "requeue" else r.acknowledge()
                    except Exception:  # noqa: BLE001 - one bad ack must not strand the others
                        log.exception("%s: could not ack/requeue %s", self.name, r.id)
                    # done with it here, acked or not: an ack lost with the connection leaves
                    # an entry the heartbeat's restore puts back (markers.restore_from_dead_holders)
                    getattr(self, "_held_tags", set()).discard(self.delivery_tag(r))
            finally:  # parked copies and the buffer must move on whatever happened above
                self._settled(pool, keys)
                if status == "done":
                    self._clear_pending(keys, reqs)
                outcome = getattr(self, "_on_outcome", None)
                if outcome is not None:
                    outcome(status)

        def on_error(exc_info) -> None:  # the pool process was lost mid-batch
            if not current():  # suspects recorded; its messages come back from Redis
                self._after_worker_lost(pool, reqs, events, rerun=False)
                return
            self._outstanding -= 1
            log.error("%s: pool process lost with a batch of %d: %r (requeue=%s)",
                      self.name, len(reqs), getattr(exc_info, "exception", exc_info), requeue_lost)
            metrics.POOL_LOST.labels(self.name).inc()
            self._after_worker_lost(pool, reqs, events, rerun=requeue_lost)  # re-counts its re-runs
            self._settled(pool, keys)
            outcome = getattr(self, "_on_outcome", None)
            if outcome is not None:
                outcome("lost")

        pool.apply_async(run_batch_in_pool, (self, events), callback=on_return, error_callback=on_error)

    def _clear_pending(self, keys: list[str], reqs: list) -> None:
        """A batch committed and its events are acked: their pending markers are stale.
        Cleared for the keys no other copy here holds (a copy parked behind this batch
        was just dispatched by :meth:`_settled` and still needs its marker); a Redis
        error leaves them to their TTL. The consumer marks what it receives 50 ms later
        in one round trip, and a small batch can be done before that: its requests are
        taken off that list, or the marking would set again what this deletes (12 % of
        a soak's events kept an hour's marker so)."""
        unmarked = getattr(self, "_unmarked", None)
        if unmarked:
            ours = {id(r) for r in reqs}
            unmarked[:] = [r for r in unmarked if id(r) not in ours]
        inflight = getattr(self, "_inflight", None) or {}
        stale = [k for k in set(keys) if inflight.get(k, 0) <= 0]
        client = self.markers_redis() if stale else None
        if client is None:
            return
        try:
            markers.clear_pending(client, stale, getattr(reqs[0], "enrichment_holder", None) if reqs else None)
        except Exception as exc:  # noqa: BLE001 - they expire with their TTL
            log.warning("%s: could not clear %d pending markers: %r", self.name, len(stale), exc)

    def _settled(self, pool, keys: list[str]) -> None:
        """A batch holding ``keys`` is done with them; dispatch copies parked meanwhile."""
        inflight, parked = getattr(self, "_inflight", None), getattr(self, "_parked", None)
        if inflight is None:
            return
        inflight.subtract(keys)
        ready = []
        for k in set(keys):
            if inflight[k] <= 0:
                del inflight[k]
                ready.extend(parked.pop(k, ()))
        if ready:
            self._dispatch_fresh(pool, ready)

    def _after_worker_lost(self, pool, reqs: list, events: list[Event], *, rerun: bool = True) -> None:
        """Record the lost batch's events as suspects (at once: every consumer and the
        sweeper see it), then re-run them here, split (module docstring). With ``rerun``
        off (``task_reject_on_worker_lost`` unset) they stay unacked for the visibility
        timeout, and come back as suspects."""
        lost = max(ev.worker_lost for ev in events) + 1
        client = self.markers_redis()
        if client is not None:
            try:
                keys = [self.event_key(e.args, e.kwargs) for e in events]  # one per request
                markers.record_suspects(client, dict.fromkeys((k for k in keys if k is not None), lost),
                                        alone=len(events) == 1)
                self._mark_held(client, reqs, keys)  # still on its way: re-run here
            except Exception as exc:  # noqa: BLE001 - the split below still isolates it
                log.warning("%s: could not record suspects: %r", self.name, exc)
        if not rerun:
            return
        if len(reqs) == 1:
            quarantine = events[0].quarantine or lost >= self.worker_lost_limit
            if quarantine:
                log.error("%s: %s killed its pool process %d times; quarantined (recorded as a "
                          "worker_lost skip)", self.name, events[0].kwargs or events[0].args, lost)
                metrics.EVENTS_QUARANTINED.labels(self.name).inc()
            self._dispatch(pool, reqs, lost=lost, quarantine=quarantine)
            return
        size = split_size(len(reqs), lost - 1)
        log.warning("%s: re-running the %d events of the lost batch in groups of %d",
                    self.name, len(reqs), size)
        for i in range(0, len(reqs), size):
            self._dispatch(pool, reqs[i:i + size], lost=lost)


def _start_heartbeat(task: BatchTask, consumer, holder: str, held: set[str], earlier: set[str] = frozenset()) -> None:
    """Every ``HEARTBEAT_S`` on the consumer's timer: refresh ``holder``'s alive key, then
    put back what dead consumers held (:func:`workers.markers.restore_from_dead_holders`,
    moving each event with kombu's ``restore_by_tag`` on this consumer's channel), and
    what names ``holder`` but is not among the delivery tags it ``held`` and was among
    those an ``earlier`` connection held (an entry whose ack was lost with that
    connection, its marker since taken over by a later copy of the message). A second ``Strategy`` call (broker reconnect) replaces the timer,
    never doubles it."""
    old = getattr(task, "_heartbeat_entry", None)
    if old is not None:
        old.cancel()
    warned: list[bool] = []

    def beat() -> None:
        client = task.markers_redis()
        if client is None:
            return
        tc = consumer.task_consumer  # None until the consumer is consuming
        restored = 0
        try:
            markers.heartbeat(client, holder)
            if tc is not None:
                qos = tc.channel.qos
                restored = markers.restore_from_dead_holders(
                    client, lambda tag: qos.restore_by_tag(tag, client=client), [task.name],
                    own=holder, held=held, earlier=earlier,
                    unacked_key=getattr(tc.channel, "unacked_key", "unacked"),
                    unacked_index_key=getattr(tc.channel, "unacked_index_key", "unacked_index"))
            warned.clear()
        except Exception as exc:  # noqa: BLE001 - Redis down: the visibility timeout still restores
            if not warned:
                log.warning("%s: holder heartbeat failed: %r", task.name, exc)
                warned.append(True)
            return
        if restored:
            log.warning("%s: restored %d events held by a dead worker or a lost broker connection to their queue", task.name, restored)
            metrics.EVENTS_RESTORED.labels(task.name).inc(restored)

    beat()
    task._heartbeat_entry = consumer.timer.call_repeatedly(markers.HEARTBEAT_S, beat)


def split_size(n: int, earlier_losses: int) -> int:
    """Group size for re-running a lost batch of ``n`` events: about sqrt(n) on a first
    loss of a batch larger than 4, else single events. See the module docstring."""
    if earlier_losses > 0 or n <= 4:
        return 1
    return math.isqrt(n - 1) + 1  # ceil(sqrt(n))


def run_batch_in_pool(task: BatchTask, events: list[Event]) -> dict[str, Any]:
    """Runs in the pool process: the batch, then the retry/ack decision. Never raises."""
    try:
        result = task.run(events)
        if any(e.worker_lost for e in events):  # committed: these suspects were innocent
            client = task.markers_redis()
            if client is not None:
                try:
                    markers.clear_suspects(client, task._keys([e for e in events if not e.quarantine]))
                except Exception:  # noqa: BLE001 - a stale suspect only runs alone once more
                    pass
        return {"status": "done", "result": result}
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


#: Most events in a batch of backfill events (live batches: ``flush_every``).
BACKFILL_BATCH = 16


def _from_backfill(req) -> bool:
    """Whether ``req`` came from a backfill queue (``workers.app.backfill_queue``)."""
    info = getattr(getattr(req, "message", None), "delivery_info", None) or {}
    return str(info.get("routing_key") or "").endswith(".backfill")


def _int_or_zero(value: Any) -> int:
    """A count header (``retries``, ``worker_lost``) as a raw producer may have set it:
    anything not a non-negative integer counts 0 (``int("1st")`` raised in a timer, and
    kombu only logs that: the chunk was stranded, and as a half-open probe it stopped the
    consumer for good)."""
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError, OverflowError):
        return 0


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def check_shape(payload) -> None:
    """Raise unless ``payload`` is a Celery protocol-2 body this consumer can read:
    ``[args (list), kwargs (object), embed (object or null)]``."""
    if not isinstance(payload, (list, tuple)) or len(payload) != 3:
        raise ValueError("the body is not [args, kwargs, embed]")
    args, kwargs, embed = payload
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict) or not isinstance(embed, (dict, type(None))):
        raise ValueError("args must be a list, kwargs and embed objects")


def _safe_payload(message):
    try:
        return message.payload
    except Exception:  # noqa: BLE001 - undecodable: show the raw body
        return getattr(message, "body", None)


def _short_repr(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
