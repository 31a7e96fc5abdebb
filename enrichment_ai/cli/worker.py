"""``enrichment-ai worker``: a Celery worker for an analysis queue and/or the background queue.

The command docker-compose, ``enrichment-ai run`` and the integration tests start.
``--queue cpu`` (or ``gpu``) consumes analysis events only; ``--queue background`` runs
summaries, sweeps, partitions and rollups, loads no model up front and runs at a lower
CPU priority, so background work never delays an analysis batch; ``--queue
cpu,background`` is both in one worker (small setups and tests).
Needs ``ENRICHMENT_REDIS_URL`` and ``ENRICHMENT_DATABASE_URL`` (``enrichment-ai run``
passes its embedded services' URLs). On CPU the models load once, in the worker's main
process before its pool starts, and the pool processes inherit them (workers/context.py);
on CUDA each pool process loads its own after fork.
"""

from __future__ import annotations

import argparse
import os

from enrichment_ai.config import Settings

HELP = "Run a Celery worker: micro-batched analysis (cpu|gpu queue) and/or background work"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", help="queue(s) to consume, comma-separated: cpu, gpu, background "
                        "(default: ENRICHMENT_QUEUE)")
    parser.add_argument("--beat", action="store_true", help="also run the beat scheduler in this process")
    parser.add_argument("--concurrency", "-c", type=int, default=None,
                        help="pool processes (default: the CPU cores for analysis on CPU, 1 on a GPU or for "
                        "background work alone); on CPU they share the models the main process loaded")
    parser.add_argument("--pool", choices=["prefork", "solo"], default="prefork",
                        help="prefork (pool processes) or solo (one process)")
    parser.add_argument("--loglevel", "-l", default="INFO")
    parser.add_argument("--hostname", "-n", default=None, help="worker node name (default enrichment-QUEUE@%%h)")


def require_urls(settings: Settings) -> None:
    """Workers and beat join existing services; they never start embedded ones."""
    missing = [n for n in ("database_url", "redis_url") if not getattr(settings, n)]
    if missing:
        names = ", ".join(f"ENRICHMENT_{n.upper()}" for n in missing)
        raise SystemExit(f"enrichment-ai worker: set {names} (or use `enrichment-ai run`, "
                         "which starts services and a worker together)")


#: ``nice`` increment of a background-only worker: its pool yields the CPU to analysis.
BACKGROUND_NICE = 10


def cores() -> int:
    """CPU cores this process may run on (its affinity, e.g. a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_concurrency(settings: Settings, analysis_queue: str | None) -> int:
    """Pool processes when ``-c`` is not given: one per core for analysis on CPU (Celery's
    own default), else 1 — on a GPU every pool process would hold its own CUDA context and
    models, and background-only work is low-priority housekeeping.

    Why cores and not 1 (measured, docs/metrics.md "Default concurrency"): on 2 cores
    ``-c 2`` drains a backlog 1.36–1.40× faster than ``-c 1`` (1.21–1.34× the analyzers
    alone, where ``-c 1`` reaches 0.83–0.87: one process cannot overlap its batch hand-off,
    fetch and commit with compute; two can), and at the same arrival rate its event → row
    p95 was the same (346 vs 348 ms at ~90 msgs/s). Each extra process costs ~150 MiB
    (USS: the models are shared pages)."""
    if analysis_queue is None or analysis_queue == "gpu":
        return 1
    from enrichment_ai.analysis.encoder import resolve_device

    return 1 if resolve_device(settings.device) == "cuda" else cores()


def torch_threads(settings: Settings, concurrency: int) -> int:
    """Torch threads per pool process: the setting, or the cores split over the pool
    (``-c 2`` on 2 cores: 1 each, instead of 2 × 2 threads fighting over 2 cores)."""
    if settings.torch_threads:
        return settings.torch_threads
    return max(1, cores() // max(1, concurrency))


def run(args: argparse.Namespace, settings: Settings) -> int:
    from workers.app import QUEUES, backfill_queue, consumed_queues

    try:
        queues = consumed_queues(args.queue or settings.queue, settings)
    except ValueError as exc:
        raise SystemExit(f"enrichment-ai worker: {exc}") from None
    analysis = [q for q in queues if q in QUEUES]
    if len(analysis) > 1:
        raise SystemExit("enrichment-ai worker: consume one analysis queue (cpu or gpu) per worker")
    concurrency = args.concurrency or default_concurrency(settings, analysis[0] if analysis else None)
    update = {"torch_threads": torch_threads(settings, concurrency)}
    if analysis:
        update["queue"] = analysis[0]
    settings = settings.model_copy(update=update)
    require_urls(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    from enrichment_ai import observability

    name = "-".join("background" if q == settings.background_queue else q for q in queues)
    observability.setup_worker(settings, name=name)  # before the app imports metrics
    from workers.app import create_app
    from workers.context import install

    app = create_app(settings)
    install(settings, preload_models=bool(analysis))
    observability.serve_metrics(settings)
    if not analysis:
        os.nice(BACKGROUND_NICE)  # inherited by the pool processes
        # one task at a time per process: a long rollup must not hold summaries it prefetched
        app.conf.worker_prefetch_multiplier = 1
    # an analysis queue comes with its backfill queue (workers.app.backfill_queue)
    consumed = [x for q in queues for x in ((q, backfill_queue(q)) if q in QUEUES else (q,))]
    argv = ["worker", "-Q", ",".join(consumed), "-c", str(concurrency), "-P", args.pool,
            "--loglevel", args.loglevel, "-n", args.hostname or f"enrichment-{name}@%h",
            "--without-gossip", "--without-mingle"]
    if args.beat:
        argv += ["-B", "-s", str(settings.data_dir / "celerybeat-schedule")]
    app.worker_main(argv)
    return 0
