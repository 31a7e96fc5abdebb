"""The Celery application: broker, queues, routing, ack policy and the beat schedule.

Nothing here runs at import. :func:`create_app` builds a configured app from a
:class:`~enrichment_ai.config.Settings`; ``workers/celery_app.py`` is the one place
that builds it from the environment, for ``celery -A workers.celery_app …``.

Delivery guarantees (see README, "Delivery"):

* ``task_acks_late``: a message is acknowledged only after its whole micro-batch has
  committed (analysis rows and skip records in one transaction). A worker killed
  mid-batch leaves its messages unacknowledged.
* ``visibility_timeout``: Redis has no broker-side acks; kombu parks fetched messages
  in an ``unacked`` hash and puts them back on the queue when they stay unacked this
  long (``Settings.visibility_timeout_s``). It must exceed the longest batch plus the
  longest retry countdown, or a slow batch is delivered twice (harmless — writes are
  idempotent upserts — but wasted work).
* ``task_reject_on_worker_lost``: a batch whose pool process dies is re-published at
  once (each event alone, poison messages quarantined: :mod:`workers.batching`) instead
  of waiting for the visibility timeout.
* ``worker_cancel_long_running_tasks_on_connection_loss`` off: a batch running when the
  broker connection drops finishes and commits; its ack after the reconnect clears it
  from Redis's ``unacked`` hash (kept in Redis itself), and if that ack is lost the
  visibility timeout redelivers it, which the upsert makes harmless.
* Prefetch: with late acks every buffered event counts against the prefetch limit, so
  the limit is two batches per pool process (one running, one filling).
"""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

from enrichment_ai.config import Settings

#: Analysis queues: ``Settings.queue`` picks the one ``analyze_message`` is routed to.
#: Latency-critical; nothing else runs on them.
QUEUES = ("cpu", "gpu")

#: Task names: the contract with the platform and between our own processes.
#: Everything but ANALYZE is background work (:data:`BACKGROUND_TASKS`).
ANALYZE = "enrichment.analyze_message"
SWEEP = "enrichment.sweep"
SUMMARIZE = "enrichment.summarize_channel"
SUMMARIZE_QUIET = "enrichment.summarize_quiet_channels"
NIGHTLY_ROLLUP = "enrichment.nightly_rollup"
ENSURE_PARTITIONS = "enrichment.ensure_partitions"
#: Routed to ``Settings.background_queue`` so that no summary, sweep, partition or rollup
#: ever waits in front of (or occupies the pool process of) an analysis batch.
BACKGROUND_TASKS = (SWEEP, SUMMARIZE, SUMMARIZE_QUIET, NIGHTLY_ROLLUP, ENSURE_PARTITIONS)


def backfill_queue(queue: str) -> str:
    """The backfill queue of analysis queue ``queue`` (``cpu.backfill``): where
    ``enrichment-ai backfill`` (``enqueue --missing-since``) sends history. The analysis
    worker consumes it beside its live queue, and kombu takes from the two in turn, so live
    events never wait behind the thousands of a backfill (in the live queue they did)."""
    return f"{queue}.backfill"


def consumed_queues(spec: str, settings: Settings) -> list[str]:
    """The queues of a worker's ``--queue`` value: comma-separated analysis queue names
    (``cpu``, ``gpu``) and/or the background queue (``background`` or
    ``Settings.background_queue``); raises ValueError for anything else."""
    names = [q.strip() for q in spec.split(",") if q.strip()]
    known = [*QUEUES, settings.background_queue, "background"]
    bad = [q for q in names if q not in known]
    if not names or bad:
        raise ValueError(f"unknown queue(s) {bad or spec!r}: choose from {', '.join(dict.fromkeys(known))} "
                         "(comma-separated)")
    return list(dict.fromkeys(settings.background_queue if q == "background" else q for q in names))


def broker_url(settings: Settings) -> str:
    """The Celery broker URL; ``settings.redis_url`` must be resolved (see ``start_services``)."""
    if not settings.redis_url:
        raise ValueError(
            "Settings.redis_url is unset: start services first (enrichment_ai.embedded."
            "start_services) or set ENRICHMENT_REDIS_URL"
        )
    return settings.redis_url


def transport_options(settings: Settings) -> dict:
    """Redis transport options. kombu scans for expired unacked messages every
    ``unacked_restore_interval`` s but, by default, only on every 10th tick (~100 s);
    we scan on every tick, at a quarter of the visibility timeout (1..10 s), so a dead
    worker's messages return soon after the timeout."""
    vt = settings.visibility_timeout_s
    timeout = settings.broker_socket_timeout_s
    return {
        "visibility_timeout": vt,
        "unacked_restore_interval": max(1, min(10, vt // 4)),
        "unacked_restore_throttle": 1,
        # kombu's default is to wait forever on a synchronous command (an ack, a restore, a
        # publish) whose reply never comes: the worker's event loop then stops, consumer,
        # heartbeat and all, while the process looks alive (seen in the Redis-restart fault
        # test; celery/celery#4453, #8030). With a timeout the command fails as a lost
        # connection and Celery reconnects, as it does when the broker closes the socket.
        # BRPOP is unaffected: it is sent with a 1 s server-side timeout.
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
    }


def beat_schedule(settings: Settings) -> dict:
    """Periodic tasks run by ``enrichment-ai beat`` (or ``worker --beat``). Times are UTC."""
    quiet_every = max(30, min(300, settings.summary_quiet_s // 3 or 30))
    return {
        "sweep": {"task": SWEEP, "schedule": timedelta(seconds=settings.sweep_interval_s)},
        "nightly-rollup": {"task": NIGHTLY_ROLLUP, "schedule": crontab(minute=15, hour=0)},
        "ensure-partitions": {"task": ENSURE_PARTITIONS, "schedule": crontab(minute=5, hour=0)},
        "quiet-channel-summaries": {
            "task": SUMMARIZE_QUIET,
            "schedule": timedelta(seconds=quiet_every),
        },
    }


def create_app(settings: Settings) -> Celery:
    """A Celery app for ``settings``: broker, queues, routing, acks and beat schedule.

    Tasks are registered on the returned app (``workers.tasks.register``);
    ``analyze_message`` is routed to ``settings.queue``, every other task to
    ``settings.background_queue``.
    """
    from workers import broker, tasks  # local: keeps `import workers.app` free of side effects

    broker.install()  # kombu's Redis transport, mended for broker restarts (workers/broker.py)
    app = Celery("enrichment")  # current app: pool processes look tasks up by name
    batch_prefetch = max(1, 2 * settings.batch_max_size)
    app.conf.update(
        broker_url=broker_url(settings),
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options(settings),
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_acks_on_failure_or_timeout=True,
        task_queues=[Queue(name) for name in dict.fromkeys((*QUEUES, settings.background_queue))],
        task_default_queue=settings.queue,
        task_routes={ANALYZE: {"queue": settings.queue},
                     **{name: {"queue": settings.background_queue} for name in BACKGROUND_TASKS}},
        worker_prefetch_multiplier=batch_prefetch,
        worker_proc_alive_timeout=600.0,  # models load in worker_process_init
        timezone="UTC",
        enable_utc=True,
        beat_schedule=beat_schedule(settings),
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )
    app.conf.enrichment_settings = settings
    tasks.register(app, settings)
    return app
